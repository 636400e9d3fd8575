"""Event ingestion: emit, validate, deduplicate, fan out; and reading events back."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import orjson
import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from hookpost import ids
from hookpost.db.engine import plain_dsn
from hookpost.ingest import group as group_module
from hookpost.ingest.emit import (
    Emitted,
    EventIn,
    EventTypeCache,
    IdempotencyConflict,
    StaleTenant,
    UnknownEventType,
)
from hookpost.ingest.group import EmitGroup
from hookpost.ingest.validation import Validator
from tests.integration.helpers import (
    create_endpoint,
    create_event_type,
    create_tenant,
    ok,
    problem,
    tenant_key,
)


async def _setup(admin: AsyncClient, *types: str) -> dict[str, Any]:
    tenant = await create_tenant(admin, uid="acme")
    for name in types or ("invoice.paid",):
        await create_event_type(admin, name)
    return tenant


async def _emit(client: AsyncClient, event_type: str = "invoice.paid", **fields: Any) -> Any:
    body = {"tenant_id": "acme", "event_type": event_type, "payload": {"n": 1}} | fields
    return await client.post("/v1/events", json=body)


async def test_fan_out_to_none_one_and_many(admin: AsyncClient, db: asyncpg.Connection) -> None:
    tenant = await _setup(admin)
    first = ok(await _emit(admin), 202)
    assert first["deliveries"] == 0
    assert first["duplicate"] is False
    assert first["id"].startswith("evt_")
    assert first["tenant_id"] == tenant["id"]

    one = await create_endpoint(admin, "acme", event_types=["invoice.paid"])
    assert ok(await _emit(admin), 202)["deliveries"] == 1
    for _ in range(4):
        await create_endpoint(admin, "acme", event_types=["*"])
    event = ok(await _emit(admin), 202)
    assert event["deliveries"] == 5

    shown = ok(await admin.get(f"/v1/events/{event['id']}"))
    assert len(shown["deliveries"]) == 5
    assert {d["status"] for d in shown["deliveries"]} == {"pending"}
    assert one["id"] in {d["endpoint_id"] for d in shown["deliveries"]}
    assert all(d["id"].startswith("dlv_") for d in shown["deliveries"])
    assert await db.fetchval("SELECT count(*) FROM deliveries") == 6


async def test_deleted_and_other_tenants_endpoints_are_skipped_disabled_ones_recorded(
    admin: AsyncClient,
) -> None:
    await _setup(admin)
    other = await create_tenant(admin, uid="other")
    await create_endpoint(admin, other["id"], event_types=["*"])
    disabled = await create_endpoint(admin, "acme", event_types=["*"], enabled=False)
    gone = await create_endpoint(admin, "acme", event_types=["*"])
    await admin.delete(f"/v1/endpoints/{gone['id']}")
    live = await create_endpoint(admin, "acme", event_types=["*"])

    event = ok(await _emit(admin), 202)
    assert event["deliveries"] == 2
    shown = ok(await admin.get(f"/v1/events/{event['id']}"))
    states = {d["endpoint_id"]: (d["status"], d["status_reason"]) for d in shown["deliveries"]}
    assert states == {
        live["id"]: ("pending", None),
        # recorded as failed, so that `recover` can send it once the endpoint is enabled
        disabled["id"]: (
            "failed",
            "emitted while the endpoint was disabled: disabled when created",
        ),
    }


async def test_each_pattern_kind(admin: AsyncClient) -> None:
    names = ("invoice.paid", "invoice.item.created", "invoicex.paid", "invoice", "user.signup")
    await _setup(admin, *names)
    exact = await create_endpoint(admin, "acme", event_types=["invoice.paid"])
    prefix = await create_endpoint(admin, "acme", event_types=["invoice.*"])
    everything = await create_endpoint(admin, "acme", event_types=["*"])
    expected = {
        "invoice.paid": {exact["id"], prefix["id"], everything["id"]},
        "invoice.item.created": {prefix["id"], everything["id"]},
        "invoicex.paid": {everything["id"]},
        "invoice": {everything["id"]},
        "user.signup": {everything["id"]},
    }
    for name, endpoints in expected.items():
        event = ok(await _emit(admin, name), 202)
        shown = ok(await admin.get(f"/v1/events/{event['id']}"))
        assert {d["endpoint_id"] for d in shown["deliveries"]} == endpoints, name


async def test_overlapping_subscriptions_give_one_delivery(admin: AsyncClient) -> None:
    await _setup(admin)
    await create_endpoint(admin, "acme", event_types=["invoice.paid", "invoice.*", "*"])
    assert ok(await _emit(admin), 202)["deliveries"] == 1


async def test_the_stored_body_is_the_webhook_body(
    admin: AsyncClient, db: asyncpg.Connection
) -> None:
    await _setup(admin)
    event = ok(await _emit(admin, payload={"b": [1, 2], "a": "x"}), 202)
    body = orjson.loads(await db.fetchval("SELECT body::text FROM events"))
    assert body["id"] == event["id"]
    assert body["type"] == "invoice.paid"
    assert body["data"] == {"b": [1, 2], "a": "x"}
    assert body["timestamp"].endswith("Z")


async def test_schema_validation(admin: AsyncClient) -> None:
    await create_tenant(admin, uid="acme")
    schema = {
        "type": "object",
        "required": ["invoice"],
        "properties": {
            "invoice": {
                "type": "object",
                "properties": {"amount": {"type": "integer", "minimum": 0}},
            }
        },
    }
    await create_event_type(admin, "invoice.paid", schema=schema)
    body = problem(await _emit(admin, payload={"invoice": {"amount": -5}}), 422, "payload_invalid")
    assert body["errors"][0]["loc"] == ["body", "payload", "invoice", "amount"]
    problem(await _emit(admin, payload={}), 422, "payload_invalid")
    ok(await _emit(admin, payload={"invoice": {"amount": 5}}), 202)


async def test_unknown_and_archived_types(admin: AsyncClient) -> None:
    await _setup(admin)
    unknown = problem(await _emit(admin, "nope.nothing"), 422, "unknown_event_type")
    assert "'nope.nothing'" in unknown["detail"]
    assert "POST /v1/event-types" in unknown["detail"]
    await admin.patch("/v1/event-types/invoice.paid", json={"archived": True})
    problem(await _emit(admin), 422, "event_type_archived")


async def test_bad_input(admin: AsyncClient) -> None:
    await _setup(admin)
    problem(await _emit(admin, payload=[1, 2]), 422, "validation_error")
    problem(await _emit(admin, payload=None), 422, "validation_error")
    problem(
        await admin.post("/v1/events", json={"event_type": "x", "payload": {}}),
        422,
        "validation_error",
    )
    problem(
        await admin.post(
            "/v1/events", content=b'{"tenant_id": ', headers={"content-type": "application/json"}
        ),
        400,
        "malformed_json",
    )
    problem(await _emit(admin, tenant_id="ghost"), 404, "tenant_not_found")


async def test_idempotency_sequential(admin: AsyncClient, db: asyncpg.Connection) -> None:
    await _setup(admin)
    await create_endpoint(admin, "acme", event_types=["*"])
    first = ok(await _emit(admin, idempotency_key="k1", payload={"a": 1, "b": 2}), 202)
    # the same payload, keys in another order: the first event, nothing created
    again = ok(await _emit(admin, idempotency_key="k1", payload={"b": 2, "a": 1}), 200)
    assert again["id"] == first["id"]
    assert again["duplicate"] is True
    assert again["deliveries"] == 1
    by_header = await admin.post(
        "/v1/events",
        json={"tenant_id": "acme", "event_type": "invoice.paid", "payload": {"a": 1, "b": 2}},
        headers={"Idempotency-Key": "k1"},
    )
    assert ok(by_header, 200)["id"] == first["id"]
    problem(await _emit(admin, idempotency_key="k1", payload={"a": 2}), 409, "idempotency_conflict")
    assert await db.fetchval("SELECT count(*) FROM events") == 1
    assert await db.fetchval("SELECT count(*) FROM deliveries") == 1

    # keys are per tenant
    await create_tenant(admin, uid="other")
    ok(await _emit(admin, tenant_id="other", idempotency_key="k1", payload={"a": 1, "b": 2}), 202)
    mismatch = await admin.post(
        "/v1/events",
        json={
            "tenant_id": "acme",
            "event_type": "invoice.paid",
            "payload": {},
            "idempotency_key": "a",
        },
        headers={"Idempotency-Key": "b"},
    )
    problem(mismatch, 422, "validation_error")


async def test_an_invalid_idempotency_key_header_is_a_validation_error(
    admin: AsyncClient, db: asyncpg.Connection
) -> None:
    """The header is read by the route itself (a Header() parameter cost too much on the
    hottest route) and answers as FastAPI's own validation would, naming the header."""
    await _setup(admin)
    body = {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {}}
    for key in ("", "k" * 256):
        answer = await admin.post("/v1/events", json=body, headers={"Idempotency-Key": key})
        found = problem(answer, 422, "validation_error")
        assert [error["loc"] for error in found["errors"]] == [["header", "Idempotency-Key"]]
    assert await db.fetchval("SELECT count(*) FROM events") == 0
    spec = ok(await admin.get("/openapi.json"))
    [header] = spec["paths"]["/v1/events"]["post"]["parameters"]
    assert header["name"] == "Idempotency-Key"
    assert header["in"] == "header"


