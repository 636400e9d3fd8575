"""Payload filters, property-tested: for generated rules and payloads, Postgres's evaluation of
the compiled predicate (as the fan-out runs it) agrees with a reference written from the
README's description of the language: fields equal or compare, an array matches by any
element, values of different kinds do not compare (neither true nor false), and ``$ne``,
``$nin`` and ``$not`` pass whatever does not pass their positive form."""

import asyncio
from typing import Any

import asyncpg
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from hookpost.admin.filters import compile_filter
from hookpost.db.engine import plain_dsn

KEYS = ["a", "b"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["a", "b", "c"]))
leaves = st.one_of(scalars, st.lists(scalars, max_size=3))
values = st.one_of(leaves, st.dictionaries(st.sampled_from(KEYS), leaves, max_size=2))
payloads = st.dictionaries(st.sampled_from(KEYS), values, max_size=2)
ordered = st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b", "c"]))
operators = st.one_of(
    st.builds(lambda v: {"$eq": v}, scalars),
    st.builds(lambda v: {"$ne": v}, scalars),
    st.builds(lambda op, v: {op: v}, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), ordered),
    st.builds(lambda v: {"$in": v}, st.lists(scalars, min_size=1, max_size=3)),
    st.builds(lambda v: {"$nin": v}, st.lists(scalars, min_size=1, max_size=3)),
    st.builds(lambda v: {"$exists": v}, st.booleans()),
)


def _rules(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    condition = st.one_of(scalars, operators)
    if depth > 0:
        condition = st.one_of(condition, _rules(depth - 1))
    fields = st.dictionaries(st.sampled_from(KEYS), condition, min_size=1, max_size=2)
    if depth == 0:
        return fields
    inner = _rules(depth - 1)
    return st.one_of(
        fields,
        st.builds(lambda rules: {"$or": rules}, st.lists(inner, min_size=1, max_size=2)),
        st.builds(lambda rules: {"$and": rules}, st.lists(inner, min_size=1, max_size=2)),
        st.builds(lambda rule: {"$not": rule}, inner),
    )


# The reference: three-valued, None for "unknown" (values of different kinds compared).


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "structure"


def _pair(item: Any, op: str, literal: Any) -> bool | None:
    kinds = {_kind(item), _kind(literal)}
    if "structure" in kinds:
        return None
    if "null" in kinds:
        return op == "==" and item is None and literal is None
    if len(kinds) > 1:
        return None
    if op == "==":
        return bool(item == literal)
    comparisons = {">": item > literal, ">=": item >= literal, "<": item < literal}
    return bool(comparisons.get(op, item <= literal))


def _any(results: list[bool | None]) -> bool | None:
    if any(result is True for result in results):
        return True
    return None if any(result is None for result in results) else False


def _all(results: list[bool | None]) -> bool | None:
    if any(result is False for result in results):
        return False
    return None if any(result is None for result in results) else True


def _not(result: bool | None) -> bool:
    return result is not True


def _at(values: list[Any], key: str) -> list[Any]:
    """A field of each value, an array's objects unwrapped (the path's lax mode)."""
    found = []
    for value in values:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and key in item:
                found.append(item[key])
    return found


def _compare(found: list[Any], op: str, literal: Any) -> bool | None:
    items = [item for value in found for item in (value if isinstance(value, list) else [value])]
    return _any([_pair(item, op, literal) for item in items])


OPS = {"$eq": "==", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def _condition(found: list[Any], condition: Any) -> bool | None:
    if not isinstance(condition, dict):
        return _compare(found, "==", condition)
    if not all(key.startswith("$") for key in condition) or any(
        key in ("$and", "$or", "$not") for key in condition
    ):
        return _rule(found, condition)
    results = []
    for name, operand in condition.items():
        if name in OPS:
            results.append(_compare(found, OPS[name], operand))
        elif name == "$ne":
            results.append(_not(_compare(found, "==", operand)))
        elif name in ("$in", "$nin"):
            anyone = _any([_compare(found, "==", value) for value in operand])
            results.append(anyone if name == "$in" else _not(anyone))
        else:
            results.append(bool(found) is operand)
    return _all(results)


def _rule(values: list[Any], rule: dict[str, Any]) -> bool | None:
    results = []
    for key, value in rule.items():
        if key == "$and":
            results.append(_all([_rule(values, item) for item in value]))
        elif key == "$or":
            results.append(_any([_rule(values, item) for item in value]))
        elif key == "$not":
            results.append(_not(_rule(values, value)))
        else:
            results.append(_condition(_at(values, key), value))
    return _all(results)


async def _postgres(database_url: str, rule: dict[str, Any], payload: dict[str, Any]) -> bool:
    compiled = compile_filter(rule)
    connection = await asyncpg.connect(plain_dsn(database_url))
    try:
        passed = await connection.fetchval(
            "SELECT jsonb_path_match($1::jsonb, $2::jsonpath, $3::jsonb, silent => true)",
            orjson.dumps(payload).decode(),
            compiled.path,
            orjson.dumps(compiled.variables).decode(),
        )
    finally:
        await connection.close()
    return passed is True  # unknown (NULL) does not pass, as in the fan-out


@settings(max_examples=300, deadline=None)
@given(rule=_rules(2), payload=payloads)
def test_postgres_agrees_with_the_reference(
    database_url: str, rule: dict[str, Any], payload: dict[str, Any]
) -> None:
    expected = _rule([payload], rule) is True
    assert asyncio.run(_postgres(database_url, rule, payload)) is expected, (rule, payload)
