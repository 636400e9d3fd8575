"""Payload filters: the rule language of a subscription's filter, checked and compiled to a
SQL/JSON path predicate that Postgres evaluates in the fan-out (``queue.FAN_OUT``).

A rule is a JSON object in the style of MongoDB queries (as Convoy's and Hookdeck's filters
are): ``{"amount": {"$gt": 10000}, "currency": "eur"}``. Each key names a field of the
payload (taken literally, dots included); its value is a scalar to equal, an object of
operators, or a nested rule for an object field. ``$and``, ``$or`` and ``$not`` combine rules.
Arrays match when any element does, as in MongoDB (the path's lax mode does it). Values reach
the predicate as variables (``$v0``...), never spliced into its text.
"""

from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

from hookpost.db import unstorable
from hookpost.errors import HookpostError

MAX_CONDITIONS = 64  # operators and equalities in one rule
MAX_DEPTH = 8  # nested rules
MAX_VALUES = 100  # in one $in or $nin
MAX_KEY = 255

COMPARISONS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
OPERATORS = ("$eq", "$ne", *COMPARISONS, "$in", "$nin", "$exists", "$starts_with")
Where = list[str | int]


class FilterError(HookpostError):
    """A rule that cannot be compiled; ``where`` is the path to its failing part."""

    code: ClassVar[str] = "invalid_filter"

    def __init__(self, where: Where, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


@dataclass(frozen=True)
class CompiledFilter:
    """A rule as Postgres evaluates it: ``jsonb_path_match(payload, path, variables)``."""

    path: str
    variables: dict[str, Any]


@dataclass
class _Compiler:
    variables: dict[str, Any] = field(default_factory=dict)
    conditions: int = 0

    def rule(self, rule: Any, target: str, where: Where, depth: int) -> str:
        """The predicate of ``rule`` on the value at ``target`` (a path)."""
        if depth > MAX_DEPTH:
            raise FilterError(where, f"rules nest at most {MAX_DEPTH} deep")
        if not isinstance(rule, dict) or not rule:
            raise FilterError(where, "a rule is a non-empty object of field conditions")
        parts = []
        for key, value in rule.items():
            at = [*where, key]
            if key in ("$and", "$or"):
                if not isinstance(value, list) or not value:
                    raise FilterError(at, f"{key} takes a non-empty list of rules")
                joiner = " && " if key == "$and" else " || "
                parts.append(
                    "("
                    + joiner.join(
                        self.rule(item, target, [*at, index], depth + 1)
                        for index, item in enumerate(value)
                    )
                    + ")"
                )
            elif key == "$not":
                parts.append(_negated(self.rule(value, target, at, depth + 1)))
            elif key.startswith("$"):
                raise FilterError(
                    at, f"unknown operator {key!r} here: use $and, $or, $not or a field name"
                )
            else:
                if len(key) > MAX_KEY:
                    raise FilterError(at, f"a field name has at most {MAX_KEY} characters")
                if (refused := unstorable.refusal(key)) is not None:
                    raise FilterError(at, f"a field name {refused}")
                parts.append(self.condition(value, f"{target}.{_quoted(key)}", at, depth))
        return "(" + " && ".join(parts) + ")"

    def condition(self, value: Any, target: str, where: Where, depth: int) -> str:
        """The predicate of one field's condition."""
        if isinstance(value, dict) and value and all(key.startswith("$") for key in value):
            if not any(key in ("$and", "$or", "$not") for key in value):
                return " && ".join(
                    self.operator(name, operand, target, [*where, name])
                    for name, operand in value.items()
                )
            return self.rule(value, target, where, depth + 1)
        if isinstance(value, dict):
            return self.rule(value, target, where, depth + 1)
        if isinstance(value, list):
            raise FilterError(where, 'to match one of several values use {"$in": [...]}')
        return self.operator("$eq", value, target, where)

    def operator(self, name: str, operand: Any, target: str, where: Where) -> str:
        if name in ("$eq", "$ne"):
            equal = f"{target} == {self.value(operand, where, scalar=True)}"
            return f"({equal})" if name == "$eq" else _negated(equal)
        if name in COMPARISONS:
            return f"{target} {COMPARISONS[name]} {self.value(operand, where, ordered=True)}"
        if name == "$starts_with":
            if not isinstance(operand, str):
                raise FilterError(where, "$starts_with takes a string")
            return f"({target} starts with {self.value(operand, where)})"
        if name in ("$in", "$nin"):
            if not isinstance(operand, list) or not operand or len(operand) > MAX_VALUES:
                raise FilterError(where, f"{name} takes a list of 1 to {MAX_VALUES} values")
            anyone = " || ".join(
                f"{target} == {self.value(item, [*where, index], scalar=True)}"
                for index, item in enumerate(operand)
            )
            return f"({anyone})" if name == "$in" else _negated(anyone)
        if name == "$exists":
            if not isinstance(operand, bool):
                raise FilterError(where, "$exists takes true or false")
            self.count(where)
            return f"exists({target})" if operand else f"!exists({target})"
        raise FilterError(where, f"unknown operator {name!r}: use one of {', '.join(OPERATORS)}")

    def value(
        self, operand: Any, where: Where, *, scalar: bool = False, ordered: bool = False
    ) -> str:
        """A variable holding ``operand``, checked for the operator that uses it."""
        self.count(where)
        if ordered and (isinstance(operand, bool) or not isinstance(operand, int | float | str)):
            raise FilterError(where, "a comparison takes a number or a string")
        if scalar and not (operand is None or isinstance(operand, bool | int | float | str)):
            raise FilterError(where, "an equality takes a string, a number, true, false or null")
        if isinstance(operand, str) and (refused := unstorable.refusal(operand)) is not None:
            raise FilterError(where, f"a value {refused}")
        name = f"v{len(self.variables)}"
        self.variables[name] = operand
        return f"${name}"

    def count(self, where: Where) -> None:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise FilterError(where, f"a filter has at most {MAX_CONDITIONS} conditions")


def _quoted(key: str) -> str:
    """A field name as a path's quoted key (JSON's escapes are the path's)."""
    return orjson.dumps(key).decode()


def _negated(predicate: str) -> str:
    """Not ``predicate``: true also where it is unknown (a string compared with a number),
    so that ``$ne`` and ``$not`` match what does not match, as in MongoDB."""
    return f"(!({predicate}) || ({predicate}) is unknown)"


def compile_filter(rule: Any) -> CompiledFilter:
    """The predicate of ``rule`` on a payload; FilterError names the part that is wrong."""
    compiler = _Compiler()
    path = compiler.rule(rule, "$", [], 1)
    return CompiledFilter(path, compiler.variables)
