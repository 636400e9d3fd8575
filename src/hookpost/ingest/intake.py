"""Events in, as the API takes them: the tenant each names (by id or uid, cached, retried once
when the cache was stale), the payload's size, the type's checks, the store (single events
grouped with concurrent ones, a batch in one transaction) and the ingest counters. Errors are
``IntakeError``s; the router turns them into problems."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import asyncpg
import orjson

from hookpost import ids, jsonvalue
from hookpost.access import Viewer
from hookpost.admin import tenants
from hookpost.cache import TtlCache
from hookpost.db import unstorable
from hookpost.errors import HookpostError
from hookpost.ingest import emit
from hookpost.ingest.group import EmitGroup
from hookpost.ingest.metrics import DELIVERIES_QUEUED, EVENTS_INGESTED
from hookpost.ingest.validation import Validator

TenantCache = TtlCache[str, uuid.UUID]  # tenant uid -> id


@dataclass(frozen=True)
class EventItem:
    """One event as a viewer sends it."""

    tenant_ref: str | None  # a tenant id or uid; None: the viewer's own tenant
    event_type: str
    payload: Any
    idempotency_key: str | None
    deliver_at: datetime | None = None  # its deliveries fall due then; None: at once
    channels: list[str] | None = None  # None: no channel


class IntakeError(HookpostError):
    """An event the intake refuses, before anything was stored."""

    code: ClassVar[str] = "validation_error"


class TenantRequired(IntakeError):
    """An admin key emitted without naming a tenant."""

    code: ClassVar[str] = "tenant_required"


class TenantNotFound(IntakeError):
    code: ClassVar[str] = "tenant_not_found"

    def __init__(self, ref: str) -> None:
        super().__init__(ref)
        self.ref = ref


@dataclass
class PayloadTooLarge(IntakeError):
    code: ClassVar[str] = "payload_too_large"
    index: int
    size: int
    limit: int


@dataclass
class PayloadUnencodable(IntakeError):
    code: ClassVar[str] = "payload_invalid"
    index: int
    message: str


def _placed(path: list[str | int], reason: str) -> str:
    where = "".join(f"[{part!r}]" for part in path)
    return f"at payload{where}, {reason}"


@dataclass
class DeliverAtTooFar(IntakeError):
    """A ``deliver_at`` later than the events are kept (``HOOKPOST_EVENT_RETENTION_DAYS``)."""

    code: ClassVar[str] = "deliver_at_too_far"

    index: int
    latest: datetime


_CREATED = EVENTS_INGESTED.labels("created")  # each labels() call looks the child up
_DUPLICATE = EVENTS_INGESTED.labels("duplicate")


class Intake:
    """The API process's way in for events. ``emit_one`` and ``emit_batch`` raise
    ``IntakeError``, ``emit.EmitError`` (with the index of the event refused) or
    ``validation.ValidationUnavailable``."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        types: emit.EventTypeCache,
        validator: Validator,
        max_payload_bytes: int,
        max_delay_s: float,
    ) -> None:
        self._pool = pool
        self._types = types
        self._validator = validator
        self._max_payload_bytes = max_payload_bytes
        self._max_delay_s = max_delay_s
        self._uids = TenantCache()
        self.group = EmitGroup(pool, types, validator)  # single events, stored together

    async def close(self) -> None:
        await self.group.close()

    async def emit_one(self, viewer: Viewer, item: EventItem) -> emit.Emitted:
        """Store one event with the single events of concurrent requests; its outcome."""
        self._check_size(0, item.payload)
        self._check_schedule(0, item.deliver_at)
        for tries_left in (1, 0):  # a tenant stale in the cache costs one more try
            [event] = await self._events_in(viewer, [item])
            try:
                emitted = await self.group.emit(event)
                break
            except emit.StaleTenant as error:
                self._forget(item, error, retry=bool(tries_left))
        self._count([emitted])
        return emitted

    async def emit_batch(self, viewer: Viewer, items: Sequence[EventItem]) -> list[emit.Emitted]:
        """Store a batch in one transaction: all of it or none; the outcomes in order."""
        for index, item in enumerate(items):
            self._check_size(index, item.payload)
            self._check_schedule(index, item.deliver_at)
        for tries_left in (1, 0):  # as for one event
            batch = await self._events_in(viewer, items)
            if tries_left:  # before any transaction: validation may take its time bound
                errors = await emit.check(
                    self._pool, batch, types=self._types, validator=self._validator
                )
                if refused := next((error for error in errors if error is not None), None):
                    raise refused
            try:
                async with self._pool.acquire() as connection, connection.transaction():
                    emitted = await emit.emit(connection, batch)
                await emit.send_lanes_on(self._pool, emitted)
                break
            except emit.StaleTenant as error:
                self._forget(items[error.index], error, retry=bool(tries_left))
        self._count(emitted)
        return emitted

    def _check_size(self, index: int, payload: Any) -> None:
        try:
            size = len(jsonvalue.dumps(payload))
        except orjson.JSONEncodeError as error:  # integers past 64 bits, lone surrogates
            found = unstorable.json_refusal(payload, keep_nul=True)
            message = str(error) if found is None else _placed(*found)
            raise PayloadUnencodable(index, message) from None
        if size > self._max_payload_bytes:
            raise PayloadTooLarge(index, size, self._max_payload_bytes)

    def _check_schedule(self, index: int, deliver_at: datetime | None) -> None:
        latest = datetime.now(UTC) + timedelta(seconds=self._max_delay_s)
        if deliver_at is not None and deliver_at > latest:
            raise DeliverAtTooFar(index, latest)

    async def _events_in(self, viewer: Viewer, items: Sequence[EventItem]) -> list[emit.EventIn]:
        """The events to store, each tenant resolved once."""
        found = {
            ref: await self._tenant(viewer, ref)
            for ref in dict.fromkeys(item.tenant_ref for item in items)
        }
        return [
            emit.EventIn(
                found[item.tenant_ref][0],
                item.event_type,
                item.payload,
                item.idempotency_key,
                found[item.tenant_ref][1],
                item.deliver_at,
                item.channels or None,
            )
            for item in items
        ]

    async def _tenant(self, viewer: Viewer, ref: str | None) -> tuple[uuid.UUID, str | None]:
        """The tenant an event names (id or uid), or a tenant key's own, with the uid it was
        named by. A uid is read from the cache when it holds it: the store checks that the
        tenant still has that uid, as it checks that a tenant named by id exists, which
        therefore needs no read here."""
        if ref is None:
            if viewer.tenant_id is None:
                raise TenantRequired()
            return viewer.tenant_id, None
        uid = None
        tenant_id = ids.decode(ids.Prefix.TENANT, ref)
        if tenant_id is None:  # a uid: uids never look like tenant ids
            uid = ref
            tenant_id = self._uids.get(uid)
            if tenant_id is None:
                tenant_id = await tenants.find_id(self._pool, uid)
                if tenant_id is None:
                    raise TenantNotFound(ref)
                self._uids.put(uid, tenant_id)
        if not viewer.can_see(tenant_id):
            raise TenantNotFound(ref)
        return tenant_id, uid

    def _forget(self, item: EventItem, error: emit.StaleTenant, *, retry: bool) -> None:
        """A stale tenant: its cached uid goes, and the store is tried once more; the second
        time the tenant is not found."""
        if item.tenant_ref is not None:
            self._uids.discard(item.tenant_ref)
        if not retry:
            raise TenantNotFound(item.tenant_ref or "of this API key") from error

    @staticmethod
    def _count(emitted: list[emit.Emitted]) -> None:
        created = [item for item in emitted if item.created]
        _CREATED.inc(len(created))
        _DUPLICATE.inc(len(emitted) - len(created))
        DELIVERIES_QUEUED.inc(sum(item.deliveries for item in created))
