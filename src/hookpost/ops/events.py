"""hookpost's own operational events, emitted to the tenant named by ``HOOKPOST_OPS_TENANT``
and delivered like any other event: operators subscribe an endpoint to ``hookpost.*``.

Nothing is emitted about the operations tenant's own endpoints, so that a failing operations
endpoint cannot feed itself events."""

import logging
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from hookpost import ids
from hookpost.admin import tenants
from hookpost.delivery.queue import Recorded, StateChange
from hookpost.ingest.emit import EmitError, EventIn, check, emit
from hookpost.settings import Settings

logger = logging.getLogger(__name__)

ENDPOINT_DISABLED = "hookpost.endpoint.disabled"
ENDPOINT_FAILING = "hookpost.endpoint.failing"
DELIVERY_EXHAUSTED = "hookpost.delivery.exhausted"


DESCRIPTIONS = {
    ENDPOINT_DISABLED: "hookpost disabled an endpoint (410 Gone, or failing too long).",
    ENDPOINT_FAILING: "An endpoint failed enough attempts in a row to open its circuit breaker.",
    DELIVERY_EXHAUSTED: "A delivery failed for good: out of attempts or of age (holds_lane: "
    "its ordered lane waits for it to be resent).",
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
                "holds_lane": change.holds_lane,
            },
            None,
        )
        for change, event_id, tenant_id, event_type in exhausted
        if tenant_id != ops_tenant_id
    ]
    return events


class OperationalEvents:
    """The worker's ``after_flush`` hook: emits the events a flush calls for to the tenant of
    ``HOOKPOST_OPS_TENANT``, in the flush's transaction (a savepoint: a refused event never
    undoes the recorded results)."""

    def __init__(self, settings: Settings) -> None:
        self._ref = settings.ops_tenant
        self._tenant_id: uuid.UUID | None = None

    async def __call__(
        self,
        connection: asyncpg.Connection,
        recorded: Recorded,
        exhausted: Sequence[tuple[StateChange, uuid.UUID, uuid.UUID, str]],
    ) -> None:
        if not (recorded.disabled or recorded.failing or exhausted):
            return
        tenant_id = await self._tenant(connection)
        if tenant_id is None:
            return
        events = operational_events(
            tenant_id, disabled=recorded.disabled, failing=recorded.failing, exhausted=exhausted
        )
        if not events:
            return
        errors = await check(connection, events, types=None, validator=None)
        if error := next((error for error in errors if error is not None), None):
            logger.warning("operational events not emitted: %s", error)
            return
        try:
            async with connection.transaction():
                await emit(connection, events)  # wakes the workers with the flush's commit
        except EmitError as error:
            logger.warning("operational events not emitted: %s", error)

    async def _tenant(self, connection: asyncpg.Connection) -> uuid.UUID | None:
        """The tenant of ``HOOKPOST_OPS_TENANT``, looked up until found."""
        if self._ref is None:
            return None
        if self._tenant_id is None:
            self._tenant_id = await tenants.find_id(connection, self._ref)
            if self._tenant_id is None:
                logger.warning("HOOKPOST_OPS_TENANT %r names no tenant", self._ref)
            else:
                await ensure_event_types(connection)
        return self._tenant_id
