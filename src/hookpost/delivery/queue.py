"""The queue's SQL: the deliveries table is the queue (DESIGN.md, decision 3). Each statement
is named for what it does; the worker calls them and nothing else touches the queue's state.

- ``claim``: take due pending deliveries with FOR UPDATE SKIP LOCKED, lease them, and return
  what sending needs (event body, endpoint url, headers, live secrets) in one round trip.
- ``record``: group commit of many attempts (COPY) and delivery states (one UPDATE), plus the
  endpoint health they imply, in one transaction.
- ``recover_expired``: deliveries whose lease ran out (a killed worker) back to pending.
- ``release``: a stopping worker's unsent deliveries back to pending at once.
- ``resend``: one delivery back to pending now, its next attempt marked manual.
- ``recover_batch``: a bounded batch of an endpoint's failed deliveries back to pending.
- ``seconds_to_next_due``: when the earliest pending delivery falls due, for the timer.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from hookpost.ingest.emit import NOTIFY_CHANNEL

CLAIM = """
WITH due AS (
    SELECT id FROM deliveries
    WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE deliveries d
SET status = 'in_flight', locked_until = now() + make_interval(secs => $2), locked_by = $3
FROM due, events e, endpoints ep
WHERE d.id = due.id AND e.id = d.event_id AND ep.id = d.endpoint_id
RETURNING d.id, d.event_id, d.endpoint_id, d.tenant_id, d.attempt_count, d.trigger,
          d.round_attempts, d.round_started_at,
          e.body::text AS body, ep.url, ep.headers::text AS headers, ep.enabled,
          ep.deleted_at IS NOT NULL AS deleted, ep.disabled_reason
"""

LIVE_SECRETS = """
SELECT id, endpoint_id, ciphertext FROM endpoint_secrets
WHERE endpoint_id = ANY($1::uuid[]) AND (expires_at IS NULL OR expires_at > now())
ORDER BY id DESC
"""

UPDATE_DELIVERIES = """
UPDATE deliveries d
SET status = u.status,
    status_reason = u.reason,
    attempt_count = GREATEST(d.attempt_count, u.attempt_count),
    round_attempts = CASE WHEN u.last_attempt_at IS NULL THEN d.round_attempts
                          ELSE d.round_attempts + 1 END,
    trigger = 'scheduled',
    next_attempt_at = COALESCE(u.next_attempt_at, d.next_attempt_at),
    last_attempt_at = COALESCE(u.last_attempt_at, d.last_attempt_at),
    last_status_code = COALESCE(u.last_status_code, d.last_status_code),
    last_error_kind = CASE WHEN u.last_attempt_at IS NULL THEN d.last_error_kind
                           ELSE u.last_error_kind END,
    finished_at = CASE WHEN u.status IN ('succeeded', 'failed', 'cancelled') THEN now() END,
    locked_until = NULL,
    locked_by = NULL
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::timestamptz[],
            $6::timestamptz[], $7::int[], $8::text[])
     AS u(id, status, reason, attempt_count, next_attempt_at, last_attempt_at,
          last_status_code, last_error_kind)
WHERE d.id = u.id
  AND ((d.status = 'in_flight' AND d.locked_by = $9) OR d.status = 'pending')
"""

# Per endpoint, in the order the batch saw them: a success resets the failure streak.
UPDATE_ENDPOINT_HEALTH = """
UPDATE endpoints ep
SET consecutive_failures = CASE WHEN h.succeeded THEN h.failures_after
                                ELSE ep.consecutive_failures + h.failures_after END,
    failing_since = CASE WHEN h.failures_after = 0 THEN NULL
                         WHEN h.succeeded THEN now()
                         ELSE COALESCE(ep.failing_since, now()) END
