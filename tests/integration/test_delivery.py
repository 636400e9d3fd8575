"""The delivery engine against a real receiver on 127.0.0.1: signing, outcomes, retries,
the attempt log, endpoint states, leases and graceful shutdown."""

import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from cryptography.fernet import Fernet
from httpx import AsyncClient
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook

from hookpost import ids
from hookpost.db.engine import plain_dsn
from hookpost.delivery import queue
from hookpost.delivery.gates import Holding
from hookpost.delivery.limits import LimitRules
from hookpost.delivery.sender import AiohttpSender, Sender, SenderLimits, SendResult
from hookpost.delivery.ssrf import DestinationPolicy
from hookpost.delivery.worker import CLAIM_SESSION, FLUSH_SETTINGS
from hookpost.settings import Settings
from tests.integration.delivery_helpers import eventually, running_worker
from tests.integration.helpers import (
    create_endpoint,
    create_event_type,
    create_tenant,
    index_scans,
    ok,
    plan_nodes,
    problem,
)
from tests.receiver import DROP, Received, Reply, receiver


async def _setup(admin: AsyncClient, url: str, **endpoint: Any) -> dict[str, Any]:
    await create_tenant(admin, uid="acme")
    await create_event_type(admin, "invoice.paid")
    return await create_endpoint(admin, "acme", url=url, event_types=["*"], **endpoint)


async def _emit(admin: AsyncClient, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"tenant_id": "acme", "event_type": "invoice.paid", "payload": payload or {"n": 1}}
    return ok(await admin.post("/v1/events", json=body), 202)


async def _emit_batch(admin: AsyncClient, count: int) -> None:
    """``count`` events in one batch, with payloads ``{"i": 0}`` to ``{"i": count - 1}``."""
    batch = [
        {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {"i": i}}
        for i in range(count)
    ]
    ok(await admin.post("/v1/events/batch", json={"events": batch}), 202)


async def _delivery(db: asyncpg.Connection) -> asyncpg.Record:
    return await db.fetchrow("SELECT * FROM deliveries")


async def _finished(db: asyncpg.Connection, count: int = 1) -> bool:
    done = await db.fetchval(
        "SELECT count(*) FROM deliveries WHERE status IN ('succeeded', 'failed', 'cancelled')"
    )
    return bool(done == count)


