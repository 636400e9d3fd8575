"""The delivery log (filters, pagination, detail), resend, recover, endpoint stats."""

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

from hookpost import ids
from hookpost.app import create_app
from hookpost.db.models import Delivery, DeliveryStatus, Endpoint
from hookpost.ops import logs, recovery
from hookpost.settings import Settings
from tests.conftest import ADMIN_KEY
from tests.integration.delivery_helpers import eventually, running_worker
from tests.integration.helpers import (
    create_endpoint,
    create_event_type,
    create_tenant,
    index_scans,
    ok,
    problem,
    tenant_key,
)
from tests.integration.live import serving
from tests.receiver import Reply, receiver

NOW = datetime.now(UTC)


def _u(public: str) -> Any:
    prefix = ids.Prefix(public.split("_")[0])
    return ids.decode(prefix, public)


async def _world(admin: AsyncClient, url: str = "https://a.test/") -> dict[str, Any]:
    acme = await create_tenant(admin, uid="acme")
    other = await create_tenant(admin, uid="other")
    for name in ("invoice.paid", "user.signup"):
        await create_event_type(admin, name)
    return {
        "acme": acme,
        "other": other,
        "ep1": await create_endpoint(admin, "acme", url=url, event_types=["*"]),
        "ep2": await create_endpoint(admin, "acme", url=url, event_types=["invoice.*"]),
        "ep3": await create_endpoint(admin, "other", url=url, event_types=["*"]),
    }


async def _emit(admin: AsyncClient, tenant: str, event_type: str = "invoice.paid") -> Any:
    body = {"tenant_id": tenant, "event_type": event_type, "payload": {}}
    return ok(await admin.post("/v1/events", json=body), 202)


async def _insert_delivery(
    db: asyncpg.Connection,
    event: dict[str, Any],
    endpoint: dict[str, Any],
    at: datetime,
    status: str,
) -> Any:
    delivery_id = ids.id_at(at)
    await db.execute(
        "INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, status, "
        "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        delivery_id,
        _u(event["id"]),
        _u(endpoint["id"]),
        _u(endpoint["tenant_id"]),
        event["event_type"],
        status,
        at,
    )
    return delivery_id


async def _insert_attempt(
    db: asyncpg.Connection, delivery_id: Any, endpoint: dict[str, Any], at: datetime, status: int
) -> None:
    await db.execute(
        "INSERT INTO attempts (id, delivery_id, endpoint_id, tenant_id, attempt_number, "
        "started_at, duration_ms, request_headers, response_status, error_kind, worker_id) "
        "VALUES ($1, $2, $3, $4, 1, $5, 5, '{}', $6, $7, 'w')",
        ids.id_at(at),
        delivery_id,
        _u(endpoint["id"]),
        _u(endpoint["tenant_id"]),
        at,
        status,
        None if status < 300 else "http_status",
    )


async def test_delivery_filters(admin: AsyncClient, db: asyncpg.Connection) -> None:
    w = await _world(admin)
    paid = await _emit(admin, "acme")  # ep1 and ep2
    signup = await _emit(admin, "acme", "user.signup")  # ep1
    theirs = await _emit(admin, "other")  # ep3
    await db.execute(
        "UPDATE deliveries SET status = 'failed' WHERE event_id = $1 AND endpoint_id = $2",
        _u(paid["id"]),
        _u(w["ep2"]["id"]),
    )

    async def ids_of(**params: Any) -> set[tuple[str, str]]:
        page = ok(await admin.get("/v1/deliveries", params=params))
        return {(d["event_id"], d["endpoint_id"]) for d in page["data"]}

    ep1, ep2, ep3 = w["ep1"]["id"], w["ep2"]["id"], w["ep3"]["id"]
    everything = {(paid["id"], ep1), (paid["id"], ep2), (signup["id"], ep1), (theirs["id"], ep3)}
    assert await ids_of() == everything
    assert await ids_of(tenant_id="acme") == everything - {(theirs["id"], ep3)}
    assert await ids_of(tenant_id="other") == {(theirs["id"], ep3)}
    assert await ids_of(endpoint_id=ep1) == {(paid["id"], ep1), (signup["id"], ep1)}
    assert await ids_of(event_id=paid["id"]) == {(paid["id"], ep1), (paid["id"], ep2)}
    assert await ids_of(event_type="user.signup") == {(signup["id"], ep1)}
    assert await ids_of(status="failed") == {(paid["id"], ep2)}
    assert await ids_of(status="pending", endpoint_id=ep2) == set()
    assert await ids_of(since=(NOW - timedelta(hours=1)).isoformat()) == everything
    assert await ids_of(until=(NOW - timedelta(hours=1)).isoformat()) == set()

    problem(await admin.get("/v1/deliveries", params={"status": "lost"}), 422, "validation_error")
    # not an id: a uid, which an admin key names with its tenant
    problem(await admin.get("/v1/deliveries", params={"endpoint_id": "x"}), 422, "tenant_required")
    problem(
        await admin.get("/v1/deliveries", params={"since": "2026-01-01T00:00:00"}),
        422,
        "validation_error",
    )
    problem(
        await admin.get("/v1/deliveries", params={"tenant_id": "ghost"}), 404, "tenant_not_found"
    )