FROM unnest($1::uuid[], $2::bool[], $3::int[]) AS h(endpoint_id, succeeded, failures_after)
WHERE ep.id = h.endpoint_id
"""

DISABLE_ENDPOINTS = """
UPDATE endpoints
SET enabled = false, disabled_at = now(), disabled_reason = $2, updated_at = now()
WHERE id = ANY($1::uuid[]) AND enabled
"""

RECOVER_EXPIRED = """
UPDATE deliveries
SET status = 'pending', locked_until = NULL, locked_by = NULL, next_attempt_at = now()
WHERE status = 'in_flight' AND locked_until < now()
"""

RELEASE = """
UPDATE deliveries
SET status = 'pending', locked_until = NULL, locked_by = NULL, next_attempt_at = now()
WHERE id = ANY($1::uuid[]) AND status = 'in_flight' AND locked_by = $2
"""

# A resend or a recovery starts a new retry round: the limits apply afresh, history stays.
RESEND = """
UPDATE deliveries
SET status = 'pending', trigger = 'manual', next_attempt_at = now(), round_attempts = 0,
    round_started_at = now(), status_reason = NULL, finished_at = NULL
WHERE id = $1 AND status <> 'in_flight'
RETURNING id
"""

RECOVER_BATCH = """
WITH picked AS (
    SELECT id FROM deliveries
    WHERE endpoint_id = $1 AND status = 'failed' AND id >= $2 AND id < $3
    ORDER BY id
    LIMIT $4
    FOR UPDATE SKIP LOCKED
)
UPDATE deliveries d
SET status = 'pending', trigger = 'scheduled', next_attempt_at = now(), round_attempts = 0,
    round_started_at = now(), status_reason = NULL, finished_at = NULL
FROM picked
WHERE d.id = picked.id
"""

NOTIFY = f"NOTIFY {NOTIFY_CHANNEL}"

SECONDS_TO_NEXT_DUE = """
SELECT EXTRACT(EPOCH FROM min(next_attempt_at) - clock_timestamp())::float8
FROM deliveries WHERE status = 'pending'
"""

ATTEMPT_COLUMNS = (
    "id",
    "delivery_id",
    "endpoint_id",
    "tenant_id",
    "attempt_number",
    "trigger",
    "started_at",
    "duration_ms",
    "request_headers",
    "response_status",
    "response_headers",
    "response_body",
    "error_kind",
    "error_message",
    "worker_id",
)


@dataclass(frozen=True)
class Claimed:
    """A leased delivery with what sending it needs."""

    id: uuid.UUID
    event_id: uuid.UUID
    endpoint_id: uuid.UUID
    tenant_id: uuid.UUID
    attempt_count: int
    trigger: str
    round_attempts: int
    round_started_at: datetime
    body: bytes
    url: str
    headers: dict[str, str]
    enabled: bool
    deleted: bool
    disabled_reason: str | None


@dataclass(frozen=True)
class SecretRow:
    id: uuid.UUID
    endpoint_id: uuid.UUID
    ciphertext: bytes


@dataclass(frozen=True)
class AttemptRow:
    """One attempt to log; ``as_record`` gives the COPY row."""

    id: uuid.UUID
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    tenant_id: uuid.UUID
    attempt_number: int
    trigger: str
    started_at: datetime
    duration_ms: int
    request_headers: dict[str, str]
    response_status: int | None
    response_headers: dict[str, str] | None
    response_body: str | None
    error_kind: str | None
    error_message: str | None
    worker_id: str

    def as_record(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.delivery_id,
            self.endpoint_id,
            self.tenant_id,
            self.attempt_number,
            self.trigger,
            self.started_at,
            self.duration_ms,
            orjson.dumps(self.request_headers).decode(),
            self.response_status,
            None if self.response_headers is None else orjson.dumps(self.response_headers).decode(),
            self.response_body,
            self.error_kind,
            self.error_message,
            self.worker_id,
        )


@dataclass(frozen=True)
class StateChange:
    """A delivery's new state; ``last_attempt_at`` is None when no attempt was made."""

    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    status: str
    reason: str | None
    attempt_count: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error_kind: str | None


@dataclass(frozen=True)
class EndpointHealth:
    """What a batch of attempts says of one endpoint."""

    endpoint_id: uuid.UUID
    succeeded: bool  # some attempt of the batch succeeded
    failures_after: int  # failed attempts after the last success (or in all, without one)


