"""Routing beyond subscriptions, on the real queue with a real receiver: channels (an
endpoint that listens to channels receives only the events that share one)."""

import uuid
from typing import Any

import asyncpg
import orjson
from httpx import AsyncClient

from hookpost import ids
from hookpost.settings import Settings
from tests.integration.delivery_helpers import eventually, running_worker
from tests.integration.helpers import (
    create_endpoint,
    create_event_type,
    create_tenant,
    ok,
    problem,
)
from tests.receiver import receiver


async def _emit(admin: AsyncClient, n: int, **fields: Any) -> dict[str, Any]:
    body = {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {"n": n}} | fields
    return ok(await admin.post("/v1/events", json=body), 202)


async def test_an_endpoint_with_channels_gets_only_the_events_that_share_one(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver() as target:
        await create_tenant(admin, uid="acme")
        await create_event_type(admin, "invoice.paid")
        project = await create_endpoint(
            admin,
            "acme",
            url=target.url + "/project",
            event_types=["*"],
            channels=["project_1", "project_1", "team:ops"],
        )
        assert project["channels"] == ["project_1", "team:ops"]
        everything = await create_endpoint(
            admin, "acme", url=target.url + "/all", event_types=["*"]
        )
        assert everything["channels"] is None
        async with running_worker(settings):
            counts = [
                (await _emit(admin, 0, channels=["project_1"]))["deliveries"],
                (await _emit(admin, 1, channels=["project_2", "team:ops"]))["deliveries"],
                (await _emit(admin, 2, channels=["project_2"]))["deliveries"],
                (await _emit(admin, 3))["deliveries"],
                (await _emit(admin, 4, channels=[]))["deliveries"],
            ]
            received = await target.wait_for(2 + 5)
            await eventually(
                lambda: db.fetchval(
                    "SELECT count(*) = 7 FROM deliveries WHERE status = 'succeeded'"
                )
            )

    assert counts == [2, 2, 1, 1, 1]
    by_path: dict[str, list[int]] = {}
    for request in received:
        by_path.setdefault(request.path, []).append(orjson.loads(request.body)["data"]["n"])
    assert sorted(by_path["/project"]) == [0, 1]
    assert sorted(by_path["/all"]) == [0, 1, 2, 3, 4]
    event = ok(await admin.get("/v1/events", params={"limit": 5}))["data"]
    assert [item["channels"] for item in event] == [
        None,
        None,
        ["project_2"],
        ["project_2", "team:ops"],
        ["project_1"],
    ]


async def test_channels_are_replaced_cleared_and_checked(admin: AsyncClient) -> None:
    await create_tenant(admin, uid="acme")
    await create_event_type(admin, "invoice.paid")
    endpoint = await create_endpoint(admin, "acme", channels=["a"])
    path = f"/v1/endpoints/{endpoint['id']}"
    assert ok(await admin.patch(path, json={"channels": ["b", "c"]}))["channels"] == ["b", "c"]
    assert ok(await admin.patch(path, json={"description": "x"}))["channels"] == ["b", "c"]
    for cleared in ([], None):
        assert ok(await admin.patch(path, json={"channels": cleared}))["channels"] is None
    too_many = [f"c{i}" for i in range(11)]
    bad: list[list[str]] = [["with space"], [""], ["x" * 129], ["a,b"], too_many]
    for value in bad:
        for response in (
            await admin.patch(path, json={"channels": value}),
            await admin.post(
                "/v1/events",
                json={
                    "tenant_id": "acme",
                    "event_type": "invoice.paid",
                    "payload": {},
                    "channels": value,
                },
            ),
        ):
            body = problem(response, 422, "validation_error")
            assert body["errors"][0]["loc"][:2] == ["body", "channels"], body


INVOICE_RULE = {"amount": {"$gt": 10000}, "currency": "eur"}

# (rule, payload, passes): each run through the filter test, that is, Postgres's evaluation
CASES: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    (INVOICE_RULE, {"amount": 12000, "currency": "eur"}, True),
    (INVOICE_RULE, {"amount": 12000, "currency": "usd"}, False),
    (INVOICE_RULE, {"amount": 10000, "currency": "eur"}, False),
    (INVOICE_RULE, {"amount": "12000", "currency": "eur"}, False),  # a string is no number
    (INVOICE_RULE, {"currency": "eur"}, False),
    ({"amount": {"$gte": 5, "$lt": 10}}, {"amount": 5.0}, True),
    ({"amount": {"$gte": 5, "$lt": 10}}, {"amount": 10}, False),
    ({"tags": "vip"}, {"tags": ["new", "vip"]}, True),  # an array matches by any element
    ({"tags": "vip"}, {"tags": ["new"]}, False),
    ({"items": {"sku": "x"}}, {"items": [{"sku": "y"}, {"sku": "x"}]}, True),
    ({"customer": {"country": {"$in": ["FR", "DE"]}}}, {"customer": {"country": "DE"}}, True),
    ({"customer": {"country": {"$nin": ["FR", "DE"]}}}, {"customer": {"country": "DE"}}, False),
    ({"customer": {"country": {"$nin": ["FR", "DE"]}}}, {"customer": {}}, True),
    ({"status": {"$ne": "void"}}, {"status": "paid"}, True),
    ({"status": {"$ne": "void"}}, {"status": 3}, True),  # not comparable: not equal either
    ({"status": {"$ne": "void"}}, {}, True),
    ({"status": {"$ne": "void"}}, {"status": "void"}, False),
    ({"coupon": {"$exists": True}}, {"coupon": None}, True),
    ({"coupon": {"$exists": False}}, {"coupon": None}, False),
    ({"coupon": None}, {"coupon": None}, True),
    ({"paid": True}, {"paid": True}, True),
    ({"paid": True}, {"paid": 1}, False),
    ({"sku": {"$starts_with": "pro-"}}, {"sku": "pro-42"}, True),
    ({"$or": [{"a": 1}, {"b": 2}]}, {"b": 2}, True),
    ({"$or": [{"a": 1}, {"b": 2}]}, {"a": 2}, False),
    ({"$and": [{"a": 1}, {"b": 2}]}, {"a": 1, "b": 2}, True),
    ({"$not": {"a": {"$gt": 1}}}, {"a": 0}, True),
    ({"$not": {"a": {"$gt": 1}}}, {"a": "x"}, True),
    ({"$not": {"a": {"$gt": 1}}}, {"a": 2}, False),
    ({'we"ird.key': "é"}, {'we"ird.key': "é"}, True),
    ({"a.b": 1}, {"a": {"b": 1}}, False),  # a key is a key, dots included
]


