"""What a receiver sends is made storable: any string encodes to UTF-8 without NUL, within its
cap; headers are bounded in count and size whatever comes."""

from hypothesis import given
from hypothesis import strategies as st

from hookpost.delivery import storable

ANY_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()))  # surrogates too


@given(value=ANY_TEXT, cap=st.none() | st.integers(min_value=0, max_value=50))
def test_any_text_becomes_storable(value: str, cap: int | None) -> None:
    kept = storable.text(value, cap)
    assert "\x00" not in kept
    kept.encode("utf-8")  # no lone surrogate left
    if cap is not None:
        assert len(kept) <= cap


def test_bytes_that_were_not_utf8_read_as_replacement_characters() -> None:
    escaped = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")  # as aiohttp hands them on
    assert storable.text(escaped) == "caf\ufffd \ufffd"
    assert storable.text("ok\x00") == "ok\ufffd"
    assert storable.text("plain") == "plain"


@given(content=st.binary(max_size=300))
def test_any_body_becomes_storable(content: bytes) -> None:
    kept = storable.body(content)
    assert "\x00" not in kept
    kept.encode("utf-8")


@given(items=st.lists(st.tuples(ANY_TEXT, ANY_TEXT), max_size=200))
def test_any_headers_become_bounded_and_storable(items: list[tuple[str, str]]) -> None:
    kept = storable.headers(items)
    assert len(kept) <= storable.MAX_HEADERS + 1
    for name, value in kept.items():
        for text in (name, value):
            assert "\x00" not in text
            text.encode("utf-8")
        assert len(name) <= storable.MAX_HEADER_NAME
        assert len(value) <= storable.MAX_HEADER_VALUE


def test_a_flood_of_large_headers_is_cut_and_counted() -> None:
    kept = storable.headers([(f"x-big-{n}", "b" * 8000) for n in range(120)])
    assert sum(len(name) + len(value) for name, value in kept.items()) < 2 * 8192
    assert int(kept[storable.DROPPED_HEADERS]) > 100


def test_a_repeated_header_keeps_every_value() -> None:
    kept = storable.headers([("Set-Cookie", "a=1"), ("set-cookie", "b=2")])
    assert kept == {"set-cookie": "a=1, b=2"}
