"""Input that would stall or corrupt ingest: backtracking patterns, schemas of exponential
cost, remote references, and JSON that only Python's parser accepts."""

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from standardwebhooks.webhooks import Webhook

from hookpost.app import create_app
from hookpost.ingest.validation import Validator
from hookpost.settings import Settings
from hookpost.strict_json import loads
from tests.conftest import ADMIN_KEY
from tests.integration.delivery_helpers import eventually, running_worker
from tests.integration.helpers import (
    create_endpoint,
    create_event_type,
    create_tenant,
    ok,
    problem,
)
from tests.receiver import receiver
from tests.unit.test_json_body import _same

BACKTRACKING = {"type": "object", "properties": {"x": {"type": "string", "pattern": "^(a+)+$"}}}


def _exponential_schema(depth: int) -> dict[str, Any]:
    """A schema of ``depth`` $refs each tried twice under anyOf: 2**depth steps for a value
    that fails at the bottom, whatever the regex engine."""
    defs: dict[str, Any] = {
        f"a{i}": {"anyOf": [{"$ref": f"#/$defs/a{i + 1}"}] * 2} for i in range(depth)
    }
    defs[f"a{depth}"] = {"type": "string"}
    return {"$defs": defs, "properties": {"x": {"$ref": "#/$defs/a0"}}}


async def _emit(client: AsyncClient, event_type: str, payload: Any) -> Any:
    return await client.post(
        "/v1/events", json={"tenant_id": "acme", "event_type": event_type, "payload": payload}
    )


async def test_a_backtracking_pattern_cannot_stall_ingest(admin: AsyncClient) -> None:
    await create_tenant(admin, uid="acme")
    await create_event_type(admin, "invoice.paid", schema=BACKTRACKING)
    # 2**40 steps for a backtracking engine; linear here
    attack = {"x": "a" * 40 + "!"}
    async with asyncio.timeout(5):
        emitting = asyncio.create_task(_emit(admin, "invoice.paid", attack))
        ok(await admin.get("/healthz"))
        body = problem(await emitting, 422, "payload_invalid")
    assert body["errors"][0]["loc"] == ["body", "payload", "x"]
    ok(await _emit(admin, "invoice.paid", {"x": "a" * 40}), 202)


@pytest.mark.parametrize(
    ("schema", "place"),
    [
        ({"properties": {"x": {"pattern": "^(?=a)a+$"}}}, "schema.properties.x.pattern"),
        ({"properties": {"x": {"pattern": "^(a)\\1$"}}}, "schema.properties.x.pattern"),
        ({"patternProperties": {"(?<!x)y": {}}}, "schema.patternProperties"),
    ],
)
async def test_patterns_that_need_backtracking_are_refused_at_creation(
    admin: AsyncClient, schema: dict[str, Any], place: str
) -> None:
    body = problem(
        await admin.post("/v1/event-types", json={"name": "x", "schema": schema}),
        422,
        "invalid_schema",
    )
    assert place in body["detail"]
    assert "linear-time" in body["detail"]
    assert body["errors"][0]["loc"] == ["body", "schema"]
    await create_event_type(admin, "x")
    problem(await admin.patch("/v1/event-types/x", json={"schema": schema}), 422, "invalid_schema")


async def test_remote_references_are_never_fetched(admin: AsyncClient) -> None:
    async with receiver() as target:
        schema = {"$ref": f"{target.url}/schema.json"}
        body = problem(
            await admin.post("/v1/event-types", json={"name": "x", "schema": schema}),
            422,
            "invalid_schema",
        )
        assert "schema.json" in body["detail"]
        assert target.requests == []


@pytest.fixture
async def bounded_app(settings: Settings, db: asyncpg.Connection) -> AsyncIterator[FastAPI]:
    """The app with a validation bound of half a second."""
    application = create_app(settings.model_copy(update={"validation_timeout_s": 0.5}))
    async with application.router.lifespan_context(application):
        yield application


async def test_validation_over_its_bound_fails_that_request_alone(
    bounded_app: FastAPI, db: asyncpg.Connection
) -> None:
    async with AsyncClient(
        transport=ASGITransport(app=bounded_app),
        base_url="http://test",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
    ) as admin:
        await create_tenant(admin, uid="acme")
        await create_event_type(admin, "slow", schema=_exponential_schema(60))
        await create_event_type(admin, "plain", schema={"required": ["n"]})
        validator: Validator = bounded_app.state.hookpost.validator

        emitting = asyncio.create_task(_emit(admin, "slow", {"x": 1}))
        ok(await admin.get("/healthz"))  # the process answers while the validation runs
        ok(await _emit(admin, "plain", {"n": 1}), 202)  # and so does the other process
        assert not emitting.done()
        body = problem(await emitting, 422, "payload_validation_timeout")
        assert "0.5 s" in body["detail"]
        assert "HOOKPOST_VALIDATION_TIMEOUT_S" in body["detail"]
        assert validator.timeouts == 1

        batch = [
            {"tenant_id": "acme", "event_type": t, "payload": {"x": 1, "n": 1}}
            for t in ("plain", "slow")
        ]
        body = problem(
            await admin.post("/v1/events/batch", json={"events": batch}),
            422,
            "payload_validation_timeout",
        )
        assert "(event 1)" in body["detail"]
        assert validator.timeouts == 2
        ok(await _emit(admin, "slow", {"x": "fine"}), 202)  # a fresh process, fast answers
    assert await db.fetchval("SELECT count(*) FROM events") == 2