async def test_the_filter_test_evaluates_each_rule_as_the_fan_out_does(
    admin: AsyncClient,
) -> None:
    await create_tenant(admin, uid="acme")
    await create_event_type(admin, "invoice.paid")
    endpoint = await create_endpoint(admin, "acme", event_types=["invoice.paid"])
    path = f"/v1/endpoints/{endpoint['id']}"
    for rule, payload, passes in CASES:
        ok(await admin.patch(path, json={"filters": {"invoice.paid": rule}}))
        answer = ok(
            await admin.post(
                f"{path}/filter-test", json={"event_type": "invoice.paid", "payload": payload}
            )
        )
        assert answer["delivered"] is passes, (rule, payload, answer)
        assert answer["subscriptions"][0]["passes"] is passes


async def test_the_filter_test_says_why_not(admin: AsyncClient) -> None:
    await create_tenant(admin, uid="acme")
    await create_event_type(admin, "invoice.paid")
    await create_event_type(admin, "user.signup")
    bare = await create_endpoint(admin, "acme")
    endpoint = await create_endpoint(
        admin,
        "acme",
        event_types=["invoice.*", "user.signup"],
        channels=["eu"],
        filters={"invoice.*": INVOICE_RULE},
    )

    async def verdict(target: dict[str, Any], **body: Any) -> dict[str, Any]:
        body = {"event_type": "invoice.paid", "payload": {"amount": 1}, **body}
        answer: dict[str, Any] = ok(
            await admin.post(f"/v1/endpoints/{target['id']}/filter-test", json=body)
        )
        return answer

    assert (await verdict(bare))["reason"] == "the endpoint subscribes to no event type"
    assert (await verdict(endpoint))["reason"] == (
        "the endpoint listens to none of the event's channels"
    )
    refused = await verdict(endpoint, channels=["eu"])
    assert not refused["delivered"]
    assert refused["reason"] == "the filters of the subscriptions that take it refuse it"
    assert [(s["event_type"], s["takes_type"], s["passes"]) for s in refused["subscriptions"]] == [
        ("invoice.*", True, False),
        ("user.signup", False, True),
    ]
    other = await verdict(endpoint, channels=["eu"], event_type="refund.made")
    assert other["reason"] == "no subscription takes 'refund.made'"
    taken = await verdict(endpoint, channels=["eu"], payload={"amount": 20000, "currency": "eur"})
    assert (taken["delivered"], taken["reason"]) == (
        True,
        "the subscription to 'invoice.*' takes it",
    )
    problem(
        await admin.post(f"/v1/endpoints/{endpoint['id']}/filter-test", json={"payload": {}}),
        422,
        "validation_error",
    )


