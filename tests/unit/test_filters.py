"""The payload filter language: what compiles to which predicate, and where a wrong rule is
wrong (``tests/integration/test_routing.py`` runs the predicates in Postgres)."""

from typing import Any

import pytest

from hookpost.admin.filters import MAX_CONDITIONS, FilterError, compile_filter


def test_fields_and_operators_compile_to_a_predicate_with_variables() -> None:
    compiled = compile_filter({"amount": {"$gt": 10000}, "currency": "eur"})
    assert compiled.path == '($."amount" > $v0 && ($."currency" == $v1))'
    assert compiled.variables == {"v0": 10000, "v1": "eur"}


def test_values_never_enter_the_predicates_text() -> None:
    hostile = '") || true || ("'
    compiled = compile_filter({'a"b': hostile, "n": {"$in": [hostile, 1]}})
    assert hostile not in compiled.path
    assert '$."a\\"b"' in compiled.path  # a key is quoted with JSON's escapes
    assert set(compiled.variables.values()) == {hostile, 1}


def test_negations_also_match_what_cannot_be_compared() -> None:
    compiled = compile_filter({"a": {"$ne": 1}})
    assert compiled.path == '((!($."a" == $v0) || ($."a" == $v0) is unknown))'


@pytest.mark.parametrize(
    ("rule", "where", "says"),
    [
        ([], [], "non-empty object"),
        ({}, [], "non-empty object"),
        ({"a": {"$gt": True}}, ["a", "$gt"], "number or a string"),
        ({"a": {"$gt": [1]}}, ["a", "$gt"], "number or a string"),
        ({"a": {"$eq": {"b": 1}}}, ["a", "$eq"], "equality takes"),
        ({"a": [1, 2]}, ["a"], "$in"),
        ({"a": {"$in": []}}, ["a", "$in"], "list of 1 to"),
        ({"a": {"$in": [1, [2]]}}, ["a", "$in", 1], "equality takes"),
        ({"a": {"$exists": 1}}, ["a", "$exists"], "true or false"),
        ({"a": {"$regex": "x"}}, ["a", "$regex"], "unknown operator"),
        ({"$or": []}, ["$or"], "non-empty list"),
        ({"$or": [{"a": 1}, 3]}, ["$or", 1], "non-empty object"),
        ({"$nor": [{"a": 1}]}, ["$nor"], "unknown operator"),
        ({"a": {"$gt": 1, "b": 2}}, ["a", "$gt"], "unknown operator"),
        ({"a": {"$starts_with": 1}}, ["a", "$starts_with"], "takes a string"),
        ({"x" * 256: 1}, ["x" * 256], "at most 255"),
    ],
)
def test_a_wrong_rule_says_where(rule: Any, where: list[str | int], says: str) -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter(rule)
    assert caught.value.where == where
    assert says in caught.value.message


def test_rules_are_bounded() -> None:
    deep: dict[str, Any] = {"a": 1}
    for _ in range(10):
        deep = {"n": deep}
    with pytest.raises(FilterError, match="nest at most"):
        compile_filter(deep)
    with pytest.raises(FilterError, match=f"at most {MAX_CONDITIONS} conditions"):
        compile_filter({f"k{i}": i for i in range(MAX_CONDITIONS + 1)})
