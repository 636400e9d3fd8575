"""The worker: claims due deliveries, signs and sends them, decides what follows, and writes
the results in batches. One ``Worker`` per process, with up to ``concurrency`` requests under
way; any number of processes may share one database.

Tasks of a running worker:
- the claim loop: keeps up to ``concurrency`` requests under way and a batch of leased
  deliveries ready behind them (claims run ahead of the sending), each endpoint's no more
  than its gate would hold (``gates``), then sleeps until a NOTIFY (new deliveries), a free
  slot, or the next due retry; on a connection of its own that plans each of its statements
  once (``CLAIM_SESSION``);
- ``concurrency`` sender slots: each takes the next delivery whose endpoint's gate has room
  (endpoints in turn), signs it, POSTs it, decides what follows (``policy.decide``), queues
  the result and tells the gate what the attempt said of the endpoint, for as long as the
  worker runs;
- the flusher: writes queued results every ``flush_s`` in one transaction (group commit);
- the lease keeper: takes back deliveries whose lease expired (killed workers);
- upkeep: retention and attempt partitions (``ops.retention``), one worker at a time.
"""

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from hookpost import __version__, ids
from hookpost.admin import tenants
from hookpost.db.engine import keep_session_state, plain_dsn
from hookpost.db.models import DeliveryStatus
from hookpost.delivery import queue
from hookpost.delivery.gates import Gates, signal_of
from hookpost.delivery.limits import LimitRules
from hookpost.delivery.policy import Outcome, RetrySchedule, classify, decide, schedule_from
from hookpost.delivery.sender import AiohttpSender, ErrorKind, Sender, SenderLimits, SendResult
from hookpost.delivery.signing import secret_bytes, sign
from hookpost.encryption import InvalidToken, SecretBox, load_secret_box
from hookpost.ingest.emit import NOTIFY_CHANNEL, EmitError, check, emit
from hookpost.ops import metrics
from hookpost.ops.events import ensure_event_types, operational_events
from hookpost.ops.retention import run_retention
from hookpost.settings import Settings

logger = logging.getLogger(__name__)

USER_AGENT = f"hookpost/{__version__}"
REDACTED = "[redacted]"
UNREADABLE_SECRET = (
    "the endpoint's signing secret cannot be decrypted with the keys of HOOKPOST_SECRET_KEY "
    "(was the key it was encrypted with removed?); nothing was sent"
)
PREFETCH_ROUNDS = 4  # leased deliveries held ready, in multiples of the concurrency
FULL_RECHECK_S = 0.1  # a full worker looks again this often: a gate's hold shrinks with time
_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
# The claim connection's session. Every statement the claim loop runs reads each table
# through an index and joins no intermediate sets to each other (queue.py says how), so one
# generic plan per statement serves every claim, and none is planned again: planning CLAIM
# afresh for each claim took 0.6-1 ms, 9-13 us a delivery (measured). A plan made while a
# table looks small (a fresh database, no statistics yet) must still read it through its
# indexes.
CLAIM_SESSION = {"plan_cache_mode": "force_generic_plan", "enable_seqscan": "off"}
# A flush's statements each look up the rows a short list names: only nested loops through
# indexes are linear in the list, whatever the planner knows of the tables' sizes.
FLUSH_SETTINGS = (
    "SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; "
    "SET LOCAL enable_mergejoin = off"
)


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


@dataclass
class _Results:
    """Results waiting for the next flush."""

    attempts: list[queue.AttemptRow] = field(default_factory=list)
    changes: list[queue.StateChange] = field(default_factory=list)
    # per endpoint, the outcomes in the order they came: True for a success
    outcomes: dict[uuid.UUID, list[bool]] = field(default_factory=dict)
    gone: set[uuid.UUID] = field(default_factory=set)
    # deliveries that failed for good: (change, event id, tenant id, event type)
    exhausted: list[tuple[queue.StateChange, uuid.UUID, uuid.UUID, str]] = field(
        default_factory=list
    )
    # the counters' increments, added to the metrics once per flush, not once per attempt
    attempt_counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    finished_counts: Counter[str] = field(default_factory=Counter)

    def count_metrics(self) -> None:
        for (outcome, error_kind), count in self.attempt_counts.items():
            metrics.ATTEMPTS.labels(outcome, error_kind).inc(count)
        for status, count in self.finished_counts.items():
            metrics.DELIVERIES_FINISHED.labels(status).inc(count)

    # endpoint -> its gate's concurrency limit, where it changed since the last flush
    limits: dict[uuid.UUID, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.changes)