async def test_filters_are_set_kept_replaced_and_cleared(admin: AsyncClient) -> None:
    await create_tenant(admin, uid="acme")
    await create_event_type(admin, "invoice.paid")
    endpoint = await create_endpoint(
        admin, "acme", event_types=["invoice.paid", "user.*"], filters={"user.*": {"a": 1}}
    )
    assert endpoint["filters"] == {"user.*": {"a": 1}}
    path = f"/v1/endpoints/{endpoint['id']}"
    # a change of event_types keeps the filters of the patterns that stay
    kept = ok(await admin.patch(path, json={"event_types": ["user.*", "*"]}))
    assert (kept["event_types"], kept["filters"]) == (["user.*", "*"], {"user.*": {"a": 1}})
    replaced = ok(await admin.patch(path, json={"filters": {"*": {"b": {"$exists": True}}}}))
    assert replaced["filters"] == {"*": {"b": {"$exists": True}}}
    for cleared in ({}, None):
        assert ok(await admin.patch(path, json={"filters": cleared}))["filters"] == {}
    # the subscriptions API sets a filter, and subscribing again sets it anew
    subscriptions = f"{path}/subscriptions"
    made = ok(await admin.post(subscriptions, json={"event_type": "user.*", "filter": {"c": 3}}))
    assert made["filter"] == {"c": 3}
    listed = ok(await admin.get(subscriptions))["data"]
    assert {item["event_type"]: item["filter"] for item in listed} == {
        "user.*": {"c": 3},
        "*": None,
    }
    ok(await admin.post(subscriptions, json={"event_type": "user.*"}))
    assert ok(await admin.get(path))["filters"] == {}


async def test_a_wrong_filter_is_a_problem_that_names_its_place(admin: AsyncClient) -> None:
    await create_tenant(admin, uid="acme")
    body = {"tenant_id": "acme", "url": "https://example.com", "event_types": ["user.*"]}
    wrong = problem(
        await admin.post("/v1/endpoints", json=body | {"filters": {"user.*": {"a": {"$gt": [1]}}}}),
        422,
        "invalid_filter",
    )
    assert wrong["errors"][0]["loc"] == ["body", "filters", "user.*", "a", "$gt"]
    assert wrong["detail"] == "filters.user.*.a.$gt: a comparison takes a number or a string"
    unsubscribed = problem(
        await admin.post("/v1/endpoints", json=body | {"filters": {"invoice.*": {"a": 1}}}),
        422,
        "invalid_filter",
    )
    assert unsubscribed["errors"][0]["loc"] == ["body", "filters", "invoice.*"]
    assert ok(await admin.get("/v1/endpoints"))["data"] == []  # nothing was stored
    endpoint = await create_endpoint(admin, "acme", event_types=["user.*"])
    subscribing = problem(
        await admin.post(
            f"/v1/endpoints/{endpoint['id']}/subscriptions",
            json={"event_type": "*", "filter": {"$or": "x"}},
        ),
        422,
        "invalid_filter",
    )
    assert subscribing["errors"][0]["loc"] == ["body", "filter", "$or"]


