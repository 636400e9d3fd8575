"""hookpost's own operational events, emitted to the tenant named by ``HOOKPOST_OPS_TENANT``
and delivered like any other event: operators subscribe an endpoint to ``hookpost.*``.

Nothing is emitted about the operations tenant's own endpoints, so that a failing operations
endpoint cannot feed itself events."""

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from hookpost import ids
from hookpost.delivery.queue import StateChange
from hookpost.ingest.emit import EventIn

ENDPOINT_DISABLED = "hookpost.endpoint.disabled"
ENDPOINT_FAILING = "hookpost.endpoint.failing"
DELIVERY_EXHAUSTED = "hookpost.delivery.exhausted"


DESCRIPTIONS = {
    ENDPOINT_DISABLED: "hookpost disabled an endpoint (410 Gone, or failing too long).",
    ENDPOINT_FAILING: "An endpoint failed enough attempts in a row to open its circuit breaker.",
    DELIVERY_EXHAUSTED: "A delivery failed for good: out of attempts or of age.",
}


async def ensure_event_types(connection: asyncpg.Connection) -> None:
    """Create the operational event types where they are missing."""
    await connection.executemany(
        "INSERT INTO event_types (id, name, description) VALUES (hookpost_uuid7(), $1, $2) "
        "ON CONFLICT (name) DO NOTHING",
        list(DESCRIPTIONS.items()),
    )


def _endpoint(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "endpoint_id": ids.encode(ids.Prefix.ENDPOINT, row["id"]),
        "tenant_id": ids.encode(ids.Prefix.TENANT, row["tenant_id"]),
        "url": row["url"],
    }


def operational_events(
    ops_tenant_id: uuid.UUID,
    *,
    disabled: list[asyncpg.Record],
    failing: list[asyncpg.Record],
    exhausted: Sequence[tuple[StateChange, uuid.UUID, uuid.UUID, str]],
) -> list[EventIn]:
    """The events a flush calls for. ``exhausted`` holds (change, event id, tenant id, event
    type) for each delivery that failed for good."""
    events = [
        EventIn(
            ops_tenant_id,
            ENDPOINT_DISABLED,
            _endpoint(row) | {"reason": row["disabled_reason"]},
            None,
        )
        for row in disabled
        if row["tenant_id"] != ops_tenant_id
    ]
    events += [
        EventIn(
            ops_tenant_id,
            ENDPOINT_FAILING,
            _endpoint(row)
            | {
                "consecutive_failures": row["consecutive_failures"],
                "failing_since": row["failing_since"].isoformat(),
            },
            None,
        )
        for row in failing
        if row["tenant_id"] != ops_tenant_id
    ]
    events += [
        EventIn(
            ops_tenant_id,
            DELIVERY_EXHAUSTED,
            {
                "delivery_id": ids.encode(ids.Prefix.DELIVERY, change.delivery_id),
                "event_id": ids.encode(ids.Prefix.EVENT, event_id),
                "endpoint_id": ids.encode(ids.Prefix.ENDPOINT, change.endpoint_id),
                "tenant_id": ids.encode(ids.Prefix.TENANT, tenant_id),
                "event_type": event_type,
                "attempts": change.attempt_count,
                "reason": change.reason,
            },
            None,
        )
        for change, event_id, tenant_id, event_type in exhausted
        if tenant_id != ops_tenant_id
    ]
    return events