async def test_delivers_a_signed_webhook_and_logs_the_attempt(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver() as target:
        endpoint = await _setup(
            admin, target.url + "/hook?x=1", headers={"X-Customer": "acme-secret-token"}
        )
        secret = ok(await admin.get(f"/v1/endpoints/{endpoint['id']}/secret"))["key"]
        async with running_worker(settings):
            event = await _emit(admin, {"invoice_id": "in_1", "amount": 4200})
            [request] = await target.wait_for(1)
            await eventually(lambda: _finished(db))

    assert request.path == "/hook?x=1"
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("hookpost/")
    assert headers["webhook-id"] == event["id"]
    assert headers["x-customer"] == "acme-secret-token"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 10
    payload = Webhook(secret).verify(request.body, headers)
    assert payload["id"] == event["id"]
    assert payload["type"] == "invoice.paid"
    assert payload["data"] == {"invoice_id": "in_1", "amount": 4200}
    stored = await db.fetchval("SELECT body::text FROM events")
    assert request.body == stored.encode()

    delivery = await _delivery(db)
    assert delivery["status"] == "succeeded"
    assert delivery["attempt_count"] == 1
    assert delivery["last_status_code"] == 200
    assert delivery["finished_at"] is not None
    assert delivery["locked_by"] is None
    attempt = await db.fetchrow("SELECT * FROM attempts")
    assert attempt["attempt_number"] == 1
    assert attempt["response_status"] == 200
    assert attempt["response_body"] == "ok"
    assert attempt["error_kind"] is None
    assert attempt["duration_ms"] >= 0
    assert attempt["worker_id"]
    logged = orjson.loads(attempt["request_headers"])
    assert logged["webhook-id"] == event["id"]
    assert logged["webhook-signature"] == headers["webhook-signature"]
    assert logged["X-Customer"] == "[redacted]"  # custom header values may be credentials
    assert "acme-secret-token" not in attempt["request_headers"]
    assert secret not in attempt["request_headers"]


async def test_every_live_secret_signs_during_a_rotation(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver() as target:
        endpoint = await _setup(admin, target.url)
        path = f"/v1/endpoints/{endpoint['id']}/secret"
        before = ok(await admin.get(path))
        old = before["key"]
        assert [s["key"] for s in before["secrets"]] == [old]
        assert before["secrets"][0]["expires_at"] is None
        rotated = ok(await admin.post(f"{path}/rotate", json={"grace_period_s": 3600}))
        new = rotated["key"]
        # the answer says that the old secret still signs, and until when
        current, previous = rotated["secrets"]
        assert (current["key"], current["expires_at"]) == (new, None)
        assert previous["key"] == old
        until = datetime.fromisoformat(previous["expires_at"]) - datetime.now(UTC)
        assert timedelta(minutes=59) < until <= timedelta(hours=1)
        assert ok(await admin.get(path))["secrets"] == rotated["secrets"]
        async with running_worker(settings):
            await _emit(admin)
            [request] = await target.wait_for(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(request.body, request.headers)


async def test_the_schedule_is_followed_for_500s(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver(lambda n, r: Reply(status=500, body=b"boom")) as target:
        await _setup(admin, target.url)
        async with running_worker(settings):
            await _emit(admin)
            requests = await target.wait_for(4)
            await eventually(lambda: _finished(db))
        assert len(target.requests) == 4  # retry_max_attempts, and the worker has stopped

    gaps = [b.at - a.at for a, b in itertools.pairwise(requests)]
    for gap, delay in zip(gaps, [0.05, 0.1, 0.2], strict=True):
        assert gap >= delay * 0.9, gaps
    delivery = await _delivery(db)
    assert delivery["status"] == "failed"
    assert delivery["status_reason"] == "gave up after 4 attempts"
    attempts = await db.fetch("SELECT * FROM attempts ORDER BY attempt_number")
    assert [a["attempt_number"] for a in attempts] == [1, 2, 3, 4]
    assert {a["error_kind"] for a in attempts} == {"http_status"}
    assert {a["response_status"] for a in attempts} == {500}
    assert attempts[0]["response_body"] == "boom"
    assert attempts[0]["error_message"] == "the receiver answered 500"


async def test_a_failure_then_success(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    script = lambda n, r: Reply(status=503) if n < 2 else Reply()  # noqa: E731
    async with receiver(script) as target:
        await _setup(admin, target.url)
        async with running_worker(settings):
            await _emit(admin)
            await target.wait_for(3)
            await eventually(lambda: _finished(db))
    delivery = await _delivery(db)
    assert (delivery["status"], delivery["attempt_count"]) == ("succeeded", 3)
    health = await db.fetchrow("SELECT consecutive_failures, failing_since FROM endpoints")
    assert (health["consecutive_failures"], health["failing_since"]) == (0, None)


async def test_timeouts_are_retried(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    script = lambda n, r: Reply(delay_s=1.0) if n == 0 else Reply()  # noqa: E731
    async with receiver(script) as target:
        await _setup(admin, target.url)
        async with running_worker(settings, delivery_timeout_s=0.3):
            await _emit(admin)
            await target.wait_for(2)
            await eventually(lambda: _finished(db))
    first, second = await db.fetch("SELECT * FROM attempts ORDER BY attempt_number")
    assert first["error_kind"] == "timeout"
    assert first["response_status"] is None
    assert 250 <= first["duration_ms"] < 1000
    assert second["error_kind"] is None
    assert (await _delivery(db))["status"] == "succeeded"


async def test_dropped_connections_are_retried(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver(lambda n, r: DROP if n == 0 else Reply()) as target:
        await _setup(admin, target.url)
        async with running_worker(settings):
            await _emit(admin)
            await target.wait_for(2)
            await eventually(lambda: _finished(db))
    first = await db.fetchrow("SELECT * FROM attempts WHERE attempt_number = 1")
    assert first["error_kind"] == "connect"
    assert first["error_message"]
    assert (await _delivery(db))["status"] == "succeeded"


async def test_refused_connections_are_logged(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver() as closed:
        url = closed.url
    await _setup(admin, url)  # nothing listens there any more
    async with running_worker(settings, retry_max_attempts=2):
        await _emit(admin)
        await eventually(lambda: _finished(db))
    attempts = await db.fetch("SELECT * FROM attempts")
    assert len(attempts) == 2
    assert {a["error_kind"] for a in attempts} == {"connect"}
    port = url.rsplit(":", 1)[1]
    for attempt in attempts:  # in plain words, and no TLS context named for an http:// URL
        assert f"cannot connect to 127.0.0.1:{port}: connection refused" in attempt["error_message"]
        assert "ssl" not in attempt["error_message"]


async def test_an_unreadable_secret_fails_its_attempts_and_nothing_else(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    """A worker whose HOOKPOST_SECRET_KEY lost the key an endpoint's secret was encrypted
    with sends nothing unsigned: the attempt fails with its reason and is retried; once the
    key is back, the delivery goes out signed."""
    async with receiver() as target:
        await _setup(admin, target.url)
        wrong_key = Fernet.generate_key().decode()
        async with running_worker(settings, secret_key=SecretStr(wrong_key), retry_max_attempts=5):
            await _emit(admin)
            attempt = await eventually(lambda: db.fetchrow("SELECT * FROM attempts"))
        assert attempt["error_kind"] == "secret_unreadable"
        assert "cannot be decrypted" in attempt["error_message"]
        assert "webhook-signature" not in orjson.loads(attempt["request_headers"])
        assert target.requests == []
        assert (await _delivery(db))["status"] == "pending"  # retried as usual

        assert settings.secret_key is not None
        keys = SecretStr(f"{wrong_key},{settings.secret_key.get_secret_value()}")  # key back
        await db.execute("UPDATE deliveries SET next_attempt_at = now()")
        async with running_worker(settings, secret_key=keys):
            await target.wait_for(1)
            await eventually(lambda: _finished(db))
    assert (await _delivery(db))["status"] == "succeeded"
    assert "webhook-signature" in target.requests[0].headers


async def test_redirects_are_failures_and_not_followed(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver(
        lambda n, r: (
            Reply(status=302, headers={"location": "/elsewhere"}) if r.path == "/hook" else Reply()
        )
    ) as target:
        await _setup(admin, target.url + "/hook")
        async with running_worker(settings, retry_max_attempts=2):
            await _emit(admin)
            await eventually(lambda: _finished(db))
        assert {r.path for r in target.requests} == {"/hook"}
    attempts = await db.fetch("SELECT * FROM attempts")
    assert {a["error_kind"] for a in attempts} == {"redirect"}
    assert {a["response_status"] for a in attempts} == {302}
    assert "/elsewhere" in attempts[0]["error_message"]
    assert (await _delivery(db))["status"] == "failed"


async def test_retry_after_is_honoured(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    script = lambda n, r: Reply(status=429, headers={"retry-after": "1"}) if n == 0 else Reply()  # noqa: E731
    async with receiver(script) as target:
        await _setup(admin, target.url)
        async with running_worker(settings):
            await _emit(admin)
            first, second = await target.wait_for(2)
    assert second.at - first.at >= 0.95  # not the 0.05 s the schedule would give


async def test_410_disables_the_endpoint(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    def script(n: int, request: Received) -> Reply:
        return Reply() if request.path == "/marker" else Reply(status=410)

    async with receiver(script) as target:
        endpoint = await _setup(admin, target.url)
        async with running_worker(settings):
            await _emit(admin)
            await eventually(lambda: _finished(db))
            assert len(target.requests) == 1
            # what is emitted later is recorded as failed, for `recover`, and not sent: a
            # delivery of the same event to another endpoint arrives, and it alone
            await create_endpoint(admin, "acme", url=f"{target.url}/marker", event_types=["*"])
            later = await _emit(admin)
            assert later["deliveries"] == 2
            await target.wait_for(2)
            await eventually(lambda: _finished(db, 3))
            assert [r.path for r in target.requests] == ["/", "/marker"]
    later_delivery = await db.fetchrow(
        "SELECT * FROM deliveries WHERE event_id = $1",
        ids.decode(ids.Prefix.EVENT, later["id"]),
    )
    assert later_delivery["status"] == "failed"
    assert later_delivery["status_reason"] == (
        "emitted while the endpoint was disabled: the endpoint answered 410 Gone"
    )
    delivery = await db.fetchrow("SELECT * FROM deliveries ORDER BY id LIMIT 1")
    assert delivery["status"] == "failed"
    assert "410" in delivery["status_reason"]
    shown = ok(await admin.get(f"/v1/endpoints/{endpoint['id']}"))
    assert shown["enabled"] is False
    assert "410" in shown["disabled_reason"]


async def test_bodies_over_the_cap_are_truncated(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver(lambda n, r: Reply(body=b"x" * 200_000)) as target:
        await _setup(admin, target.url)
        async with running_worker(settings, response_body_cap_bytes=1024):
            await _emit(admin)
            await eventually(lambda: _finished(db))
    attempt = await db.fetchrow("SELECT * FROM attempts")
    assert attempt["response_body"] == "x" * 1024
    assert (await _delivery(db))["status"] == "succeeded"


async def test_disabled_and_deleted_endpoints_stop_their_pending_deliveries(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver() as target:
        disabled = await _setup(admin, target.url)
        deleted = await create_endpoint(admin, "acme", url=target.url, event_types=["*"])
        await _emit(admin)  # two pending deliveries, no worker yet
        await admin.patch(
            f"/v1/endpoints/{disabled['id']}",
            json={"enabled": False, "disabled_reason": "gone fishing"},
        )
        await admin.delete(f"/v1/endpoints/{deleted['id']}")
        async with running_worker(settings):
            await eventually(lambda: _finished(db, 2))
        assert target.requests == []
    rows = {r["endpoint_id"]: r for r in await db.fetch("SELECT * FROM deliveries")}
    states = {str(k): (r["status"], r["status_reason"]) for k, r in rows.items()}
    assert sorted(states.values()) == [
        ("cancelled", "the endpoint was deleted"),
        ("failed", "the endpoint is disabled: gone fishing"),
    ]
    assert await db.fetchval("SELECT count(*) FROM attempts") == 0


async def test_expired_leases_are_taken_back(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver() as target:
        await _setup(admin, target.url)
        await _emit(admin)
        # as if a worker had claimed it and died
        await db.execute(
            "UPDATE deliveries SET status = 'in_flight', locked_by = 'dead', "
            "locked_until = now() - interval '1 second'"
        )
        async with running_worker(settings):
            await target.wait_for(1)
            await eventually(lambda: _finished(db))
    assert (await _delivery(db))["status"] == "succeeded"


RULES = LimitRules(breaker_threshold=5, probe_s=30.0, defer_s=1.0)


def _holding(room: dict[uuid.UUID, int] | None = None) -> Holding:
    """A worker that holds nothing, with ``room`` for some endpoints and 100 for the rest."""
    return Holding(room=room or {}, held={}, pace_s={}, default_room=100)


async def _claim(
    connection: asyncpg.Connection, slots: int, worker_id: str, holding: Holding | None = None
) -> list[Any]:
    claimed = await queue.claim(
        connection,
        free_slots=slots,
        retry_slots=slots,
        rules=RULES,
        lease_s=60.0,
        worker_id=worker_id,
        holding=holding or _holding(),
    )
    return [delivery.id for delivery in claimed]


async def test_claims_at_once_take_different_deliveries(
    admin: AsyncClient, db: asyncpg.Connection, database_url: str
) -> None:
    """The due deliveries are locked as they are read: a claim beside one still under way
    takes the next ones, not the same ones to lose them at the lease."""
    await _setup(admin, "http://127.0.0.1:9/hook", max_in_flight=100)
    await _emit_batch(admin, 10)
    other = await asyncpg.connect(plain_dsn(database_url))
    try:
        async with other.transaction():  # the first claim is not over yet
            first = await _claim(other, 4, "worker-a")
            second = await _claim(db, 4, "worker-b")
    finally:
        await other.close()
    assert len(first) == len(second) == 4
    assert not set(first) & set(second)
    owners = await db.fetch("SELECT locked_by, count(*) FROM deliveries GROUP BY locked_by")
    assert {row["locked_by"]: row["count"] for row in owners} == {
        "worker-a": 4,
        "worker-b": 4,
        None: 2,
    }


async def test_a_claim_leases_what_each_endpoints_limit_allows(
    admin: AsyncClient, db: asyncpg.Connection
) -> None:
    """An endpoint with room for all its due deliveries has them leased at once; one whose
    room (what the worker's gate would hold, less what the other workers hold) is below them
    goes through the limits: what fits is leased, the rest waits."""
    await _setup(admin, "http://127.0.0.1:9/hook", max_in_flight=100)
    narrow_endpoint = await create_endpoint(
        admin, "acme", url="http://127.0.0.1:9/narrow", event_types=["*"]
    )
    narrow_id = ids.decode(ids.Prefix.ENDPOINT, narrow_endpoint["id"])
    assert narrow_id is not None
    await _emit_batch(admin, 4)  # four deliveries to each endpoint
    await db.execute(  # another worker holds one of the narrow endpoint's
        "UPDATE deliveries SET status = 'in_flight', locked_by = 'worker-b', "
        "locked_until = now() + interval '1 minute' "
        "WHERE id = (SELECT id FROM deliveries WHERE endpoint_id = $1 ORDER BY id LIMIT 1)",
        narrow_id,
    )
    claimed = set(await _claim(db, 10, "worker-a", _holding({narrow_id: 3})))
    rows = await db.fetch(
        "SELECT d.id, d.status, d.next_attempt_at > now() AS deferred, ep.url FROM deliveries d "
        "JOIN endpoints ep ON ep.id = d.endpoint_id"
    )
    wide = [row for row in rows if row["url"].endswith("/hook")]
    narrow = [row for row in rows if row["url"].endswith("/narrow") and row["id"] in claimed]
    assert {row["id"] for row in wide} <= claimed
    assert all(row["status"] == "in_flight" for row in wide)
    assert len(narrow) == 2  # room 3, less the one worker-b holds
    deferred = await db.fetchval(
        "SELECT count(*) FROM deliveries WHERE endpoint_id = $1 AND status = 'pending' "
        "AND next_attempt_at > now()",
        narrow_id,
    )
    assert deferred == 1
    assert len(claimed) == 6


async def test_the_next_due_time_is_the_earliest_of_both_lanes(
    admin: AsyncClient, db: asyncpg.Connection
) -> None:
    await _setup(admin, "http://127.0.0.1:9/hook")
    assert await queue.seconds_to_next_due(db) is None  # nothing pending
    await _emit_batch(admin, 2)
    first, retry = [row["id"] for row in await db.fetch("SELECT id FROM deliveries ORDER BY id")]
    await db.execute(
        "UPDATE deliveries SET next_attempt_at = now() + interval '100 seconds' WHERE id = $1",
        first,
    )
    await db.execute(
        "UPDATE deliveries SET next_attempt_at = now() + interval '10 seconds', "
        "round_attempts = 1 WHERE id = $1",
        retry,
    )
    assert 8 < (await queue.seconds_to_next_due(db) or 0) <= 10  # the retry's
    await db.execute("UPDATE deliveries SET status = 'succeeded' WHERE id = $1", retry)
    assert 98 < (await queue.seconds_to_next_due(db) or 0) <= 100  # the first attempt's


async def test_the_next_due_time_reads_one_entry_of_each_due_index(
    admin: AsyncClient, db: asyncpg.Connection
) -> None:
    """A table without statistics (new, emptied, or never analyzed) once led the planner to
    compute min() by reading every entry of the due index; the query asks for the first."""
    await _setup(admin, "http://127.0.0.1:9/hook")
    await _emit_batch(admin, 300)
    await db.execute(
        "UPDATE deliveries SET round_attempts = 1 WHERE id IN "
        "(SELECT id FROM deliveries ORDER BY id LIMIT 100)"
    )
    plan = orjson.loads(
        await db.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + queue.SECONDS_TO_NEXT_DUE)
    )
    scans = {scan["Index Name"]: scan["Actual Rows"] for scan in index_scans(plan)}
    assert scans == {"ix_deliveries_due_first": 1, "ix_deliveries_due_retry": 1}


@pytest.mark.parametrize("analyzed", [False, True])
async def test_the_results_are_written_through_the_primary_key(
    admin: AsyncClient, db: asyncpg.Connection, analyzed: bool
) -> None:
    """As the flush runs it, the results' update reads each row through the primary key,
    with statistics (as autovacuum keeps them) or without (a young table): joined to
    unnest() alone it scanned and hashed the whole table once the table had statistics, and
    asked for by id as well it rescanned the id list for each row while it had none. The
    statistics taken here are rolled back with the transaction, for the plans of the tests
    that follow."""
    await _setup(admin, "http://127.0.0.1:9/hook")
    for _ in range(5):
        await _emit_batch(admin, 1000)
    ids = [row["id"] for row in await db.fetch("SELECT id FROM deliveries LIMIT 100")]
    count = len(ids)
    flush = db.transaction()
    await flush.start()
    try:
        if analyzed:
            await db.execute("ANALYZE deliveries")
        await db.execute(FLUSH_SETTINGS)
        explained = await db.fetchval(
            "EXPLAIN (FORMAT JSON) " + queue.UPDATE_DELIVERIES,
            ids,
            ["succeeded"] * count,
            [None] * count,
            [1] * count,
            [None] * count,
            [None] * count,
            [200] * count,
            [None] * count,
            "worker",
            [False] * count,
            count,
            0,
            [False] * count,
        )
    finally:
        await flush.rollback()
    nodes = list(plan_nodes(orjson.loads(explained)))
    scans = [
        (node["Node Type"], node.get("Index Name"))
        for node in nodes
        if node.get("Relation Name") == "deliveries" and node["Node Type"].endswith("Scan")
    ]
    assert scans == [("Index Scan", "pk_deliveries")]
    assert [node["Join Filter"] for node in nodes if "Join Filter" in node] == []


# The claim loop's statements as PREPAREd: their parameter types and example arguments.
CLAIM_STATEMENTS = {
    "CLAIM": (
        "int, int, float8, text, int, uuid[], int[], int, float8[], float8",
        "160, 80, 60, 'w', 5, '{}', '{}', 712, '{}', 0.25",
    ),
    "APPLY_PLAN": (
        "uuid[], float8, text, uuid[], float8[], uuid[], float8[], uuid[], float8",
        "'{}', 60, 'w', '{}', '{}', '{}', '{}', '{}', 30",
    ),
    "SECONDS_TO_NEXT_DUE": ("", ""),
}


@pytest.mark.parametrize("name", sorted(CLAIM_STATEMENTS))
async def test_the_claim_loops_generic_plans_read_through_indexes(
    db: asyncpg.Connection, database_url: str, name: str
) -> None:
    """The claim connection makes one generic plan per statement the first time it runs it,
    and keeps it: made on empty tables (as here, after the last test's truncation), a plan
    must still read every table through an index, and join no two sets by comparing every
    pair of their rows (a nested loop over two of a claim's sets grows with the square of
    its size)."""
    types, arguments = CLAIM_STATEMENTS[name]
    connection = await asyncpg.connect(plain_dsn(database_url), server_settings=CLAIM_SESSION)
    try:
        await connection.execute(
            f"PREPARE statement{f'({types})' if types else ''} AS " + getattr(queue, name)
        )
        explained = await connection.fetchval(
            f"EXPLAIN (FORMAT JSON) EXECUTE statement{f'({arguments})' if arguments else ''}"
        )
    finally:
        await connection.close()
    nodes = list(plan_nodes(orjson.loads(explained)))
    assert [node for node in nodes if node["Node Type"] == "Seq Scan"] == []
    # a nested loop with a join filter compares every pair of rows of its two sides
    assert [node["Join Filter"] for node in nodes if "Join Filter" in node] == []


async def test_deliveries_held_ready_too_long_go_back_unsent(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    """One slot, a 0.3 s receiver and a 1 s lease: the deliveries claimed ahead wait longer
    than half their lease, so they go back to the queue unsent instead of being sent while
    their lease expires (which would let the lease keeper hand them out a second time)."""
    async with receiver(lambda n, r: Reply(delay_s=0.3)) as target:
        await _setup(admin, target.url)
        await _emit_batch(admin, 8)
        async with running_worker(settings, worker_concurrency=1, lease_s=1.0):
            await eventually(lambda: _finished(db, 8), timeout=20)
    sent = [orjson.loads(request.body)["data"]["i"] for request in target.requests]
    assert sorted(sent) == list(range(8))  # each sent once
    assert await db.fetchval("SELECT count(*) FROM attempts") == 8
    assert await db.fetchval("SELECT max(attempt_count) FROM deliveries") == 1


class _FailsOnce:
    """A sender whose first send raises, as a bug on the delivery path would."""

    def __init__(self, sender: Sender) -> None:
        self._sender = sender
        self.raised = False

    async def send(
        self, url: str, headers: dict[str, str], body: bytes, *, timeout_s: float | None = None
    ) -> SendResult:
        if not self.raised:
            self.raised = True
            raise RuntimeError("a bug")
        return await self._sender.send(url, headers, body, timeout_s=timeout_s)

    async def close(self) -> None:
        await self._sender.close()


async def test_a_bug_while_delivering_is_an_attempt_retried_by_the_policy(
    admin: AsyncClient,
    db: asyncpg.Connection,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One slot: the delivery whose send raised is logged as an attempt of kind
    ``internal_error`` with the bug's words, and retried on the schedule, not after a lease
    (a lease of 60 s here would outlast the test); the slot goes on with the next one."""
    async with receiver(lambda n, r: Reply()) as target:
        await _setup(admin, target.url)
        await _emit_batch(admin, 2)
        limits = SenderLimits(
            connections=1,
            total_timeout_s=2.0,
            connect_timeout_s=2.0,
            read_timeout_s=2.0,
            body_cap_bytes=1024,
        )
        sender = _FailsOnce(
            AiohttpSender(
                limits, user_agent="test", policy=DestinationPolicy.from_settings(settings)
            )
        )
        async with running_worker(settings, sender=sender, worker_concurrency=1, lease_s=60.0):
            await eventually(lambda: _finished(db, 2), timeout=10)
        await sender.close()
    assert sender.raised
    assert sorted(orjson.loads(r.body)["data"]["i"] for r in target.requests) == [0, 1]
    rows = await db.fetch("SELECT error_kind, error_message FROM attempts ORDER BY id")
    assert len(rows) == 3
    assert rows[0]["error_kind"] == "internal_error"
    assert "RuntimeError: a bug" in rows[0]["error_message"]
    assert [row["error_kind"] for row in rows[1:]] == [None, None]
    assert "RuntimeError: a bug" in caplog.text
    assert "expired lease" not in caplog.text


async def test_graceful_shutdown_releases_what_did_not_finish(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver(lambda n, r: Reply(delay_s=5.0)) as target:
        await _setup(admin, target.url)
        async with running_worker(settings, worker_grace_s=0.2, delivery_timeout_s=10):
            await _emit(admin)
            await target.wait_for(1)
        delivery = await _delivery(db)
        assert delivery["status"] == "pending"
        assert delivery["locked_by"] is None
        assert delivery["attempt_count"] == 0
        assert await db.fetchval("SELECT count(*) FROM attempts") == 0


async def test_graceful_shutdown_releases_deliveries_claimed_ahead(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    """One slot: the first delivery hangs past the grace period, the two claimed behind it
    were never started; all three go back to the queue, unattempted."""
    async with receiver(lambda n, r: Reply(delay_s=5.0)) as target:
        await _setup(admin, target.url)
        await _emit_batch(admin, 3)
        async with running_worker(
            settings, worker_concurrency=1, worker_grace_s=0.2, delivery_timeout_s=10
        ):
            await target.wait_for(1)
            leased = await db.fetchval("SELECT count(*) FROM deliveries WHERE status = 'in_flight'")
            assert leased == 3
        rows = await db.fetch("SELECT status, locked_by, attempt_count FROM deliveries")
    assert [tuple(row) for row in rows] == [("pending", None, 0)] * 3
    assert await db.fetchval("SELECT count(*) FROM attempts") == 0
    assert len(target.requests) == 1


async def test_graceful_shutdown_lets_short_requests_finish(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver(lambda n, r: Reply(delay_s=0.3)) as target:
        await _setup(admin, target.url)
        async with running_worker(settings, worker_grace_s=3):
            await _emit(admin)
            await target.wait_for(1)
    delivery = await _delivery(db)
    assert delivery["status"] == "succeeded"
    assert await db.fetchval("SELECT count(*) FROM attempts") == 1


async def test_many_deliveries_many_endpoints(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver() as target:
        await _setup(admin, target.url + "/a")
        await create_endpoint(admin, "acme", url=target.url + "/b", event_types=["invoice.*"])
        await _emit_batch(admin, 300)
        async with running_worker(settings, worker_concurrency=16, worker_batch_size=50):
            await eventually(lambda: _finished(db, 600), timeout=30)
    assert len(target.requests) == 600
    assert await db.fetchval("SELECT count(*) FROM attempts") == 600


async def test_two_workers_send_each_delivery_once(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    """Two workers claiming from one queue at once, over endpoints leased in the claim's own
    statement and one held back by its max_in_flight: every delivery is sent exactly once."""
    async with receiver() as target:
        await _setup(admin, target.url + "/a", max_in_flight=100)
        await create_endpoint(admin, "acme", url=target.url + "/b", event_types=["*"])
        await create_endpoint(
            admin, "acme", url=target.url + "/narrow", event_types=["*"], max_in_flight=3
        )
        await _emit_batch(admin, 200)
        small = {"worker_concurrency": 8, "worker_batch_size": 20, "defer_s": 0.05}
        async with running_worker(settings, **small), running_worker(settings, **small):
            await eventually(lambda: _finished(db, 600), timeout=30)
    sent = [(request.path, request.headers["webhook-id"]) for request in target.requests]
    assert len(sent) == len(set(sent)) == 600
    workers = await db.fetch("SELECT DISTINCT worker_id FROM attempts")
    assert len(workers) == 2
    assert await db.fetchval("SELECT count(*) FROM attempts") == 600


async def test_a_retry_due_soon_wakes_the_idle_claim_loop(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    """Nothing else is due, so the claim loop sleeps until its poll (30 s here); the flush
    that writes the retry must wake it for the retry's due time."""
    async with receiver(lambda n, r: Reply(status=500 if n == 0 else 200)) as target:
        await _setup(admin, target.url)
        async with running_worker(settings, worker_poll_s=30.0, retry_base_s=0.2):
            await _emit(admin)
            first, second = await target.wait_for(2, timeout=10)
            await eventually(lambda: _finished(db))
    assert second.at - first.at >= 0.2
    assert (await _delivery(db))["attempt_count"] == 2


async def test_resend_and_recover_wake_the_idle_claim_loop(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    """With nothing due the claim loop sleeps for its poll (30 s here): a resend and a recovery
    each wake it, so their attempts go out at once."""
    async with receiver(lambda n, r: Reply(status=500 if n < 2 else 200)) as target:
        endpoint = await _setup(admin, target.url)
        async with running_worker(settings, worker_poll_s=30.0, retry_max_attempts=1):
            started = datetime.now(UTC)
            await _emit(admin)
            await target.wait_for(1)
            await eventually(lambda: _finished(db))
            delivery_id = ids.encode(ids.Prefix.DELIVERY, (await _delivery(db))["id"])
            ok(await admin.post(f"/v1/deliveries/{delivery_id}/resend"), 202)
            await target.wait_for(2, timeout=5)
            await eventually(lambda: _finished(db))
            recovered = await admin.post(
                f"/v1/endpoints/{endpoint['id']}/recover",
                json={"since": (started - timedelta(minutes=1)).isoformat()},
            )
            assert ok(recovered, 200)["queued"] == 1
            await target.wait_for(3, timeout=5)
            await eventually(lambda: _finished(db))
    assert (await _delivery(db))["status"] == "succeeded"


async def test_a_scheduled_event_is_delivered_when_due_not_before(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    """``deliver_at`` makes the deliveries due then: the idle worker wakes for it, and its
    retries' age counts from then."""
    async with receiver() as target:
        await _setup(admin, target.url)
        deliver_at = datetime.now(UTC) + timedelta(seconds=1.5)
        async with running_worker(settings, worker_poll_s=30.0):
            sent = time.monotonic()
            body = {
                "tenant_id": "acme",
                "event_type": "invoice.paid",
                "payload": {"n": 1},
                "deliver_at": deliver_at.isoformat(),
            }
            emitted = ok(await admin.post("/v1/events", json=body), 202)
            [request] = await target.wait_for(1, timeout=10)
    assert request.at - sent >= 1.3
    row = await db.fetchrow("SELECT next_attempt_at, round_started_at, status FROM deliveries")
    assert row["round_started_at"] == deliver_at
    shown = ok(await admin.get(f"/v1/events/{emitted['id']}"))
    assert datetime.fromisoformat(shown["deliver_at"]) == deliver_at


async def test_deliver_at_in_the_past_is_now_and_too_far_is_refused(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    await _setup(admin, "http://127.0.0.1:9/hook")
    item = {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {}}
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    ok(await admin.post("/v1/events", json=item | {"deliver_at": past}), 202)
    assert await db.fetchval("SELECT next_attempt_at > now() - interval '1 minute' FROM deliveries")
    far = (datetime.now(UTC) + timedelta(days=settings.event_retention_days + 1)).isoformat()
    refused = problem(
        await admin.post("/v1/events", json=item | {"deliver_at": far}), 422, "deliver_at_too_far"
    )
    assert refused["errors"][0]["loc"] == ["body", "deliver_at"]
    batch = {"events": [item, item | {"deliver_at": far}]}
    refused = problem(await admin.post("/v1/events/batch", json=batch), 422, "deliver_at_too_far")
    assert refused["errors"][0]["loc"] == ["body", "events", 1, "deliver_at"]
    naive = await admin.post("/v1/events", json=item | {"deliver_at": "2030-01-01T00:00:00"})
    problem(naive, 422, "validation_error")
    assert await db.fetchval("SELECT count(*) FROM events") == 1
