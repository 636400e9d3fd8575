"""Hostile input: schemathesis generates requests from the app's own OpenAPI spec and checks
that none gets a 5xx and every answer matches its documented schema. Bounded, so CI stays
fast; the API runs as a real server on 127.0.0.1 and no worker runs, so nothing is sent."""

import json
import re
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import ADMIN_KEY
from tests.integration.live import serving_hookpost

EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def live_api(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """What the fuzzing makes (endpoints with random URLs among it) is removed after."""
    with serving_hookpost(database_url, tmp_path_factory.mktemp("fuzz")) as url:
        yield url


def test_no_input_breaks_the_api(live_api: str) -> None:
    api = schemathesis.openapi.from_url(f"{live_api}/openapi.json")
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 30
    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def no_server_error_and_documented_answers(case: schemathesis.Case) -> None:
            response = case.call(base_url=live_api, headers=headers)
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )

        no_server_error_and_documented_answers()


# Patterns known for catastrophic backtracking (OWASP's ReDoS examples among them), and ones
# that need a backtracking engine at all (lookaround, backreferences).
HOSTILE_PATTERNS = [
    "^(a+)+$",
    "^(a|a)*$",
    "^(a|aa)+$",
    "^(.*a){20}$",
    "(x+x+)+y",
    "^(\\w+\\s?)*$",
    "^([a-zA-Z0-9])(([\\-.]|[_]+)?([a-zA-Z0-9]+))*(@){1}[a-z0-9]+[.]{1}(([a-z]{2,3})|([a-z]{2,3}[.]{1}[a-z]{2,3}))$",
    "^(?=(a+))\\1b$",
    "(a)\\1*$",
    "a{1000}{1000}",
]
ATTACKS = [
    "a" * 64 + "!",
    "x" * 64,
    "a " * 64 + "!",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@a.aaa!",
]


def test_hostile_patterns_never_stall_the_api(live_api: str) -> None:
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=live_api, headers=headers, timeout=10) as client:
        assert client.post("/v1/tenants", json={"name": "Acme", "uid": "acme"}).status_code == 201
        created = []
        for number, pattern in enumerate(HOSTILE_PATTERNS):
            schema = {"properties": {"s": {"type": "string", "pattern": pattern}}}
            name = f"hostile.p{number}"
            answer = client.post("/v1/event-types", json={"name": name, "schema": schema})
            assert answer.status_code in (201, 422), (pattern, answer.text)
            if answer.status_code == 201:
                created.append(name)
        assert created

        @settings(max_examples=50, deadline=None, derandomize=True, database=None)
        @given(name=st.sampled_from(created), text=st.sampled_from(ATTACKS) | st.text())
        def emit(name: str, text: str) -> None:
            event = {"tenant_id": "acme", "event_type": name, "payload": {"s": text}}
            answer = client.post("/v1/events", json=event)
            assert answer.status_code in (202, 422), answer.text
            assert client.get("/healthz").status_code == 200

        emit()


def _nonstandard(value: object, twist: str) -> str:
    """A JSON text of ``value`` with one thing only Python's parser reads slipped in."""
    text = json.dumps(value)
    return text[:-1] + ("," if len(text) > 2 else "") + f'"twist": {twist}}}'


def test_nonstandard_json_is_refused_everywhere(live_api: str) -> None:
    headers = {"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"}
    with httpx.Client(base_url=live_api, headers=headers, timeout=10) as client:
        spec = client.get("/openapi.json").json()
        targets = [
            (method, re.sub(r"\{[^}]+\}", "x", path))
            for path, operations in spec["paths"].items()
            for method, operation in operations.items()
            if "requestBody" in operation
        ]

        @settings(max_examples=100, deadline=None, derandomize=True, database=None)
        @given(
            target=st.sampled_from(targets),
            value=st.dictionaries(st.text(max_size=5), st.integers() | st.text(), max_size=3),
            twist=st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", '{"k": 1, "k": 2}']),
        )
        def send(target: tuple[str, str], value: dict[str, object], twist: str) -> None:
            method, url = target
            answer = client.request(method, url, content=_nonstandard(value, twist))
            assert answer.status_code == 422, answer.text
            assert answer.json()["code"] == "json_not_strict"

        send()
