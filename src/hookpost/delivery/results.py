"""The results a worker gathers between two flushes: attempt rows, state changes, what they
say of each endpoint's health, the deliveries that failed for good, the metrics' increments
and the concurrency limits that changed. ``queue.record`` writes them in one transaction."""

import dataclasses
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from hookpost.db.models import DeliveryStatus
from hookpost.delivery import metrics, queue, storable
from hookpost.delivery.attempt import Verdict
from hookpost.delivery.policy import Outcome


class Exhausted(NamedTuple):
    """A delivery that failed for good, for the operational event that says so."""

    change: queue.StateChange
    event_id: uuid.UUID
    tenant_id: uuid.UUID
    event_type: str


@dataclass(slots=True)
class Entry:
    """One delivery's result: its new state, and the attempt that led there (None when it
    ended or went back unsent)."""

    change: queue.StateChange
    attempt: queue.AttemptRow | None = None
    outcome: Outcome | None = None
    exhausted: Exhausted | None = None


@dataclass
class Results:
    """Results waiting for the next flush, in the order they came."""

    entries: list[Entry] = field(default_factory=list)
    # endpoint -> its gate's concurrency limit, where it changed since the last flush
    limits: dict[uuid.UUID, int] = field(default_factory=dict)
    # the counters' increments, added to the metrics once per flush, not once per attempt
    attempt_counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    finished_counts: Counter[str] = field(default_factory=Counter)
    stripped: bool = False  # made by ``without_responses``

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def attempts(self) -> list[queue.AttemptRow]:
        return [entry.attempt for entry in self.entries if entry.attempt is not None]

    @property
    def changes(self) -> list[queue.StateChange]:
        return [entry.change for entry in self.entries]

    @property
    def gone(self) -> set[uuid.UUID]:
        """The endpoints that answered 410 Gone."""
        return {e.change.endpoint_id for e in self.entries if e.outcome is Outcome.GONE}

    @property
    def exhausted(self) -> list[Exhausted]:
        return [entry.exhausted for entry in self.entries if entry.exhausted is not None]

    def add_attempt(self, delivery: queue.Claimed, verdict: Verdict) -> None:
        self.attempt_counts[verdict.outcome, verdict.attempt.error_kind or ""] += 1
        status = verdict.decision.status
        if status is not DeliveryStatus.PENDING:
            self.finished_counts[status] += 1
        exhausted = None
        if status is DeliveryStatus.FAILED and verdict.outcome is Outcome.FAILURE:
            exhausted = Exhausted(
                verdict.change, delivery.event_id, delivery.tenant_id, delivery.event_type
            )
        self.entries.append(Entry(verdict.change, verdict.attempt, verdict.outcome, exhausted))

    def add_stopped(self, change: queue.StateChange) -> None:
        """A delivery ended without an attempt (``attempt.stop_undeliverable``)."""
        self.entries.append(Entry(change))
        self.finished_counts[change.status] += 1

    def add_handed_back(self, delivery: queue.Claimed, due_at: datetime) -> None:
        self.entries.append(Entry(queue.StateChange.handed_back(delivery, due_at)))

    def halves(self) -> tuple["Results", "Results"]:
        """The earlier and the later half of the entries, to be written in that order (the
        limits go with the first); the counters stay with this batch."""
        middle = len(self.entries) // 2
        return (
            Results(self.entries[:middle], self.limits),
            Results(self.entries[middle:]),
        )

    def without_responses(self, why: str) -> "Results":
        """The same results with every attempt's response left out and ``why`` as its error
        message: what can still be stored of an attempt whose row the database refused."""
        entries = []
        for entry in self.entries:
            row = entry.attempt
            if row is not None:
                row = dataclasses.replace(
                    row,
                    request_headers={},
                    response_headers=None,
                    response_body=None,
                    error_message=storable.message(
                        f"{row.error_message or 'answered'}; the response was not kept: {why}"
                    ),
                )
            change = dataclasses.replace(
                entry.change, reason=storable.message(entry.change.reason or "") or None
            )
            entries.append(Entry(change, row, entry.outcome, entry.exhausted))
        return Results(entries, self.limits, stripped=True)

    def health(self) -> list[queue.EndpointHealth]:
        """Per endpoint: whether an attempt succeeded, and the failures after the last
        success (all of them, without one)."""
        found = []
        outcomes: dict[uuid.UUID, list[bool]] = {}
        for entry in self.entries:
            if entry.outcome is not None:
                succeeded = entry.outcome is Outcome.SUCCESS
                outcomes.setdefault(entry.change.endpoint_id, []).append(succeeded)
        for endpoint_id, results in outcomes.items():
            last_success = max((i for i, ok in enumerate(results) if ok), default=None)
            after = results if last_success is None else results[last_success + 1 :]
            found.append(queue.EndpointHealth(endpoint_id, last_success is not None, len(after)))
        return found

    def count_metrics(self) -> None:
        for (outcome, error_kind), count in self.attempt_counts.items():
            metrics.ATTEMPTS.labels(outcome, error_kind).inc(count)
        for status, count in self.finished_counts.items():
            metrics.DELIVERIES_FINISHED.labels(status).inc(count)
