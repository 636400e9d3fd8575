"""Strict JSON at the door: what RFC 8259 allows parses as before, what only Python's parser
takes is refused with its place."""

import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookpost import jsonvalue
from hookpost.strict_json import NotStrictJSON, loads

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _kind(value: Any) -> type:
    return float if isinstance(value, float) else type(value)


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same JSON kinds all the way down (1 is not 1.0)."""
    if _kind(a) is not _kind(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@given(JSON_VALUES)
def test_every_json_value_parses_unchanged(value: Any) -> None:
    assert _same(loads(orjson.dumps(value)), value)
    assert _same(loads(json.dumps(value, indent=2)), value)


@given(JSON_VALUES)
def test_compact_json_is_written_back_byte_for_byte(value: Any) -> None:
    text = orjson.dumps(value)
    assert jsonvalue.dumps(loads(text)) == text


@pytest.mark.parametrize(
    "literal", ["1E2", "1.123456789012345678", "-0.0", "2.5e+3", "5e-324", "100.000"]
)
def test_numbers_keep_their_literal(literal: str) -> None:
    assert jsonvalue.dumps(loads(f'{{"n": {literal}}}')) == f'{{"n":{literal}}}'.encode()


@pytest.mark.parametrize(
    ("body", "path", "words"),
    [
        (b'{"x": NaN}', ["x"], "NaN is not a JSON value"),
        (b'{"a": [1, Infinity]}', ["a", 1], "Infinity is not a JSON value"),
        (b'{"a": {"b": -Infinity}}', ["a", "b"], "-Infinity is not a JSON value"),
        (b'{"big": 1e400}', ["big"], "the number 1e400 is out of range"),
        (b"[0, -1E999]", [1], "out of range"),
        (b'{"x": 1, "x": 2}', ["x"], "'x' appears more than once"),
        (b'{"a": [{"k": 1, "j": 2, "k": 3}]}', ["a", 0, "k"], "'k' appears more than once"),
    ],
)
def test_what_only_python_accepts_is_refused_with_its_place(
    body: bytes, path: list[str | int], words: str
) -> None:
    with pytest.raises(NotStrictJSON) as refused:
        loads(body)
    assert refused.value.path == path
    assert words in refused.value.message


def test_the_first_fault_is_named() -> None:
    with pytest.raises(NotStrictJSON) as refused:
        loads(b'{"ok": 1.5, "first": [NaN], "second": {"d": 1, "d": 2}}')
    assert refused.value.path == ["first", 0]


def test_what_is_not_json_at_all_stays_a_decode_error() -> None:
    with pytest.raises(json.JSONDecodeError):
        loads(b'{"x": ')