async def test_status_filters_read_the_status_indexes_in_generic_plans(
    db: asyncpg.Connection,
) -> None:
    """The status indexes hold only pending, failed and cancelled rows (migration 0007). A plan
    may read such an index only where it can prove the filter's status is one of those: a
    generic plan, which a prepared statement settles on, can only if the status is a literal."""
    await db.execute("SET plan_cache_mode = force_generic_plan")
    await db.execute("SET enable_seqscan = off")
    dialect = asyncpg_dialect.dialect()
    scopes: list[tuple[dict[str, uuid.UUID], str]] = [
        ({"tenant_id": uuid.uuid4()}, "ix_deliveries_tenant_id_status_id"),
        ({"endpoint_id": uuid.uuid4()}, "ix_deliveries_endpoint_id_status_id"),
        ({}, "ix_deliveries_status_id"),
    ]
    for scope, index in scopes:
        for status in (DeliveryStatus.PENDING, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED):
            query = logs.deliveries_query(logs.DeliveryFilter(status=status, **scope))
            compiled = (
                query.order_by(Delivery.id.desc())
                .limit(51)
                .compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
            )
            arguments = ", ".join(f"'{compiled.params[name]}'" for name in compiled.positiontup)
            await db.execute(f"PREPARE log_page AS {compiled}")
            try:
                plan = await db.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE log_page({arguments})")
            finally:
                await db.execute("DEALLOCATE log_page")
            assert index in {scan["Index Name"] for scan in index_scans(json.loads(plan))}, (
                scope,
                status,
                plan,
            )


async def test_time_window_filters(admin: AsyncClient, db: asyncpg.Connection) -> None:
    w = await _world(admin)
    event = await _emit(admin, "other")
    ep = w["ep3"]
    await db.execute("DELETE FROM deliveries")
    days = {
        n: await _insert_delivery(db, event, ep, NOW - timedelta(days=n), "failed")
        for n in (1, 3, 5)
    }
    for n, delivery_id in days.items():
        await _insert_attempt(db, delivery_id, ep, NOW - timedelta(days=n), 500 if n > 1 else 200)
    window = {
        "since": (NOW - timedelta(days=4)).isoformat(),
        "until": (NOW - timedelta(days=2)).isoformat(),
    }
    found = ok(await admin.get("/v1/deliveries", params=window))["data"]
    assert [d["id"] for d in found] == [ids.encode(ids.Prefix.DELIVERY, days[3])]
    attempts = ok(await admin.get("/v1/attempts", params=window))["data"]
    assert [a["delivery_id"] for a in attempts] == [found[0]["id"]]
    ok_ones = ok(await admin.get("/v1/attempts", params={"status_code": 200}))["data"]
    assert [a["delivery_id"] for a in ok_ones] == [ids.encode(ids.Prefix.DELIVERY, days[1])]
    failing = ok(
        await admin.get(
            "/v1/attempts", params={"error_kind": "http_status", "endpoint_id": ep["id"]}
        )
    )["data"]
    assert len(failing) == 2
    by_delivery = ok(
        await admin.get(
            "/v1/attempts", params={"delivery_id": ids.encode(ids.Prefix.DELIVERY, days[5])}
        )
    )["data"]
    assert len(by_delivery) == 1
    problem(await admin.get("/v1/attempts", params={"status_code": 99}), 422, "validation_error")