@pytest.mark.parametrize(
    ("text", "loc"),
    [
        ('{"x": NaN}', ["body", "payload", "x"]),
        ('{"x": [1, Infinity]}', ["body", "payload", "x", 1]),
        ('{"x": -Infinity}', ["body", "payload", "x"]),
        ('{"x": 1e400}', ["body", "payload", "x"]),
        ('{"x": 1, "x": 2}', ["body", "payload", "x"]),
    ],
)
async def test_json_only_python_accepts_is_refused_and_nothing_stored(
    admin: AsyncClient, db: asyncpg.Connection, text: str, loc: list[str | int]
) -> None:
    await create_tenant(admin, uid="acme")
    await create_event_type(admin, "invoice.paid")
    headers = {"content-type": "application/json"}
    one = f'{{"tenant_id": "acme", "event_type": "invoice.paid", "payload": {text}}}'
    body = problem(
        await admin.post("/v1/events", content=one, headers=headers), 422, "json_not_strict"
    )
    assert body["errors"][0]["loc"] == loc
    assert ".".join(str(part) for part in loc) in body["detail"]
    batch = f'{{"events": [{one}]}}'
    body = problem(
        await admin.post("/v1/events/batch", content=batch, headers=headers), 422, "json_not_strict"
    )
    assert body["errors"][0]["loc"] == ["body", "events", 0, *loc[1:]]
    assert await db.fetchval("SELECT count(*) FROM events") == 0


async def test_every_route_reads_strict_json(admin: AsyncClient) -> None:
    headers = {"content-type": "application/json"}
    repeated = '{"name": "Acme", "name": "Evil"}'
    body = problem(
        await admin.post("/v1/tenants", content=repeated, headers=headers), 422, "json_not_strict"
    )
    assert body["errors"][0]["loc"] == ["body", "name"]
    deep = "[" * 100_000
    problem(await admin.post("/v1/tenants", content=deep, headers=headers), 400, "malformed_json")


async def test_every_operation_with_a_body_reads_strict_json(admin: AsyncClient) -> None:
    spec = ok(await admin.get("/openapi.json"))
    checked = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if "requestBody" not in operation:
                continue
            url = re.sub(r"\{[^}]+\}", "x", path)
            response = await admin.request(
                method,
                url,
                content='{"a": 1, "a": 2}',
                headers={"content-type": "application/json"},
            )
            assert problem(response, 422, "json_not_strict")["errors"][0]["loc"] == ["body", "a"]
            checked += 1
    assert checked >= 10


async def test_the_receiver_gets_what_was_accepted(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    """Numbers as written (no rounding to a double), strings as the same characters: a
    compact payload arrives byte for byte."""
    payload = (
        '{"text":"é 漢字 🎉 \\"quoted\\" \\\\ / \\n\\t\\u0001",'
        '"ints":[0,-1,9007199254740993,9223372036854775807,-9223372036854775808,'
        "18446744073709551615],"
        '"numbers":[0.1,-0.0,1E2,1e-7,2.5e+3,1.123456789012345678,'
        "1.7976931348623157e308,5e-324,100.0],"
        '"nested":{"":null,"a":[true,false,{},[]]}}'
    )
    async with receiver() as target:
        await create_tenant(admin, uid="acme")
        await create_event_type(admin, "invoice.paid", schema={"type": "object"})
        endpoint = await create_endpoint(admin, "acme", url=target.url, event_types=["*"])
        secret = ok(await admin.get(f"/v1/endpoints/{endpoint['id']}/secret"))["key"]
        async with running_worker(settings):
            event = (
                '{"tenant_id": "acme", "event_type": "invoice.paid", "payload": ' + payload + "}"
            )
            headers = {"content-type": "application/json"}
            ok(await admin.post("/v1/events", content=event, headers=headers), 202)
            [request] = await target.wait_for(1)
            await eventually(lambda: db.fetchval("SELECT status = 'succeeded' FROM deliveries"))
    Webhook(secret).verify(request.body, request.headers)
    assert request.body.endswith(b'"data":' + payload.encode() + b"}")
    assert _same(loads(request.body)["data"], loads(payload))