async def test_idempotency_concurrent(
    admin: AsyncClient, db: asyncpg.Connection, client_for: Callable[[str], AsyncClient]
) -> None:
    await _setup(admin)
    await create_endpoint(admin, "acme", event_types=["*"])
    clients = [client_for("hp_test_admin_key") for _ in range(8)]
    answers = await asyncio.gather(*(_emit(c, idempotency_key="race") for c in clients))
    assert sorted(a.status_code for a in answers) == [200] * 7 + [202]
    assert len({a.json()["id"] for a in answers}) == 1
    assert await db.fetchval("SELECT count(*) FROM events") == 1
    assert await db.fetchval("SELECT count(*) FROM deliveries") == 1


async def test_payload_size_limit(admin: AsyncClient) -> None:
    await _setup(admin)
    big = {"blob": "x" * (256 * 1024)}
    problem(await _emit(admin, payload=big), 413, "payload_too_large")
    ok(await _emit(admin, payload={"blob": "x" * (250 * 1024)}), 202)


async def test_request_size_limit(admin: AsyncClient) -> None:
    await _setup(admin)
    huge = b'{"events": [' + b"1," * (6 * 1024 * 1024) + b"1]}"
    response = await admin.post(
        "/v1/events/batch", content=huge, headers={"content-type": "application/json"}
    )
    problem(response, 413, "request_too_large")

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"events": ['
        for _ in range(12):
            yield b"1," * (512 * 1024)
        yield b"1]}"

    chunked = await admin.post(
        "/v1/events/batch", content=chunks(), headers={"content-type": "application/json"}
    )
    problem(chunked, 413, "request_too_large")


async def test_tenant_key_cannot_emit_for_another_tenant(
    admin: AsyncClient, client_for: Callable[[str], AsyncClient]
) -> None:
    mine = await _setup(admin)
    await create_tenant(admin, uid="theirs")
    tenant = client_for(await tenant_key(admin, mine["id"]))
    problem(await _emit(tenant, tenant_id="theirs"), 404, "tenant_not_found")
    own = ok(
        await tenant.post("/v1/events", json={"event_type": "invoice.paid", "payload": {}}), 202
    )
    assert own["tenant_id"] == mine["id"]
    theirs = ok(await _emit(admin, tenant_id="theirs"), 202)
    problem(await tenant.get(f"/v1/events/{theirs['id']}"), 404, "event_not_found")
    assert [e["id"] for e in ok(await tenant.get("/v1/events"))["data"]] == [own["id"]]
    problem(await tenant.get("/v1/events", params={"tenant_id": "theirs"}), 404, "tenant_not_found")
    problem(
        await tenant.post(
            "/v1/events/batch",
            json={"events": [{"tenant_id": "theirs", "event_type": "invoice.paid", "payload": {}}]},
        ),
        404,
        "tenant_not_found",
    )


async def test_a_uid_that_moved_to_another_tenant_is_never_served_from_the_cache(
    admin: AsyncClient, db: asyncpg.Connection
) -> None:
    """The API caches tenant ids by uid; the store checks the uid again, so an event never
    goes to the tenant that had the uid before (a change another API process made)."""
    first = await _setup(admin)
    ok(await _emit(admin), 202)  # "acme" -> first, now cached
    ok(await admin.patch(f"/v1/tenants/{first['id']}", json={"uid": "acme-old"}))
    second = await create_tenant(admin, uid="acme")
    assert ok(await _emit(admin), 202)["tenant_id"] == second["id"]
    batch = [
        {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {"i": i}} for i in (1, 2)
    ]
    answer = ok(await admin.post("/v1/events/batch", json={"events": batch}), 202)
    assert {item["tenant_id"] for item in answer["data"]} == {second["id"]}
    counts = dict(await db.fetch("SELECT tenant_id, count(*) FROM events GROUP BY tenant_id"))
    assert sorted(counts.values()) == [1, 3]  # the first event only went to the first tenant

    deleted = await admin.delete(f"/v1/tenants/{second['id']}")  # "acme" -> second, cached
    assert deleted.status_code == 204
    problem(await _emit(admin), 404, "tenant_not_found")
    problem(await _emit(admin, tenant_id=second["id"]), 404, "tenant_not_found")
    body = problem(
        await admin.post("/v1/events/batch", json={"events": batch}), 404, "tenant_not_found"
    )
    assert "acme" in body["detail"]
    assert await db.fetchval("SELECT count(*) FROM events") == 1


async def test_batch_of_1000_fans_out_3000_deliveries_in_one_transaction(
    admin: AsyncClient, db: asyncpg.Connection
) -> None:
    await _setup(admin)
    for _ in range(3):
        await create_endpoint(admin, "acme", event_types=["invoice.*"])
    batch = [
        {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {"i": i}}
        for i in range(1000)
    ]
    answer = ok(await admin.post("/v1/events/batch", json={"events": batch}), 202)
    assert len(answer["data"]) == 1000
    assert all(item["deliveries"] == 3 for item in answer["data"])
    assert await db.fetchval("SELECT count(*) FROM deliveries") == 3000
    # every row was written by one transaction
    assert await db.fetchval("SELECT count(DISTINCT xmin::text) FROM deliveries") == 1
    assert await db.fetchval("SELECT count(DISTINCT xmin::text) FROM events") == 1


async def test_batch_is_all_or_nothing(admin: AsyncClient, db: asyncpg.Connection) -> None:
    await _setup(admin)
    good = {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {}}
    body = problem(
        await admin.post(
            "/v1/events/batch", json={"events": [good, good | {"event_type": "nope"}]}
        ),
        422,
        "unknown_event_type",
    )
    assert "event 1" in body["detail"]
    assert await db.fetchval("SELECT count(*) FROM events") == 0
    problem(await admin.post("/v1/events/batch", json={"events": []}), 422, "validation_error")
    problem(
        await admin.post("/v1/events/batch", json={"events": [good] * 1001}),
        422,
        "validation_error",
    )
    big = good | {"payload": {"x": "y" * 300_000}}
    problem(
        await admin.post("/v1/events/batch", json={"events": [good, big]}), 413, "payload_too_large"
    )


async def test_batch_idempotency(admin: AsyncClient, db: asyncpg.Connection) -> None:
    await _setup(admin)
    item = {
        "tenant_id": "acme",
        "event_type": "invoice.paid",
        "payload": {},
        "idempotency_key": "x",
    }
    answer = ok(await admin.post("/v1/events/batch", json={"events": [item, item]}), 202)
    assert [i["duplicate"] for i in answer["data"]] == [False, True]
    assert answer["data"][0]["id"] == answer["data"][1]["id"]
    problem(
        await admin.post("/v1/events/batch", json={"events": [item | {"payload": {"z": 1}}]}),
        409,
        "idempotency_conflict",
    )
    assert await db.fetchval("SELECT count(*) FROM events") == 1


async def test_emit_notifies_the_workers(admin: AsyncClient, db: asyncpg.Connection) -> None:
    await _setup(admin)
    heard: asyncio.Queue[str] = asyncio.Queue()
    await db.add_listener("hookpost_deliveries", lambda *args: heard.put_nowait(args[2]))
    ok(await _emit(admin), 202)  # no endpoint: nothing to deliver, no wake-up
    await create_endpoint(admin, "acme", event_types=["*"])
    ok(await _emit(admin), 202)
    await asyncio.wait_for(heard.get(), timeout=5)
    assert heard.empty()
    batch = {"events": [{"tenant_id": "acme", "event_type": "invoice.paid", "payload": {}}] * 3}
    ok(await admin.post("/v1/events/batch", json=batch), 202)
    await asyncio.wait_for(heard.get(), timeout=5)
    ok(await _emit(admin), 202)  # notifications arrive in commit order: this one comes next
    await asyncio.wait_for(heard.get(), timeout=5)
    assert heard.empty()  # one wake-up for the batch


async def test_the_workers_are_woken_by_what_commits_only(
    admin: AsyncClient, db: asyncpg.Connection
) -> None:
    """The storing statement notifies, so the notification goes or stays with its
    transaction: a batch refused for an idempotency conflict rolls back and wakes nobody,
    and a delivery recorded as failed (its endpoint disabled) has nothing to send."""
    await _setup(admin)
    endpoint = await create_endpoint(admin, "acme", event_types=["*"])
    ok(await _emit(admin, idempotency_key="k", payload={"a": 1}), 202)
    heard: asyncio.Queue[str] = asyncio.Queue()
    await db.add_listener("hookpost_deliveries", lambda *args: heard.put_nowait(args[2]))
    item = {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {"a": 2}}
    refused = await admin.post(
        "/v1/events/batch", json={"events": [item, item | {"idempotency_key": "k"}]}
    )
    problem(refused, 409, "idempotency_conflict")
    ok(await admin.patch(f"/v1/endpoints/{endpoint['id']}", json={"enabled": False}))
    assert ok(await _emit(admin), 202)["deliveries"] == 1
    await create_endpoint(admin, "acme", event_types=["*"])
    ok(await _emit(admin), 202)  # notifications arrive in commit order: this one is first
    await asyncio.wait_for(heard.get(), timeout=5)
    assert heard.empty()
    assert await db.fetchval("SELECT count(*) FROM events") == 3


async def test_concurrent_emits_share_a_store_each_with_its_own_outcome(
    app: FastAPI, admin: AsyncClient, db: asyncpg.Connection
) -> None:
    tenant = await _setup(admin)
    await create_endpoint(admin, "acme", event_types=["*"])
    app.state.hookpost.event_types.forget(hold_s=0)  # the type may be cached from now on
    ok(await _emit(admin, idempotency_key="taken"), 202)  # payload {"n": 1}; type cached
    group: EmitGroup = app.state.hookpost.intake.group
    stores, carried = group.stores, group.events
    acme = ids.decode(ids.Prefix.TENANT, tenant["id"])
    assert acme is not None
    with pytest.raises(UnknownEventType) as unknown:  # checked before it joins a store
        await group.emit(EventIn(acme, "nope", {}, None))
    assert unknown.value.index == 0  # the request's only event
    assert (group.stores, group.events) == (stores, carried)
    fresh = [EventIn(acme, "invoice.paid", {"n": i}, None) for i in range(5)]
    events = [
        *fresh,
        EventIn(acme, "invoice.paid", {"n": 1}, "taken"),  # a repeat
        EventIn(acme, "invoice.paid", {"n": 2}, "taken"),  # the key, another payload
        EventIn(uuid.uuid4(), "invoice.paid", {}, None),  # no such tenant
    ]
    # all wait in one step of the loop (their type is cached): one store takes them all
    outcomes = await asyncio.gather(*(group.emit(e) for e in events), return_exceptions=True)
    assert (group.stores, group.events) == (stores + 1, carried + len(events))
    stored = outcomes[:5]
    assert all(isinstance(o, Emitted) and o.created and o.deliveries == 1 for o in stored)
    assert len({o.id for o in stored if isinstance(o, Emitted)}) == 5
    repeat, conflict, stale = outcomes[5:]
    assert isinstance(repeat, Emitted)
    assert not repeat.created
    assert isinstance(conflict, IdempotencyConflict)
    assert isinstance(stale, StaleTenant)
    assert await db.fetchval("SELECT count(*) FROM events") == 6
    assert await db.fetchval("SELECT count(*) FROM deliveries") == 6


async def test_an_emit_right_after_a_store_ends_is_stored(
    app: FastAPI, admin: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store loop that has just found nothing waiting must count as ended at once: the
    request resumed by its last answer may emit again before the loop's task is done."""
    tenant = await _setup(admin)
    monkeypatch.setattr(group_module, "MAX_STORES", 1)
    group: EmitGroup = app.state.hookpost.intake.group
    acme = ids.decode(ids.Prefix.TENANT, tenant["id"])
    assert acme is not None
    async with asyncio.timeout(5):  # no task in between: this request resumes first
        for n in range(5):
            emitted = await group.emit(EventIn(acme, "invoice.paid", {"n": n}, None))
            assert emitted.created


async def test_a_store_that_fails_fails_its_requests_only(
    database_url: str, db: asyncpg.Connection
) -> None:
    pool = await asyncpg.create_pool(plain_dsn(database_url), min_size=1, max_size=2)
    group = EmitGroup(pool, EventTypeCache(), Validator(timeout_s=1, processes=1))
    await pool.close()  # the database is out of reach
    event = EventIn(uuid.uuid4(), "invoice.paid", {}, None)
    outcomes = await asyncio.gather(group.emit(event), group.emit(event), return_exceptions=True)
    assert all(isinstance(o, asyncpg.InterfaceError) for o in outcomes), outcomes
    await group.close()  # nothing is left waiting or running
    assert group.stores == 0


async def test_concurrent_requests_each_get_their_event(
    admin: AsyncClient, db: asyncpg.Connection
) -> None:
    await _setup(admin)
    await create_endpoint(admin, "acme", event_types=["*"])
    answers = await asyncio.gather(
        *(
            admin.post(
                "/v1/events",
                json={"tenant_id": "acme", "event_type": "invoice.paid", "payload": {"n": n}},
            )
            for n in range(20)
        )
    )
    made = [ok(answer, 202) for answer in answers]
    assert len({event["id"] for event in made}) == 20
    assert all(event["deliveries"] == 1 for event in made)
    stored = await db.fetch("SELECT id, body FROM events")
    assert sorted(orjson.loads(row["body"])["data"]["n"] for row in stored) == list(range(20))


async def test_list_and_filter(admin: AsyncClient) -> None:
    await _setup(admin, "invoice.paid", "user.signup")
    made = [ok(await _emit(admin, name), 202)["id"] for name in ["invoice.paid", "user.signup"] * 3]
    listed = ok(await admin.get("/v1/events", params={"tenant_id": "acme"}))
    assert [e["id"] for e in listed["data"]] == list(reversed(made))
    assert listed["data"][0]["payload"] == {"n": 1}
    only = ok(await admin.get("/v1/events", params={"event_type": "user.signup", "limit": 2}))
    assert [e["id"] for e in only["data"]] == [made[5], made[3]]
    rest = ok(
        await admin.get(
            "/v1/events", params={"event_type": "user.signup", "cursor": only["next_cursor"]}
        )
    )
    assert [e["id"] for e in rest["data"]] == [made[1]]
    assert rest["next_cursor"] is None
    problem(await admin.get("/v1/events/evt_garbage"), 404, "event_not_found")


async def test_integers_past_64_bits_are_refused_not_a_500(admin: AsyncClient) -> None:
    await _setup(admin)
    problem(await _emit(admin, payload={"n": 2**70}), 422, "payload_invalid")
