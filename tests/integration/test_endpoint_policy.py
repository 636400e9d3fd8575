"""Per-endpoint policy: an endpoint's overrides of the retry schedule and the timeout, as the
API takes and shows them, and as the worker follows them on the real queue."""

from typing import Any

import asyncpg
from httpx import AsyncClient

from hookpost.settings import Settings
from tests.integration.delivery_helpers import eventually, running_worker
from tests.integration.helpers import create_endpoint, create_tenant, ok, problem
from tests.receiver import Reply, receiver

DEFAULTS = {
    "retry_base_s": 10.0,
    "retry_factor": 3.0,
    "retry_cap_s": 21600.0,
    "retry_jitter": 0.25,
    "retry_max_attempts": 20,
    "retry_max_age_s": 259200.0,
    "timeout_s": 15.0,
}


async def test_an_endpoint_without_overrides_follows_the_settings(admin: AsyncClient) -> None:
    await create_tenant(admin, uid="acme")
    endpoint = await create_endpoint(admin, "acme")
    assert endpoint["policy"] == {}
    assert endpoint["effective_policy"] == DEFAULTS


async def test_overrides_are_shown_replaced_and_cleared(admin: AsyncClient) -> None:
    await create_tenant(admin, uid="acme")
    endpoint = await create_endpoint(
        admin, "acme", policy={"retry_max_attempts": 5, "timeout_s": 3, "retry_jitter": None}
    )
    assert endpoint["policy"] == {"retry_max_attempts": 5, "timeout_s": 3}
    assert endpoint["effective_policy"] == DEFAULTS | {"retry_max_attempts": 5, "timeout_s": 3}
    path = f"/v1/endpoints/{endpoint['id']}"
    assert ok(await admin.get(path))["policy"] == endpoint["policy"]

    # a PATCH replaces every override; one without policy keeps them
    replaced = ok(await admin.patch(path, json={"policy": {"retry_base_s": 1}}))
    assert replaced["policy"] == {"retry_base_s": 1}
    assert replaced["effective_policy"]["retry_max_attempts"] == 20
    kept = ok(await admin.patch(path, json={"description": "x"}))
    assert kept["policy"] == {"retry_base_s": 1}
    for cleared in ({}, None):
        assert ok(await admin.patch(path, json={"policy": cleared}))["policy"] == {}
    listed = ok(await admin.get("/v1/endpoints"))["data"]
    assert listed[0]["effective_policy"] == DEFAULTS


async def test_a_bad_policy_is_a_problem_that_names_the_field(admin: AsyncClient) -> None:
    await create_tenant(admin, uid="acme")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"retry_max_attempts": 0}, "retry_max_attempts"),
        ({"retry_factor": 0.5}, "retry_factor"),
        ({"retry_jitter": 2}, "retry_jitter"),
        ({"timeout_s": -1}, "timeout_s"),
        ({"retries": 3}, "retries"),  # unknown: an error, not silently dropped
        ({"timeout_s": 60}, "timeout_s"),  # not below the lease (60 s)
        ({"retry_base_s": 86_400}, "retry_base_s"),  # above the settings' cap
        ({"retry_cap_s": 1, "retry_base_s": 5}, "retry_cap_s"),
    ]
    for policy, field in cases:
        body = problem(
            await admin.post(
                "/v1/endpoints",
                json={"tenant_id": "acme", "url": "https://example.com", "policy": policy},
            ),
            422,
            "validation_error",
        )
        assert ["body", "policy", field] == body["errors"][0]["loc"][:3], (policy, body)
    endpoint = await create_endpoint(admin, "acme")
    body = problem(
        await admin.patch(f"/v1/endpoints/{endpoint['id']}", json={"policy": {"timeout_s": 90}}),
        422,
        "validation_error",
    )
    assert body["errors"][0]["loc"] == ["body", "policy", "timeout_s"]
    assert body["detail"].startswith("policy.timeout_s: must be below the workers' lease")


async def test_the_worker_follows_each_endpoints_policy(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    """Two endpoints behind the same slow receiver (1 s to answer 500): the one whose policy
    allows 0.3 s and 2 attempts times out twice and fails; the other follows the worker's
    settings (2 s, 4 attempts) and is answered every time."""
    reply = Reply(status=500, delay_s=1.0)
    async with receiver(lambda n, r: reply) as target:
        await create_tenant(admin, uid="acme")
        strict = await create_endpoint(
            admin,
            "acme",
            url=target.url + "/strict",
            event_types=["*"],
            policy={"retry_max_attempts": 2, "retry_base_s": 0.05, "timeout_s": 0.3},
        )
        await create_endpoint(admin, "acme", url=target.url + "/lenient", event_types=["*"])
        await admin.post("/v1/event-types", json={"name": "invoice.paid"})
        async with running_worker(settings):
            body = {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {}}
            ok(await admin.post("/v1/events", json=body), 202)
            await eventually(
                lambda: db.fetchval("SELECT count(*) = 2 FROM deliveries WHERE status = 'failed'"),
                timeout=20,
            )

    rows = await db.fetch(
        "SELECT endpoint_id, attempt_number, error_kind, response_status, duration_ms "
        "FROM attempts ORDER BY started_at"
    )
    strict_id = await db.fetchval("SELECT id FROM endpoints WHERE policy <> '{}'")
    strict_attempts = [row for row in rows if row["endpoint_id"] == strict_id]
    lenient_attempts = [row for row in rows if row["endpoint_id"] != strict_id]
    assert [row["error_kind"] for row in strict_attempts] == ["timeout", "timeout"]
    assert all(250 <= row["duration_ms"] < 1000 for row in strict_attempts)
    assert [row["response_status"] for row in lenient_attempts] == [500] * 4
    reasons = await db.fetch("SELECT endpoint_id, status_reason FROM deliveries")
    assert {row["status_reason"] for row in reasons if row["endpoint_id"] == strict_id} == {
        "gave up after 2 attempts"
    }
    assert strict["effective_policy"]["timeout_s"] == 0.3