async def test_pagination_is_stable_while_rows_arrive(admin: AsyncClient) -> None:
    await _world(admin)
    for _ in range(5):
        await _emit(admin, "other")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = ok(await admin.get("/v1/deliveries", params=params))
        seen += [d["id"] for d in page["data"]]
        await _emit(admin, "other")  # newer rows never enter pages already walked
        if (cursor := page["next_cursor"]) is None:
            break
    assert len(seen) == len(set(seen)) == 5
    assert seen == sorted(seen, reverse=True)


async def test_delivery_detail_and_resend(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    script = lambda n, r: Reply(status=500) if n < 2 else Reply()  # noqa: E731
    async with receiver(script) as target:
        w = await _world(admin, target.url)
        await admin.delete(f"/v1/endpoints/{w['ep2']['id']}")
        await admin.delete(f"/v1/endpoints/{w['ep3']['id']}")
        event = await _emit(admin, "acme", "user.signup")
        async with running_worker(settings, retry_max_attempts=2):

            async def failed() -> Any:
                return await db.fetchval("SELECT id FROM deliveries WHERE status = 'failed'")

            delivery_id = ids.encode(ids.Prefix.DELIVERY, await eventually(failed))
            detail = ok(await admin.get(f"/v1/deliveries/{delivery_id}"))
            assert detail["status"] == "failed"
            assert detail["event"]["id"] == event["id"]
            assert detail["endpoint"]["id"] == w["ep1"]["id"]
            assert [a["attempt_number"] for a in detail["attempts"]] == [1, 2]
            assert {a["trigger"] for a in detail["attempts"]} == {"scheduled"}

            resent = ok(await admin.post(f"/v1/deliveries/{delivery_id}/resend"), 202)
            assert resent["status"] == "pending"

            async def succeeded() -> bool:
                return bool(
                    await db.fetchval("SELECT status = 'succeeded' FROM deliveries WHERE true")
                )

            await eventually(succeeded)
        detail = ok(await admin.get(f"/v1/deliveries/{delivery_id}"))
        assert [(a["attempt_number"], a["trigger"]) for a in detail["attempts"]] == [
            (1, "scheduled"),
            (2, "scheduled"),
            (3, "manual"),
        ]
        attempts = ok(await admin.get(f"/v1/deliveries/{delivery_id}/attempts"))["data"]
        assert [a["attempt_number"] for a in attempts] == [3, 2, 1]
        assert len(target.requests) == 3

    # a resend of an in-flight delivery, or to a disabled endpoint, is refused
    await db.execute("UPDATE deliveries SET status = 'in_flight', locked_by = 'w'")
    problem(await admin.post(f"/v1/deliveries/{delivery_id}/resend"), 409, "delivery_in_flight")
    await admin.patch(f"/v1/endpoints/{w['ep1']['id']}", json={"enabled": False})
    problem(await admin.post(f"/v1/deliveries/{delivery_id}/resend"), 409, "endpoint_disabled")
    problem(await admin.get("/v1/deliveries/dlv_nope"), 404, "delivery_not_found")
    problem(await admin.post("/v1/deliveries/dlv_nope/resend"), 404, "delivery_not_found")


async def test_recover_requeues_only_failed_deliveries_of_the_window(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver() as target:
        w = await _world(admin, target.url)
        ep = w["ep3"]
        event = await _emit(admin, "other")
        await db.execute("DELETE FROM deliveries")
        inside = [
            await _insert_delivery(db, event, ep, NOW - timedelta(hours=h), "failed")
            for h in (1, 2, 3)
        ]
        succeeded = await _insert_delivery(db, event, ep, NOW - timedelta(hours=2), "succeeded")
        outside = await _insert_delivery(db, event, ep, NOW - timedelta(days=2), "failed")
        other_endpoint = await _insert_delivery(
            db, event, w["ep1"], NOW - timedelta(hours=1), "failed"
        )

        body = {"since": (NOW - timedelta(hours=4)).isoformat()}
        dry = ok(
            await admin.post(f"/v1/endpoints/{ep['id']}/recover", json=body | {"dry_run": True})
        )
        assert dry == {"queued": 3, "dry_run": True}
        assert await db.fetchval("SELECT count(*) FROM deliveries WHERE status = 'pending'") == 0
        answer = ok(await admin.post(f"/v1/endpoints/{ep['id']}/recover", json=body))
        assert answer == {"queued": 3, "dry_run": False}
        async with running_worker(settings):

            async def delivered() -> bool:
                return len(target.requests) == 3

            await eventually(delivered)
        states = {r["id"]: r["status"] for r in await db.fetch("SELECT id, status FROM deliveries")}
        assert [states[i] for i in inside] == ["succeeded"] * 3
        assert states[succeeded] == "succeeded"
        assert states[outside] == "failed"
        assert states[other_endpoint] == "failed"
        assert len(target.requests) == 3  # the succeeded one was not sent again

    again = ok(await admin.post(f"/v1/endpoints/{ep['id']}/recover", json=body))
    assert again == {"queued": 0, "dry_run": False}
    problem(
        await admin.post(f"/v1/endpoints/{ep['id']}/recover", json={"until": NOW.isoformat()}),
        422,
        "validation_error",
    )
    problem(
        await admin.post(
            f"/v1/endpoints/{ep['id']}/recover",
            json={"since": NOW.isoformat(), "until": (NOW - timedelta(hours=1)).isoformat()},
        ),
        422,
        "validation_error",
    )


async def test_recover_works_in_bounded_batches(
    admin: AsyncClient, db: asyncpg.Connection, app: FastAPI
) -> None:
    w = await _world(admin)
    event = await _emit(admin, "other")
    await db.execute("DELETE FROM deliveries")
    for n in range(25):
        await _insert_delivery(db, event, w["ep3"], NOW - timedelta(minutes=n + 1), "failed")
    async with app.state.hookpost.sessions() as session:
        endpoint = await session.get(Endpoint, _u(w["ep3"]["id"]))
    queued = await recovery.recover(
        app.state.hookpost.engine,
        endpoint,
        since=NOW - timedelta(hours=1),
        until=NOW,
        batch_size=10,
    )
    assert queued == 25
    assert await db.fetchval("SELECT count(*) FROM deliveries WHERE status = 'pending'") == 25


async def test_endpoint_stats(admin: AsyncClient, db: asyncpg.Connection) -> None:
    w = await _world(admin)
    ep = w["ep3"]
    event = await _emit(admin, "other")
    await db.execute("DELETE FROM deliveries")
    for status in ("succeeded", "succeeded", "succeeded", "failed", "pending"):
        await _insert_delivery(db, event, ep, NOW - timedelta(hours=1), status)
    old = await _insert_delivery(db, event, ep, NOW - timedelta(days=3), "pending")
    await db.execute(
        "UPDATE deliveries SET created_at = $2 WHERE id = $1", old, NOW - timedelta(days=3)
    )
    await _insert_attempt(db, old, ep, NOW - timedelta(minutes=5), 503)

    found = ok(await admin.get(f"/v1/endpoints/{ep['id']}/stats"))
    assert found["counts"] == {
        "pending": 1,
        "waiting": 0,
        "in_flight": 0,
        "succeeded": 3,
        "failed": 1,
        "cancelled": 0,
    }
    assert found["held_lanes"] == 0
    assert found["success_rate"] == 0.75
    assert found["backlog"] == 2
    # NOW was taken when the module loaded: the age has grown by the time since then
    expected_age_s = (datetime.now(UTC) - (NOW - timedelta(days=3))).total_seconds()
    assert abs(found["oldest_pending_age_s"] - expected_age_s) < 60
    assert found["last_attempt"]["status_code"] == 503
    assert found["last_attempt"]["succeeded"] is False
    assert found["last_attempt"]["error_kind"] == "http_status"

    wide = ok(
        await admin.get(
            f"/v1/endpoints/{ep['id']}/stats",
            params={"since": (NOW - timedelta(days=7)).isoformat()},
        )
    )
    assert wide["counts"]["pending"] == 2
    empty = ok(await admin.get(f"/v1/endpoints/{w['ep1']['id']}/stats"))
    assert empty["success_rate"] is None
    assert empty["last_attempt"] is None
    assert empty["backlog"] == 0
    assert empty["oldest_pending_age_s"] is None
    problem(
        await admin.get(
            f"/v1/endpoints/{ep['id']}/stats",
            params={"since": NOW.isoformat(), "until": (NOW - timedelta(days=1)).isoformat()},
        ),
        422,
        "validation_error",
    )


async def test_tenant_keys_see_only_their_log(
    admin: AsyncClient, db: asyncpg.Connection, client_for: Callable[[str], AsyncClient]
) -> None:
    w = await _world(admin)
    await _emit(admin, "acme")
    await _emit(admin, "other")
    tenant = client_for(await tenant_key(admin, w["acme"]["id"]))
    mine = ok(await tenant.get("/v1/deliveries"))["data"]
    assert {d["tenant_id"] for d in mine} == {w["acme"]["id"]}
    theirs = await db.fetchval(
        "SELECT id FROM deliveries WHERE endpoint_id = $1", _u(w["ep3"]["id"])
    )
    path = f"/v1/deliveries/{ids.encode(ids.Prefix.DELIVERY, theirs)}"
    problem(await tenant.get(path), 404, "delivery_not_found")
    problem(await tenant.post(f"{path}/resend"), 404, "delivery_not_found")
    problem(await tenant.get(f"{path}/attempts"), 404, "delivery_not_found")
    problem(
        await tenant.get("/v1/deliveries", params={"tenant_id": "other"}), 404, "tenant_not_found"
    )
    problem(
        await tenant.get("/v1/attempts", params={"tenant_id": "other"}), 404, "tenant_not_found"
    )
    assert (
        ok(await tenant.get("/v1/deliveries", params={"endpoint_id": w["ep3"]["id"]}))["data"] == []
    )
    problem(await tenant.get(f"/v1/endpoints/{w['ep3']['id']}/stats"), 404, "endpoint_not_found")
    problem(
        await tenant.post(
            f"/v1/endpoints/{w['ep3']['id']}/recover", json={"since": NOW.isoformat()}
        ),
        404,
        "endpoint_not_found",
    )


async def test_the_recover_command_counts_first_and_shows_progress(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    w = await _world(admin)
    event = await _emit(admin, "other")
    await db.execute("DELETE FROM deliveries")
    for n in range(40):
        await _insert_delivery(db, event, w["ep3"], NOW - timedelta(minutes=3 * n + 1), "failed")
    since = (NOW - timedelta(hours=3)).isoformat()
    with serving(create_app(settings)) as api:
        env = os.environ | {"HOOKPOST_API_URL": api, "HOOKPOST_API_KEY": ADMIN_KEY}

        def hookpost(*args: str) -> str:
            done = subprocess.run(
                [sys.executable, "-m", "hookpost", *args], env=env, capture_output=True, text=True
            )
            assert done.returncode == 0, done.stderr
            return done.stdout

        counted = hookpost("recover", w["ep3"]["id"], "--since", since, "--dry-run")
        assert counted.splitlines() == ["40 failed deliveries in the window"]
        assert await db.fetchval("SELECT count(*) FROM deliveries WHERE status = 'pending'") == 0
        assert json.loads(
            hookpost("recover", w["ep3"]["id"], "--since", since, "--dry-run", "--json")
        ) == {
            "found": 40,
            "queued": 0,
            "dry_run": True,
        }
        recovered = hookpost("recover", w["ep3"]["id"], "--since", since).splitlines()
    assert recovered[0] == "40 failed deliveries in the window"
    progress = [line for line in recovered if line.startswith("queued ")]
    assert len(progress) == 20  # a line a slice of the window
    assert progress[-1] == "queued 40 of 40 (100%)"
    assert recovered[-1] == "40 failed deliveries queued again"
    assert await db.fetchval("SELECT count(*) FROM deliveries WHERE status = 'pending'") == 40
