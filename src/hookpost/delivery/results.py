"""The results a worker gathers between two flushes: attempt rows, state changes, what they
say of each endpoint's health, the deliveries that failed for good, the metrics' increments
and the concurrency limits that changed. ``queue.record`` writes them in one transaction."""

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from hookpost.db.models import DeliveryStatus
from hookpost.delivery import metrics, queue
from hookpost.delivery.attempt import Verdict
from hookpost.delivery.policy import Outcome


class Exhausted(NamedTuple):
    """A delivery that failed for good, for the operational event that says so."""

    change: queue.StateChange
    event_id: uuid.UUID
    tenant_id: uuid.UUID
    event_type: str


@dataclass
class Results:
    """Results waiting for the next flush."""

    attempts: list[queue.AttemptRow] = field(default_factory=list)
    changes: list[queue.StateChange] = field(default_factory=list)
    # per endpoint, the outcomes in the order they came: True for a success
    outcomes: dict[uuid.UUID, list[bool]] = field(default_factory=dict)
    gone: set[uuid.UUID] = field(default_factory=set)
    exhausted: list[Exhausted] = field(default_factory=list)
    # endpoint -> its gate's concurrency limit, where it changed since the last flush
    limits: dict[uuid.UUID, int] = field(default_factory=dict)
    # the counters' increments, added to the metrics once per flush, not once per attempt
    attempt_counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    finished_counts: Counter[str] = field(default_factory=Counter)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def add_attempt(self, delivery: queue.Claimed, verdict: Verdict) -> None:
        self.attempts.append(verdict.attempt)
        self.changes.append(verdict.change)
        self.attempt_counts[verdict.outcome, verdict.attempt.error_kind or ""] += 1
        status = verdict.decision.status
        if status is not DeliveryStatus.PENDING:
            self.finished_counts[status] += 1
        if status is DeliveryStatus.FAILED and verdict.outcome is Outcome.FAILURE:
            self.exhausted.append(
                Exhausted(
                    verdict.change, delivery.event_id, delivery.tenant_id, delivery.event_type
                )
            )
        succeeded = verdict.outcome is Outcome.SUCCESS
        self.outcomes.setdefault(delivery.endpoint_id, []).append(succeeded)
        if verdict.outcome is Outcome.GONE:
            self.gone.add(delivery.endpoint_id)

    def add_stopped(self, change: queue.StateChange) -> None:
        """A delivery ended without an attempt (``attempt.stop_undeliverable``)."""
        self.changes.append(change)
        self.finished_counts[change.status] += 1

    def add_handed_back(self, delivery: queue.Claimed, due_at: datetime) -> None:
        self.changes.append(queue.StateChange.handed_back(delivery, due_at))

    def health(self) -> list[queue.EndpointHealth]:
        """Per endpoint: whether an attempt succeeded, and the failures after the last
        success (all of them, without one)."""
        found = []
        for endpoint_id, results in self.outcomes.items():
            last_success = max((i for i, ok in enumerate(results) if ok), default=None)
            after = results if last_success is None else results[last_success + 1 :]
            found.append(queue.EndpointHealth(endpoint_id, last_success is not None, len(after)))
        return found

    def count_metrics(self) -> None:
        for (outcome, error_kind), count in self.attempt_counts.items():
            metrics.ATTEMPTS.labels(outcome, error_kind).inc(count)
        for status, count in self.finished_counts.items():
            metrics.DELIVERIES_FINISHED.labels(status).inc(count)
