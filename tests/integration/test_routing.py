"""Routing beyond subscriptions, on the real queue with a real receiver: channels (an
endpoint that listens to channels receives only the events that share one)."""

from typing import Any

import asyncpg
import orjson
from httpx import AsyncClient

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
    body = {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {"n": n}, **fields}
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
