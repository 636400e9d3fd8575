"""Public ids: prefix + 26 base32 characters, round-tripping and sorting like the UUIDs."""

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from hookpost import ids


@given(st.uuids(), st.sampled_from(list(ids.Prefix)))
def test_round_trip(value: uuid.UUID, prefix: ids.Prefix) -> None:
    text = ids.encode(prefix, value)
    assert text.startswith(f"{prefix}_")
    assert len(text) == len(prefix) + 1 + 26
    assert ids.decode(prefix, text) == value
    assert ids.decode(prefix, text.upper().replace(prefix.upper(), prefix, 1)) == value


@given(st.uuids(), st.uuids())
def test_order_is_kept(a: uuid.UUID, b: uuid.UUID) -> None:
    assert (a < b) == (ids.encode(ids.Prefix.EVENT, a) < ids.encode(ids.Prefix.EVENT, b))


def test_new_ids_are_time_ordered() -> None:
    made = [ids.new_id() for _ in range(1000)]
    assert made == sorted(made)
    assert all(value.version == 7 for value in made)


def test_rejects_what_is_not_an_id() -> None:
    value = ids.encode(ids.Prefix.TENANT, ids.new_id())
    assert ids.decode(ids.Prefix.ENDPOINT, value) is None
    assert ids.decode(ids.Prefix.TENANT, value[:-1]) is None
    assert ids.decode(ids.Prefix.TENANT, value + "0") is None
    assert ids.decode(ids.Prefix.TENANT, "ten_" + "u" * 26) is None  # u is not base32 here
    assert ids.decode(ids.Prefix.TENANT, "ten_" + "z" * 26) is None  # more than 128 bits
    assert ids.decode(ids.Prefix.TENANT, "acme-corp") is None


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    )
)
def test_time_bounds(at: datetime) -> None:
    made = ids.id_at(at)
    assert made.version == 7
    assert ids.floor(at) <= made < ids.floor(at + timedelta(milliseconds=1))
    assert ids.floor(at - timedelta(milliseconds=1)) < ids.floor(at)
