"""Time-ordered ids (UUIDv7) and their public form: a type prefix and 26 base32 characters.

The database stores plain UUIDs; the API shows ``evt_01jd...``. Sorting either form sorts by
creation time, so indexes and cursors follow insertion order.
"""

import os
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from uuid_utils.compat import uuid7

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_DECODE = {c: i for i, c in enumerate(_ALPHABET)}
_LENGTH = 26  # ceil(128 / 5)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


class Prefix(StrEnum):
    """The type prefix of each kind of public id."""

    TENANT = "ten"
    API_KEY = "key"
    EVENT_TYPE = "et"
    ENDPOINT = "ep"
    SUBSCRIPTION = "sub"
    EVENT = "evt"
    DELIVERY = "dlv"
    ATTEMPT = "att"


def new_id() -> uuid.UUID:
    """A new UUIDv7: unique, and ordered by the millisecond it was made."""
    return uuid7()


def _millis(at: datetime) -> int:
    """Unix milliseconds, kept within the 48 bits a UUIDv7 holds. Integer arithmetic: a float
    timestamp times 1000 can round down into the millisecond before."""
    return min(max((at - _EPOCH) // _MILLISECOND, 0), (1 << 48) - 1)


def floor(at: datetime) -> uuid.UUID:
    """The smallest id made at ``at``: ids made at ``at`` or later are >= it (for time ranges)."""
    return uuid.UUID(int=_millis(at) << 80)


def id_at(at: datetime) -> uuid.UUID:
    """A UUIDv7 for the moment ``at`` (for backfills and tests; ``new_id`` for now)."""
    random_bits = int.from_bytes(os.urandom(10)) & ~(0xF << 76) & ~(0x3 << 62)
    return uuid.UUID(int=(_millis(at) << 80) | (0x7 << 76) | (0x2 << 62) | random_bits)


# Two base32 characters for every 10-bit chunk of the 130 bits (the first chunk has 8).
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_SHIFTS = range(120, -1, -10)


def encode(prefix: Prefix, value: uuid.UUID) -> str:
    """``uuid`` in its public form, such as ``evt_01jd8k2c3w5x7y9z0a1b2c3d4e``."""
    n = value.int
    return f"{prefix.value}_" + "".join(_PAIRS[(n >> shift) & 1023] for shift in _SHIFTS)


def decode(prefix: Prefix, text: str) -> uuid.UUID | None:
    """The UUID behind a public id of kind ``prefix``, or None if ``text`` is not one."""
    head, sep, body = text.partition("_")
    if sep != "_" or head != prefix or len(body) != _LENGTH:
        return None
    number = 0
    for char in body.lower():
        digit = _DECODE.get(char)
        if digit is None:
            return None
        number = (number << 5) | digit
    if number >> 128:
        return None
    return uuid.UUID(int=number)