async def test_the_fan_out_delivers_only_what_a_filter_passes(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    """One batch: each invoice goes to the filtered endpoint only if the rule passes it;
    the unfiltered one gets them all; and every event is stored, delivered or not."""
    payloads = [
        {"n": 0, "amount": 12000, "currency": "eur"},
        {"n": 1, "amount": 12000, "currency": "usd"},
        {"n": 2, "amount": 9000, "currency": "eur"},
        {"n": 3, "amount": 50000, "currency": "eur"},
        {"n": 4},
    ]
    async with receiver() as target:
        await create_tenant(admin, uid="acme")
        await create_event_type(admin, "invoice.paid")
        await create_endpoint(
            admin,
            "acme",
            url=target.url + "/big",
            event_types=["invoice.paid"],
            filters={"invoice.paid": INVOICE_RULE},
        )
        await create_endpoint(admin, "acme", url=target.url + "/all", event_types=["*"])
        async with running_worker(settings):
            batch = [
                {"tenant_id": "acme", "event_type": "invoice.paid", "payload": payload}
                for payload in payloads
            ]
            emitted = ok(await admin.post("/v1/events/batch", json={"events": batch}), 202)
            received = await target.wait_for(2 + 5)
            await eventually(
                lambda: db.fetchval(
                    "SELECT count(*) = 7 FROM deliveries WHERE status = 'succeeded'"
                )
            )
    assert [item["deliveries"] for item in emitted["data"]] == [2, 1, 1, 2, 1]
    big = sorted(orjson.loads(r.body)["data"]["n"] for r in received if r.path == "/big")
    assert big == [0, 3]
    assert await db.fetchval("SELECT count(*) FROM events") == 5


async def test_a_payload_jsonb_cannot_read_is_stored_and_passes_no_filter(
    admin: AsyncClient, db: asyncpg.Connection
) -> None:
    """Postgres's jsonb refuses a string holding NUL: such an event is still stored and
    fanned out to unfiltered subscriptions, filtered ones do not take it, and the filter test
    says the same; the text backslash-u0000 (an escaped backslash) is an ordinary string."""
    await create_tenant(admin, uid="acme")
    await create_event_type(admin, "invoice.paid")
    await create_endpoint(admin, "acme", event_types=["*"])
    filtered = await create_endpoint(
        admin, "acme", event_types=["*"], filters={"*": {"note": {"$exists": True}}}
    )
    nul = await _emit(admin, 0, payload={"note": "a\u0000b"})
    text = await _emit(admin, 1, payload={"note": "\\u0000"})
    assert (nul["deliveries"], text["deliveries"]) == (1, 2)
    stored = await db.fetchval("SELECT body::text FROM events WHERE id = $1", _id(nul))
    assert '"note":"a\\u0000b"' in stored  # json keeps the escape as it came
    for payload, delivered in (({"note": "a\u0000b"}, False), ({"note": "\\u0000"}, True)):
        answer = ok(
            await admin.post(
                f"/v1/endpoints/{filtered['id']}/filter-test",
                json={"event_type": "invoice.paid", "payload": payload},
            )
        )
        assert answer["delivered"] is delivered  # as the fan-out did
    wrong = problem(
        await admin.patch(
            f"/v1/endpoints/{filtered['id']}", json={"filters": {"*": {"note": "\u0000"}}}
        ),
        422,
        "invalid_filter",
    )
    assert wrong["errors"][0]["loc"] == ["body", "filters", "*", "note"]


def _id(event: dict[str, Any]) -> uuid.UUID | None:
    return ids.decode(ids.Prefix.EVENT, event["id"])
