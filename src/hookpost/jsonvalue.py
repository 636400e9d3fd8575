"""JSON numbers kept as they were written: ``Number`` is a float that remembers its literal,
and ``dumps`` writes it back verbatim, so a payload's ``1.123456789012345678`` reaches a
receiver with every digit (a double alone would round it to ``1.1234567890123457``)."""

from typing import Any

import orjson


class Number(float):
    """A JSON number with a fraction or an exponent, as the request wrote it."""

    __slots__ = ("literal",)
    literal: str

    def __new__(cls, literal: str) -> "Number":
        number = super().__new__(cls, literal)
        number.literal = literal
        return number


def _literal(value: Any) -> orjson.Fragment:
    if isinstance(value, Number):
        return orjson.Fragment(value.literal)
    raise TypeError(f"{type(value).__name__} is not JSON")


def dumps(value: Any, *, sort_keys: bool = False) -> bytes:
    """``value`` as compact JSON, each ``Number`` as its literal. Raises ``orjson.JSONEncodeError``
    for what JSON cannot hold (integers past 64 bits, lone surrogates, nesting past 255)."""
    return orjson.dumps(value, default=_literal, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