def _health(outcomes: dict[uuid.UUID, list[bool]]) -> list[queue.EndpointHealth]:
    found = []
    for endpoint_id, results in outcomes.items():
        last_success = max((i for i, ok in enumerate(results) if ok), default=None)
        after = results if last_success is None else results[last_success + 1 :]
        found.append(queue.EndpointHealth(endpoint_id, last_success is not None, len(after)))
    return found


@dataclass(slots=True)  # not frozen: made per delivery (queue.Claimed says why)
class _Ready:
    """A leased delivery waiting for a slot, with its signing keys."""

    delivery: queue.Claimed
    keys: list[bytes] | None  # None: a secret cannot be decrypted (``_signing_keys``)


class Worker:
    """One worker process's delivery engine. ``await run(stop)`` until ``stop`` is set."""

    def __init__(
        self,
        settings: Settings,
        *,
        worker_id: str | None = None,
        sender: Sender | None = None,
    ) -> None:
        assert settings.database_url, "the worker needs settings.database_url"
        self.settings = settings
        self.worker_id = worker_id or new_worker_id()
        self.concurrency = settings.worker_concurrency
        self.schedule: RetrySchedule = schedule_from(settings)
        self._sender = sender
        self._box: SecretBox = load_secret_box(settings)
        self._keys: dict[uuid.UUID, bytes] = {}  # secret row id -> key; secret rows never change
        self._unreadable: set[uuid.UUID] = set()  # endpoints whose secret failed to decrypt
        self._in_flight: set[uuid.UUID] = set()  # deliveries being sent now
        self._results = _Results()
        self._wake = asyncio.Event()
        # When the idle claim loop looks at the queue again (monotonic); infinite while it is
        # not asleep, so that a retry written meanwhile wakes it from the sleep it goes into.
        self._next_look = math.inf
        self._slot_freed = asyncio.Event()
        self._pool: asyncpg.Pool | None = None  # flushes, leases, upkeep, the listener
        self._claims: asyncpg.Pool | None = None  # the claim loop's one connection
        self._rules = LimitRules(
            breaker_threshold=settings.breaker_threshold,
            probe_s=settings.breaker_probe_s,
            defer_s=settings.defer_s,
        )
        # Leased deliveries waiting for a slot: claims run ahead of the sending by up to a
        # batch, so that a claim's round trips never leave the slots idle (with a prefetch of
        # one concurrency's worth, a worker of 32 slots spent half its time with none busy).
        self._prefetch = min(settings.worker_batch_size, PREFETCH_ROUNDS * self.concurrency)
        # retries may fill this many of the deliveries held; the rest is kept for first attempts
        self._retry_capacity = max(
            1,
            int((self.concurrency + self._prefetch) * (1 - settings.worker_first_attempt_share)),
        )
        self._retries_held = 0  # retries in flight or ready
        self._gates: Gates[_Ready] = Gates()
        self._reported_limits: dict[uuid.UUID, int] = {}  # as last written to the database
        self._ops_tenant_id: uuid.UUID | None = None
        self.delivered = 0  # attempts made, for progress figures

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    # lifecycle

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then shut down gracefully: stop claiming, let the
        requests under way finish within the grace period, release the rest, flush."""
        self._pool = await self._connect(min_size=2, max_size=4)
        self._claims = await self._connect(min_size=1, max_size=1, server_settings=CLAIM_SESSION)
        listener = await self._pool.acquire()
        await listener.add_listener(NOTIFY_CHANNEL, self._on_notify)
        sender = self._sender or AiohttpSender(
            SenderLimits(
                connections=self.concurrency,
                total_timeout_s=self.settings.delivery_timeout_s,
                connect_timeout_s=self.settings.delivery_connect_timeout_s,
                read_timeout_s=self.settings.delivery_read_timeout_s,
                body_cap_bytes=self.settings.response_body_cap_bytes,
            ),
            user_agent=USER_AGENT,
            policy=self.settings.destination_policy,
        )
        metrics.IN_FLIGHT.set_function(lambda: len(self._in_flight))  # read when scraped
        flushing = asyncio.Event()
        slots = [
            asyncio.create_task(self._sender_slot(sender), name=f"hookpost-slot-{number}")
            for number in range(self.concurrency)
        ]
        background = [
            asyncio.create_task(self._flush_loop(flushing), name="hookpost-flush"),
            asyncio.create_task(self._lease_loop(stop), name="hookpost-leases"),
            asyncio.create_task(self._maintenance_loop(stop), name="hookpost-maintenance"),
        ]
        logger.info("worker %s started, concurrency %d", self.worker_id, self.concurrency)
        try:
            await self._claim_loop(stop)
        finally:
            await self._drain(slots)
            flushing.set()
            await background[0]
            for task in background[1:]:
                task.cancel()
            await asyncio.gather(*background[1:], return_exceptions=True)
            await listener.remove_listener(NOTIFY_CHANNEL, self._on_notify)
            await self._pool.release(listener)
            await self._pool.close()
            await self._claims.close()
            if self._sender is None:
                await sender.close()
            metrics.IN_FLIGHT.set_function(lambda: 0)
            logger.info("worker %s stopped", self.worker_id)

    async def _connect(
        self, *, min_size: int, max_size: int, server_settings: dict[str, str] | None = None
    ) -> asyncpg.Pool:
        assert self.settings.database_url
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(_DB_ERRORS),
            wait=wait_exponential(multiplier=0.1, max=2),
            stop=stop_after_delay(self.settings.db_connect_timeout_s),
            reraise=True,
        ):
            with attempt:
                pool: asyncpg.Pool = await asyncpg.create_pool(
                    plain_dsn(self.settings.database_url),
                    min_size=min_size,
                    max_size=max_size,
                    reset=keep_session_state,
                    server_settings=server_settings,
                )
        return pool

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _drain(self, slots: list[asyncio.Task[None]]) -> None:
        """Give requests under way the grace period; release what is left, and the leased
        deliveries not started yet, to other workers at once."""
        unsent = [ready.delivery.id for ready in self._gates.take_all_waiting()]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.worker_grace_s):
                while self._in_flight:
                    self._slot_freed.clear()
                    await self._slot_freed.wait()
        unfinished = list(self._in_flight)
        for slot in slots:
            slot.cancel()
        await asyncio.gather(*slots, return_exceptions=True)
        if unfinished or unsent:
            assert self._pool is not None
            async with self._pool.acquire() as connection:
                released = await queue.release(connection, [*unfinished, *unsent], self.worker_id)
            logger.info("released %d deliveries to other workers", released)

    # claiming

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        """Keep up to ``concurrency`` requests under way and a prefetch of leased deliveries
        ready behind them, so that the claim's round trips overlap the sending; deliveries
        that wait long behind a slow endpoint's gate do not count. While claims find
        deliveries, claim in batches of at least a quarter of the prefetch; after one that
        found none, sleep until woken or the next delivery falls due."""
        assert self._claims is not None
        target = self.concurrency + self._prefetch
        batch_floor = max(1, min(target, self.settings.worker_batch_size) // 4)
        backlog = False
        while not stop.is_set():
            now = time.monotonic()
            self._hand_back_expired(now)
            capacity = target - self._gates.usable(now, target)
            if capacity <= 0 or (backlog and capacity < batch_floor):
                self._slot_freed.clear()
                await self._sleep(stop, self._slot_freed, FULL_RECHECK_S)
                continue
            wanted = min(capacity, self.settings.worker_batch_size)
            retry_slots = min(self._retry_capacity - self._retries_held, wanted)
            self._wake.clear()
            try:
                async with self._claims.acquire() as connection:
                    claimed = await queue.claim(
                        connection,
                        free_slots=wanted,
                        retry_slots=retry_slots,
                        rules=self._rules,
                        lease_s=self.settings.lease_s,
                        worker_id=self.worker_id,
                        holding=self._gates.holding(now, target),
                    )
                    # A short claim may only have lost rows to another worker: claim
                    # again. Only an empty one asks when the next delivery falls due (the
                    # question walks the due indexes: 24 us a delivery when asked after
                    # every short claim of two workers, measured).
                    due_in = await queue.seconds_to_next_due(connection) if not claimed else None
            except _DB_ERRORS as error:
                logger.warning("claiming failed (%s); retrying", error)
                await self._sleep(stop, None, 1.0)
                continue
            backlog = bool(claimed)
            leased_at = time.monotonic()
            for delivery in claimed:
                if delivery.round_attempts:
                    self._retries_held += 1
                self._gates.add(
                    delivery.endpoint_id,
                    delivery.max_in_flight,
                    _Ready(delivery, self._signing_keys(delivery)),
                    leased_at,
                )
            if not backlog:
                timeout = self.settings.worker_poll_s
                if due_in is not None:
                    timeout = min(max(due_in, 0.0), timeout)
                self._next_look = time.monotonic() + timeout
                # a slot freed by a retry may let a refused retry in: wake on it too
                await self._sleep(stop, self._wake, timeout)
                self._next_look = math.inf

    async def _sender_slot(self, sender: Sender) -> None:
        """One of ``concurrency`` slots: deliver the next delivery whose endpoint's gate has
        room, one after another until cancelled, and tell the gate what the attempt said."""
        while True:
            gate, token, ready = await self._gates.take()
            result: SendResult | None = None
            try:
                result = await self._deliver(sender, ready.delivery, ready.keys)
            except Exception:
                # A bug, not a failed attempt (those are results): the slot goes on, and
                # the delivery is sent again once its lease expires.
                delivery_id = ids.encode(ids.Prefix.DELIVERY, ready.delivery.id)
                logger.exception(
                    "delivering %s failed; it goes again once its lease expires", delivery_id
                )
            finally:
                if result is None:
                    self._gates.finish(gate, token, None, 0.0)
                else:
                    self._gates.finish(gate, token, signal_of(result), result.duration_ms / 1000)

    def _hand_back_expired(self, now: float) -> None:
        """Deliveries that waited behind their endpoint's gate for half their lease go back
        to the queue unsent: sending them now could outlast the lease and have another worker
        send them too. Each is due again after the deliveries ahead of it, at its
        endpoint's pace."""
        expired = self._gates.expired(now - self.settings.lease_s / 2)
        ahead: Counter[uuid.UUID] = Counter()
        for ready in expired:
            delivery = ready.delivery
            gate = self._gates.get(delivery.endpoint_id)
            ahead[delivery.endpoint_id] += 1
            pace = gate.pace_s(now) if gate is not None else 0.0
            self._hand_back(delivery, ahead[delivery.endpoint_id] * pace)

    def _hand_back(self, delivery: queue.Claimed, delay_s: float) -> None:
        """Return a leased delivery to the queue, due in ``delay_s``, with the next flush."""
        if delivery.round_attempts:
            self._retries_held -= 1
        self._results.changes.append(
            queue.StateChange(
                delivery.id,
                delivery.endpoint_id,
                DeliveryStatus.PENDING,
                None,
                delivery.attempt_count,
                datetime.now(UTC) + timedelta(seconds=delay_s),
                None,
                None,
                None,
            )
        )

    async def _sleep(
        self, stop: asyncio.Event, event: asyncio.Event | None, seconds: float | None
    ) -> None:
        """Until ``stop``, ``event`` or ``seconds`` have passed, whichever comes first."""
        waits = [asyncio.ensure_future(stop.wait())]
        if event is not None:
            waits.append(asyncio.ensure_future(event.wait()))
        _, pending = await asyncio.wait(waits, timeout=seconds, return_when="FIRST_COMPLETED")
        for waiter in pending:
            waiter.cancel()

    def _signing_keys(self, delivery: queue.Claimed) -> list[bytes] | None:
        """The delivery's endpoint's live secrets as key bytes, newest first; decrypted once
        per secret (secret rows never change). None when a secret cannot be decrypted with
        the configured keys: that delivery's attempt fails, the worker goes on."""
        keys = []
        for secret_id, ciphertext in delivery.secrets:
            key = self._keys.get(secret_id)
            if key is None:
                try:
                    key = self._keys[secret_id] = secret_bytes(self._box.decrypt(ciphertext))
                except InvalidToken:
                    self._report_unreadable(delivery.endpoint_id)
                    return None
            keys.append(key)
        return keys

    def _report_unreadable(self, endpoint_id: uuid.UUID) -> None:
        if endpoint_id in self._unreadable:
            return
        self._unreadable.add(endpoint_id)
        public_id = ids.encode(ids.Prefix.ENDPOINT, endpoint_id)
        logger.error(
            "endpoint %s: %s", public_id, UNREADABLE_SECRET, extra={"endpoint_id": public_id}
        )

    # delivering

    async def _deliver(
        self, sender: Sender, delivery: queue.Claimed, keys: list[bytes] | None
    ) -> SendResult | None:
        """Attempt ``delivery``; what its request gave, or None when nothing was sent."""
        self._in_flight.add(delivery.id)
        try:
            if not delivery.enabled:
                self._stop_undeliverable(delivery)
                return None
            return await self._attempt(sender, delivery, keys)
        finally:
            self._in_flight.discard(delivery.id)
            if delivery.round_attempts:
                self._retries_held -= 1
            self._slot_freed.set()

    def _stop_undeliverable(self, delivery: queue.Claimed) -> None:
        if delivery.deleted:
            status, reason = DeliveryStatus.CANCELLED, "the endpoint was deleted"
        else:
            status = DeliveryStatus.FAILED
            reason = f"the endpoint is disabled: {delivery.disabled_reason or 'no reason given'}"
        self._results.changes.append(
            queue.StateChange(
                delivery.id,
                delivery.endpoint_id,
                status,
                reason,
                delivery.attempt_count,
                None,
                None,
                None,
                None,
                resume_on_enable=not delivery.deleted,
            )
        )
        self._results.finished_counts[status] += 1

    async def _attempt(
        self, sender: Sender, delivery: queue.Claimed, keys: list[bytes] | None
    ) -> SendResult | None:
        msg_id = ids.encode(ids.Prefix.EVENT, delivery.event_id)
        timestamp = int(time.time())
        hookpost_headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
        }
        started_at = datetime.now(UTC)
        sent = keys is not None
        if keys is None:  # nothing is sent unsigned
            result = SendResult(
                duration_ms=0,
                error_kind=ErrorKind.SECRET_UNREADABLE,
                error_message=UNREADABLE_SECRET,
            )
        else:
            hookpost_headers["webhook-signature"] = sign(keys, msg_id, timestamp, delivery.body)
            result = await sender.send(
                delivery.url, delivery.headers | hookpost_headers, delivery.body
            )
        attempt_number = delivery.attempt_count + 1
        now = datetime.now(UTC)
        decision = decide(
            self.schedule,
            status_code=result.status_code,
            retry_after=(result.headers or {}).get("retry-after"),
            attempt_number=delivery.round_attempts + 1,
            created_at=delivery.round_started_at,
            now=now,
        )
        logged_headers = (
            {"user-agent": USER_AGENT}
            | dict.fromkeys(delivery.headers, REDACTED)
            | hookpost_headers
        )
        results = self._results
        results.attempts.append(
            queue.AttemptRow(
                id=ids.new_id(),
                delivery_id=delivery.id,
                endpoint_id=delivery.endpoint_id,
                tenant_id=delivery.tenant_id,
                attempt_number=attempt_number,
                trigger=delivery.trigger,
                started_at=started_at,
                duration_ms=result.duration_ms,
                request_headers=logged_headers,
                response_status=result.status_code,
                response_headers=result.headers,
                response_body=result.body,
                error_kind=result.error_kind,
                error_message=result.error_message,
                worker_id=self.worker_id,
            )
        )
        change = queue.StateChange(
            delivery.id,
            delivery.endpoint_id,
            decision.status,
            decision.reason or result.error_message,
            attempt_number,
            decision.next_attempt_at,
            started_at,
            result.status_code,
            result.error_kind,
        )
        results.changes.append(change)
        outcome = classify(result.status_code)
        results.attempt_counts[outcome, result.error_kind or ""] += 1
        metrics.ATTEMPT_SECONDS.observe(result.duration_ms / 1000)
        if decision.status is not DeliveryStatus.PENDING:
            results.finished_counts[decision.status] += 1
        level = logging.DEBUG if outcome is Outcome.SUCCESS else logging.INFO
        if logger.isEnabledFor(level):
            delivery_id = ids.encode(ids.Prefix.DELIVERY, delivery.id)
            logger.log(
                level,
                "attempt %d of delivery %s: %s",
                attempt_number,
                delivery_id,
                result.error_message or result.status_code,
                extra={
                    "delivery_id": delivery_id,
                    "endpoint_id": ids.encode(ids.Prefix.ENDPOINT, delivery.endpoint_id),
                    "tenant_id": ids.encode(ids.Prefix.TENANT, delivery.tenant_id),
                    "status_code": result.status_code,
                    "error_kind": result.error_kind,
                    "next_state": decision.status,
                },
            )
        if decision.status is DeliveryStatus.FAILED and outcome is Outcome.FAILURE:
            results.exhausted.append(
                (change, delivery.event_id, delivery.tenant_id, delivery.event_type)
            )
        results.outcomes.setdefault(delivery.endpoint_id, []).append(outcome is Outcome.SUCCESS)
        if outcome is Outcome.GONE:
            results.gone.add(delivery.endpoint_id)
        self.delivered += 1
        return result if sent else None

    # writing results

    async def _flush_loop(self, stopping: asyncio.Event) -> None:
        """Write results every ``flush_s``; after ``stopping`` is set, write the last ones."""
        while not stopping.is_set():
            await self._sleep(stopping, None, self.settings.worker_flush_s)
            await self._flush()
        await self._flush()

    async def _flush(self) -> None:
        if not self._results:
            return
        batch, self._results = self._results, _Results()
        batch.limits = self._changed_limits()
        batch.count_metrics()
        assert self._pool is not None
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(_DB_ERRORS),
                wait=wait_exponential(multiplier=0.1, max=5),
                stop=stop_after_delay(self.settings.lease_s / 2),
                reraise=True,
            ):
                with attempt:
                    async with self._pool.acquire() as connection, connection.transaction():
                        await connection.execute(FLUSH_SETTINGS)
                        await self._record(connection, batch)
            self._wake_for_retries(batch.changes)
        except Exception:
            # Whatever went wrong, the worker goes on: these deliveries' leases expire and they
            # are sent again (at-least-once).
            logger.exception("could not record %d results", len(batch.changes))

    def _changed_limits(self) -> dict[uuid.UUID, int]:
        """The gates' limits that changed since they were last reported, now counted as
        reported and shown in the metrics."""
        changed = {}
        for gate in self._gates:
            limit = gate.current_limit
            if self._reported_limits.get(gate.endpoint_id) != limit:
                changed[gate.endpoint_id] = self._reported_limits[gate.endpoint_id] = limit
                public_id = ids.encode(ids.Prefix.ENDPOINT, gate.endpoint_id)
                metrics.ENDPOINT_CONCURRENCY_LIMIT.labels(public_id).set(limit)
        return changed

    def _wake_for_retries(self, changes: list[queue.StateChange]) -> None:
        """Wake the idle claim loop when a retry just written falls due before it would look:
        no other signal tells it of the retry (its own flush notifies nobody)."""
        now, wall = time.monotonic(), datetime.now(UTC)
        for change in changes:
            due = change.next_attempt_at
            if (
                change.status == "pending"
                and due is not None
                and now + (due - wall).total_seconds() < self._next_look
            ):
                self._wake.set()
                return

    async def _record(self, connection: asyncpg.Connection, batch: _Results) -> None:
        """One flush: the results, the endpoint health they imply, and the operational
        events they call for, in the caller's transaction."""
        recorded = await queue.record(
            connection,
            attempts=batch.attempts,
            changes=batch.changes,
            health=_health(batch.outcomes),
            gone=sorted(batch.gone),
            limits=batch.limits,
            worker_id=self.worker_id,
            breaker_threshold=self.settings.breaker_threshold,
            disable_after_s=self.settings.disable_after_s,
        )
        for row in recorded.disabled:
            endpoint_id = ids.encode(ids.Prefix.ENDPOINT, row["id"])
            logger.warning(
                "endpoint %s disabled: %s",
                endpoint_id,
                row["disabled_reason"],
                extra={"endpoint_id": endpoint_id},
            )
        if not (recorded.disabled or recorded.failing or batch.exhausted):
            return
        ops_tenant_id = await self._ops_tenant(connection)
        if ops_tenant_id is None:
            return
        events = operational_events(
            ops_tenant_id,
            disabled=recorded.disabled,
            failing=recorded.failing,
            exhausted=batch.exhausted,
        )
        if not events:
            return
        errors = await check(connection, events, types=None, validator=None)
        if error := next((error for error in errors if error is not None), None):
            logger.warning("operational events not emitted: %s", error)
            return
        try:
            async with connection.transaction():  # a savepoint: the results stay recorded
                await emit(connection, events)  # wakes the workers with the flush's commit
        except EmitError as error:
            logger.warning("operational events not emitted: %s", error)

    async def _ops_tenant(self, connection: asyncpg.Connection) -> uuid.UUID | None:
        """The tenant of ``HOOKPOST_OPS_TENANT``, looked up until found."""
        ref = self.settings.ops_tenant
        if ref is None:
            return None
        if self._ops_tenant_id is None:
            self._ops_tenant_id = await tenants.find_id(connection, ref)
            if self._ops_tenant_id is None:
                logger.warning("HOOKPOST_OPS_TENANT %r names no tenant", ref)
            else:
                await ensure_event_types(connection)
        return self._ops_tenant_id

    async def _lease_loop(self, stop: asyncio.Event) -> None:
        """Take back deliveries whose lease expired, now and every half lease."""
        assert self._pool is not None
        interval = min(self.settings.lease_s / 2, 30.0)
        while not stop.is_set():
            try:
                async with self._pool.acquire() as connection:
                    recovered = await queue.recover_expired(connection)
                if recovered:
                    logger.warning("took back %d deliveries with an expired lease", recovered)
                    self._wake.set()
            except _DB_ERRORS as error:
                logger.warning("lease recovery failed: %s", error)
            await self._sleep(stop, None, interval)

    async def _maintenance_loop(self, stop: asyncio.Event) -> None:
        """Retention and partition upkeep now and every ``maintenance_interval_s``."""
        assert self._pool is not None
        day = 86400.0
        while not stop.is_set():
            try:
                async with self._pool.acquire() as connection:
                    await run_retention(
                        connection,
                        attempt_retention_s=self.settings.attempt_retention_days * day,
                        event_retention_s=self.settings.event_retention_days * day,
                        days_ahead=self.settings.partition_days_ahead,
                    )
            except _DB_ERRORS as error:
                logger.warning("retention failed: %s", error)
            await self._sleep(stop, None, self.settings.maintenance_interval_s)
