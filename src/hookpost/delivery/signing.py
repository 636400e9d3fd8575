"""Standard Webhooks signing: ``whsec_`` secrets and the ``webhook-signature`` header.

The signature is base64(HMAC-SHA256(secret, "{msg_id}.{timestamp}.{body}")), prefixed ``v1,``;
during a rotation every live secret signs and the signatures are space-separated.
"""

import base64
import binascii
import functools
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


def generate_secret(size: int = 32) -> str:
    """A new random secret in the ``whsec_<base64>`` form."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(size)).decode()


def secret_bytes(secret: str) -> bytes:
    """The key bytes of a ``whsec_`` secret. Raises ValueError when it is not a valid one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a secret starts with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except binascii.Error as error:
        raise ValueError("a secret is whsec_ followed by standard base64") from error
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"a secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, this one {len(key)}"
        )
    return key


@functools.lru_cache(maxsize=4096)
def _keyed(key: bytes) -> "hmac.HMAC":
    """The HMAC-SHA256 state after ``key``, copied for each message rather than keyed again
    for every signature."""
    return hmac.new(key, digestmod=hashlib.sha256)


def sign(keys: list[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value: one ``v1,<sig>`` per key, space-separated."""
    message = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    signatures = []
    for key in keys:
        mac = _keyed(key).copy()
        mac.update(message)
        signatures.append("v1," + binascii.b2a_base64(mac.digest(), newline=False).decode())
    return " ".join(signatures)
