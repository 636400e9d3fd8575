"""JSON read strictly (RFC 8259): ``NaN``, ``Infinity``, numbers beyond a double's range and
duplicate object keys are refused (``NotStrictJSON``, naming their place).

Python's parser takes all four, and each reaches a receiver changed (``NaN`` as ``null``) or
ambiguous (two receivers' parsers may keep different values of a repeated key). Numbers with
a fraction or an exponent are read as ``jsonvalue.Number``, which keeps their literal. Every
JSON text hookpost takes from outside (API bodies, sample payloads typed into a page) is read
here.
"""

import json
import math
from typing import Any, ClassVar

from hookpost.errors import HookpostError
from hookpost.jsonvalue import Number


class _Fault:
    """What stands in the parsed value where the body breaks strict JSON."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class _Repeated(dict[str, Any]):
    """An object with a repeated key (the last value kept, as ``json`` does)."""

    __slots__ = ("key",)
    key: str


class NotStrictJSON(HookpostError, ValueError):
    """The body is JSON to Python, not to RFC 8259; ``path`` is where, from the top."""

    code: ClassVar[str] = "json_not_strict"

    def __init__(self, path: list[str | int], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def loads(body: bytes | str) -> Any:
    """``body`` parsed; raises ``json.JSONDecodeError`` for what is not JSON at all and
    ``NotStrictJSON`` for what only Python's parser accepts."""
    faults = 0

    def constant(name: str) -> _Fault:
        nonlocal faults
        faults += 1
        return _Fault(f"{name} is not a JSON value")

    def number(text: str) -> Number | _Fault:
        nonlocal faults
        value = Number(text)
        if math.isinf(value):
            faults += 1
            return _Fault(f"the number {text} is out of range")
        return value

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal faults
        value = dict(items)
        if len(value) == len(items):
            return value
        faults += 1
        repeated = _Repeated(value)
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                repeated.key = key
                break
            seen.add(key)
        return repeated

    parsed = json.loads(body, parse_constant=constant, parse_float=number, object_pairs_hook=pairs)
    if faults and (fault := _first_fault(parsed, [])) is not None:
        raise fault
    return parsed


def _first_fault(value: Any, path: list[str | int]) -> NotStrictJSON | None:
    """The first place, depth first, where ``loads`` found the body not strict."""
    if isinstance(value, _Fault):
        return NotStrictJSON(path, value.message)
    if isinstance(value, _Repeated):
        return NotStrictJSON([*path, value.key], f"the key {value.key!r} appears more than once")
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if (fault := _first_fault(item, [*path, key])) is not None:
            return fault
    return None