async def claim(
    connection: asyncpg.Connection, *, limit: int, lease_s: float, worker_id: str
) -> list[Claimed]:
    rows = await connection.fetch(CLAIM, limit, lease_s, worker_id)
    return [
        Claimed(
            id=row["id"],
            event_id=row["event_id"],
            endpoint_id=row["endpoint_id"],
            tenant_id=row["tenant_id"],
            attempt_count=row["attempt_count"],
            trigger=row["trigger"],
            round_attempts=row["round_attempts"],
            round_started_at=row["round_started_at"],
            body=row["body"].encode(),
            url=row["url"],
            headers=orjson.loads(row["headers"]),
            enabled=row["enabled"],
            deleted=row["deleted"],
            disabled_reason=row["disabled_reason"],
        )
        for row in rows
    ]


async def live_secrets(
    connection: asyncpg.Connection, endpoint_ids: Sequence[uuid.UUID]
) -> list[SecretRow]:
    rows = await connection.fetch(LIVE_SECRETS, list(endpoint_ids))
    return [SecretRow(row["id"], row["endpoint_id"], row["ciphertext"]) for row in rows]


async def record(
    connection: asyncpg.Connection,
    *,
    attempts: Sequence[AttemptRow],
    changes: Sequence[StateChange],
    health: Sequence[EndpointHealth],
    gone: Sequence[uuid.UUID],
    worker_id: str,
) -> None:
    """Write a batch of results in one transaction (group commit)."""
    async with connection.transaction():
        if attempts:
            await connection.copy_records_to_table(
                "attempts",
                records=[attempt.as_record() for attempt in attempts],
                columns=ATTEMPT_COLUMNS,
            )
        if changes:
            await connection.execute(
                UPDATE_DELIVERIES,
                [c.delivery_id for c in changes],
                [c.status for c in changes],
                [c.reason for c in changes],
                [c.attempt_count for c in changes],
                [c.next_attempt_at for c in changes],
                [c.last_attempt_at for c in changes],
                [c.last_status_code for c in changes],
                [c.last_error_kind for c in changes],
                worker_id,
            )
        if health:
            await connection.execute(
                UPDATE_ENDPOINT_HEALTH,
                [h.endpoint_id for h in health],
                [h.succeeded for h in health],
                [h.failures_after for h in health],
            )
        if gone:
            await connection.execute(
                DISABLE_ENDPOINTS, list(gone), "the endpoint answered 410 Gone"
            )


async def recover_expired(connection: asyncpg.Connection) -> int:
    status = await connection.execute(RECOVER_EXPIRED)
    return int(status.split()[-1])


async def release(
    connection: asyncpg.Connection, delivery_ids: Sequence[uuid.UUID], worker_id: str
) -> int:
    status = await connection.execute(RELEASE, list(delivery_ids), worker_id)
    return int(status.split()[-1])


async def resend(connection: asyncpg.Connection, delivery_id: uuid.UUID) -> bool:
    """Queue ``delivery_id`` now and wake the workers; False if it is in flight."""
    queued = await connection.fetchval(RESEND, delivery_id)
    if queued is not None:
        await connection.execute(NOTIFY)
    return queued is not None


async def recover_batch(
    connection: asyncpg.Connection,
    endpoint_id: uuid.UUID,
    *,
    after: uuid.UUID,
    before: uuid.UUID,
    limit: int,
) -> int:
    """Put up to ``limit`` failed deliveries of ``endpoint_id`` with ids in ``[after, before)``
    back in the queue and wake the workers; how many."""
    status = await connection.execute(RECOVER_BATCH, endpoint_id, after, before, limit)
    count = int(status.split()[-1])
    if count:
        await connection.execute(NOTIFY)
    return count


async def seconds_to_next_due(connection: asyncpg.Connection) -> float | None:
    """Seconds until the earliest pending delivery is due (negative: overdue); None if none."""
    value: float | None = await connection.fetchval(SECONDS_TO_NEXT_DUE)
    return value
