"""The worker: runs a delivery's stages (claim in ``queue``, wait at its endpoint's gate in
``gates``, sign, send and decide in ``attempt``, record in ``results`` and ``queue``) in
loops. One ``Worker`` per process, with up to ``concurrency`` requests under way; any number
of processes may share one database.

Tasks of a running worker:
- the claim loop: keeps up to ``concurrency`` requests under way and a batch of leased
  deliveries ready behind them (claims run ahead of the sending), each endpoint's no more
  than its gate would hold (``gates``), then sleeps until a NOTIFY (new deliveries), a free
  slot, or the next due retry; on a connection of its own that plans each of its statements
  once (``CLAIM_SESSION``);
- ``concurrency`` sender slots: each takes the next delivery whose endpoint's gate has room
  (endpoints in turn), attempts it, queues the verdict and tells the gate what the attempt
  said of the endpoint, for as long as the worker runs;
- the flusher: writes queued results every ``flush_s`` in one transaction (group commit);
- the lease keeper: takes back deliveries whose lease expired (killed workers).

What a flush implies beyond the queue (hookpost's operational events) is the ``after_flush``
hook's, given by the process that runs the worker; upkeep (retention) is not the worker's.
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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from hookpost import ids
from hookpost.db.engine import (
    DATABASE_ERRORS,
    database_retrying,
    is_database_error,
    is_outage,
    keep_session_state,
    plain_dsn,
)
from hookpost.delivery import attempt, metrics, queue
from hookpost.delivery.gates import Gates, signal_of
from hookpost.delivery.limits import LimitRules
from hookpost.delivery.policy import Outcome, RetrySchedule, schedule_from
from hookpost.delivery.results import Exhausted, Results
from hookpost.delivery.sender import AiohttpSender, Sender, SenderLimits, SendResult
from hookpost.delivery.signing import secret_bytes
from hookpost.delivery.ssrf import DestinationPolicy
from hookpost.encryption import InvalidToken, SecretBox, load_secret_box
from hookpost.settings import Settings

logger = logging.getLogger(__name__)

PREFETCH_ROUNDS = 4  # leased deliveries held ready, in multiples of the concurrency
FULL_RECHECK_S = 0.1  # a full worker looks again this often: a gate's hold shrinks with time
HEARTBEAT_S = 2.0  # how often a worker says it is alive
LISTEN_CHECK_S = 5.0  # the listening connection is checked this often beside its loss signal
# The claim connection's session: its statements read every table through an index and join
# none of their own sets (queue.py says how), so one generic plan each serves every claim
# instead of planning the large CLAIM each time; and a plan made while a table looks small (no
# statistics yet) must still read it through its indexes.
CLAIM_SESSION = {"plan_cache_mode": "force_generic_plan", "enable_seqscan": "off"}
# A flush's statements each look up the rows a short list names: only nested loops through
# indexes are linear in the list, whatever the planner knows of the tables' sizes.
FLUSH_SETTINGS = (
    "SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; "
    "SET LOCAL enable_mergejoin = off"
)


# Called in each flush's transaction with what the flush changed in endpoints and the
# deliveries that failed for good (the process that runs the worker emits events for them).
AfterFlush = Callable[[asyncpg.Connection, queue.Recorded, Sequence[Exhausted]], Awaitable[None]]


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


def _log_attempt(delivery: queue.Claimed, verdict: attempt.Verdict) -> None:
    """A line per attempt: at debug level for successes, else at info level."""
    level = logging.DEBUG if verdict.outcome is Outcome.SUCCESS else logging.INFO
    if not logger.isEnabledFor(level):
        return
    record = verdict.attempt
    public = attempt.public_ids(delivery)
    logger.log(
        level,
        "attempt %d of delivery %s: %s",
        record.attempt_number,
        public["delivery_id"],
        record.error_message or record.response_status,
        extra=public
        | {
            "status_code": record.response_status,
            "error_kind": record.error_kind,
            "next_state": verdict.decision.status,
        },
    )


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
        after_flush: AfterFlush | None = None,
    ) -> None:
        assert settings.database_url, "the worker needs settings.database_url"
        self.settings = settings
        self.worker_id = worker_id or new_worker_id()
        self.concurrency = settings.worker_concurrency
        self.schedule: RetrySchedule = schedule_from(settings)
        self._sender = sender
        self._after_flush = after_flush
        self._box: SecretBox = load_secret_box(settings)
        self._keys: dict[uuid.UUID, bytes] = {}  # secret row id -> key; secret rows never change
        self._unreadable: set[uuid.UUID] = set()  # endpoints whose secret failed to decrypt
        self._in_flight: set[uuid.UUID] = set()  # deliveries being sent now
        self._results = Results()
        self._wake = asyncio.Event()
        # When the idle claim loop looks at the queue again (monotonic); infinite while it is
        # not asleep, so that a retry written meanwhile wakes it from the sleep it goes into.
        self._next_look = math.inf
        self._slot_freed = asyncio.Event()
        self._pool: asyncpg.Pool | None = None  # flushes, leases, upkeep
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
        self.delivered = 0  # attempts made, for progress figures

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    # lifecycle

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then shut down gracefully: stop claiming, let the
        requests under way finish within the grace period, release the rest, flush."""
        self._pool = await self._connect(min_size=2, max_size=3)
        self._claims = await self._connect(min_size=1, max_size=1, server_settings=CLAIM_SESSION)
        listening = asyncio.Event()
        listener = asyncio.create_task(self._listen(stop, listening), name="hookpost-listen")
        await self._sleep(stop, listening, self.settings.db_connect_timeout_s)
        sender = self._sender or AiohttpSender(
            SenderLimits(
                connections=self.concurrency,
                total_timeout_s=self.settings.delivery_timeout_s,
                connect_timeout_s=self.settings.delivery_connect_timeout_s,
                read_timeout_s=self.settings.delivery_read_timeout_s,
                body_cap_bytes=self.settings.response_body_cap_bytes,
            ),
            user_agent=attempt.USER_AGENT,
            policy=DestinationPolicy.from_settings(self.settings),
        )
        metrics.IN_FLIGHT.set_function(lambda: len(self._in_flight))  # read when scraped
        slots = [
            asyncio.create_task(self._sender_slot(sender), name=f"hookpost-slot-{number}")
            for number in range(self.concurrency)
        ]
        # the flush and the heartbeat go on through the drain, until ``drained``: a worker that
        # stopped beating while it still sent would see its requests taken back and sent twice
        drained = asyncio.Event()
        background = [
            asyncio.create_task(self._flush_loop(drained), name="hookpost-flush"),
            asyncio.create_task(self._heartbeat_loop(drained), name="hookpost-heartbeat"),
            asyncio.create_task(self._lease_loop(stop), name="hookpost-leases"),
        ]
        logger.info("worker %s started, concurrency %d", self.worker_id, self.concurrency)
        try:
            await self._claim_loop(stop)
        finally:
            await self._drain(slots)
            drained.set()
            await asyncio.gather(*background[:2])  # the last results, then the sign-off
            background[2].cancel()
            await asyncio.gather(background[2], return_exceptions=True)
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
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
        async for retrying in database_retrying(
            within_s=self.settings.db_connect_timeout_s, retry_if=is_database_error
        ):
            with retrying:
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

    async def _listen(self, stop: asyncio.Event, listening: asyncio.Event) -> None:
        """Hold a connection that LISTENs for new deliveries, and make it again after any loss
        (a database restart, a failover, a dropped network): without it every delivery would
        wait for the poll. Deliveries notified while it was lost are found by the claim that
        follows, since it wakes the claim loop when it listens again."""
        assert self.settings.database_url
        lost_before = False
        while not stop.is_set():
            lost = asyncio.Event()
            try:
                connection = await asyncpg.connect(
                    plain_dsn(self.settings.database_url),
                    timeout=self.settings.db_connect_timeout_s,
                )
            except (*DATABASE_ERRORS, TimeoutError) as error:
                logger.warning("cannot listen for new deliveries (%s); trying again", error)
                await self._sleep(stop, None, 1.0)
                continue
            try:
                connection.add_termination_listener(lambda _, event=lost: event.set())
                await connection.add_listener(queue.NOTIFY_CHANNEL, self._on_notify)
                if lost_before:
                    logger.warning("listening for new deliveries again")
                listening.set()
                self._wake.set()
                while not (stop.is_set() or lost.is_set() or connection.is_closed()):
                    await self._sleep(stop, lost, LISTEN_CHECK_S)
            except DATABASE_ERRORS as error:
                logger.warning("listening for new deliveries failed: %s", error)
            finally:
                if not connection.is_closed():
                    with contextlib.suppress(*DATABASE_ERRORS, TimeoutError):
                        await asyncio.wait_for(connection.close(), timeout=2)
            if not stop.is_set():
                lost_before = True
                logger.warning("the connection listening for new deliveries was lost")

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
                    # again. Only an empty one asks when the next delivery falls due, a
                    # question that walks both due indexes.
                    due_in = await queue.seconds_to_next_due(connection) if not claimed else None
            except DATABASE_ERRORS as error:
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
        self._results.add_handed_back(delivery, datetime.now(UTC) + timedelta(seconds=delay_s))

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
            "endpoint %s: %s",
            public_id,
            attempt.UNREADABLE_SECRET,
            extra={"endpoint_id": public_id},
        )

    # delivering

    async def _deliver(
        self, sender: Sender, delivery: queue.Claimed, keys: list[bytes] | None
    ) -> SendResult | None:
        """Attempt ``delivery`` in its stages (``attempt``): sign, send, decide, and queue
        the verdict for the next flush; what its request gave, or None when nothing was
        sent."""
        self._in_flight.add(delivery.id)
        try:
            if not delivery.enabled:
                self._results.add_stopped(attempt.stop_undeliverable(delivery))
                return None
            started_at = datetime.now(UTC)
            headers: dict[str, str] = {}
            try:
                headers = attempt.sign(delivery, keys, int(time.time()))
                result = await attempt.send(sender, delivery, headers)
            except Exception as error:
                result = self._failed_internally(delivery, "sending", error, started_at)
            try:
                verdict = self._verdict(delivery, headers, result, started_at)
            except Exception as error:
                result = self._failed_internally(delivery, "deciding on", error, started_at)
                verdict = self._verdict(delivery, headers, result, started_at)
            self._results.add_attempt(delivery, verdict)
            metrics.ATTEMPT_SECONDS.observe(result.duration_ms / 1000)
            self.delivered += 1
            _log_attempt(delivery, verdict)
            return None if keys is None else result
        finally:
            self._in_flight.discard(delivery.id)
            if delivery.round_attempts:
                self._retries_held -= 1
            self._slot_freed.set()

    def _verdict(
        self,
        delivery: queue.Claimed,
        headers: dict[str, str],
        result: SendResult,
        started_at: datetime,
    ) -> attempt.Verdict:
        return attempt.decide_after(
            delivery,
            headers,
            result,
            schedule=self.schedule,
            started_at=started_at,
            now=datetime.now(UTC),
            worker_id=self.worker_id,
        )

    def _failed_internally(
        self, delivery: queue.Claimed, stage: str, error: Exception, started_at: datetime
    ) -> SendResult:
        delivery_id = ids.encode(ids.Prefix.DELIVERY, delivery.id)
        logger.exception("%s delivery %s failed; logged as an attempt", stage, delivery_id)
        elapsed_ms = int((datetime.now(UTC) - started_at).total_seconds() * 1000)
        return attempt.failed_internally(stage, error, elapsed_ms)

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
        batch, self._results = self._results, Results()
        batch.limits = self._changed_limits()
        batch.count_metrics()
        written = await self._write(batch)
        self._wake_for_retries(written)
        if lanes := queue.finished_lanes(written):
            assert self._pool is not None
            try:  # after the commit: queue.promote_lanes says why
                await queue.promote_lanes(self._pool, lanes)
            except DATABASE_ERRORS as error:  # the lease loop's sweep sends them on
                logger.warning("could not send on %d ordered lanes: %s", len(lanes), error)

    async def _write(self, batch: Results) -> list[queue.StateChange]:
        """Record ``batch`` in one transaction, retried through an outage for half a lease
        (then the leases expire and others send again); the state changes written.

        A batch the database refuses for what it holds (a value, not an outage) is written in
        halves, down to the one delivery whose row is refused; that one is written again with
        what can be stored of its attempt, so one receiver's answer never costs another
        endpoint its results."""
        assert self._pool is not None
        try:
            async for retrying in database_retrying(within_s=self.settings.lease_s / 2):
                with retrying:
                    async with self._pool.acquire() as connection, connection.transaction():
                        await connection.execute(FLUSH_SETTINGS)
                        await self._record(connection, batch)
            return batch.changes
        except Exception as error:
            if is_outage(error):
                logger.warning("could not record %d results: %s", len(batch), error)
                return []
            refusal = f"{type(error).__name__}: {error}"
        if len(batch) > 1:
            first, second = batch.halves()
            return [*await self._write(first), *await self._write(second)]
        if batch.stripped or batch.entries[0].attempt is None:
            logger.error("the database refused a result, dropped: %s", refusal)
            return []
        logger.warning("the database refused an attempt's row; kept without its response")
        return await self._write(batch.without_responses(refusal))

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

    async def _record(self, connection: asyncpg.Connection, batch: Results) -> None:
        """One flush: the results, the endpoint health they imply, and the ``after_flush``
        hook, in the caller's transaction."""
        recorded = await queue.record(
            connection,
            attempts=batch.attempts,
            changes=batch.changes,
            health=batch.health(),
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
        if self._after_flush is not None:
            await self._after_flush(connection, recorded, batch.exhausted)

    async def _heartbeat_loop(self, stop: asyncio.Event) -> None:
        """Say this worker is alive every ``HEARTBEAT_S``, and take back what workers whose
        heartbeat stopped held: a killed worker's deliveries go again within seconds, not
        after their lease. Sign off when stopping (the drain has released what was left)."""
        assert self._pool is not None
        dead_after_s = self.settings.worker_dead_after_s
        beating = False  # the last heartbeat was written
        try:
            while not stop.is_set():
                try:
                    async with self._pool.acquire() as connection:
                        await queue.heartbeat(connection, self.worker_id)
                        # After an outage every heartbeat is stale: judge others only once
                        # this worker has beaten twice in a row, and they have had a turn.
                        taken = (
                            await queue.take_back_from_dead(connection, dead_after_s)
                            if beating
                            else 0
                        )
                    beating = True
                    if taken:
                        logger.warning("took back %d deliveries from stopped workers", taken)
                        self._wake.set()
                except DATABASE_ERRORS as error:
                    beating = False
                    logger.warning("heartbeat failed: %s", error)
                await self._sleep(stop, None, min(HEARTBEAT_S, dead_after_s / 3))
        finally:
            with contextlib.suppress(*DATABASE_ERRORS):
                async with self._pool.acquire() as connection:
                    await queue.sign_off(connection, self.worker_id)

    async def _lease_loop(self, stop: asyncio.Event) -> None:
        """Take back deliveries whose lease expired, and sweep up ordered lanes left waiting
        (``queue.PROMOTE_STRANDED``), now and every half lease; and drop the gates of
        endpoints idle at their ceiling, so that they do not pile up."""
        assert self._pool is not None
        interval = min(self.settings.lease_s / 2, 30.0)
        while not stop.is_set():
            self._gates.forget_idle()
            try:
                async with self._pool.acquire() as connection:
                    recovered = await queue.recover_expired(connection)
                    promoted = await queue.promote_stranded(connection)
                if recovered:
                    logger.warning("took back %d deliveries with an expired lease", recovered)
                if promoted:
                    logger.info("sent on %d ordered lanes whose first was left waiting", promoted)
                if recovered or promoted:
                    self._wake.set()
            except DATABASE_ERRORS as error:
                logger.warning("lease recovery failed: %s", error)
            await self._sleep(stop, None, interval)
