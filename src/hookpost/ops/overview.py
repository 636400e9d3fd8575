"""The operator's overview: the attempt rate and success rate of this minute and the last, the
queue's figures, the endpoints in trouble (failing, probed by their breaker, disabled) with
why, and the attempts of each minute of the last hour. Every attempt figure comes from the
counts the workers keep per minute (``attempt_minutes``, a few rows a minute), never from the
attempt log: counting a minute of a day's partition is a scan of the partition when the
planner has no statistics."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost.db.engine import driver_connection
from hookpost.db.models import AttemptMinute, Endpoint
from hookpost.ops.metrics import QueueFigures, queue_figures

TROUBLE_SHOWN = 50


@dataclass(frozen=True)
class Trouble:
    endpoint: Endpoint
    state: str  # "failing", "probing" (breaker open) or "disabled"
    reason: str


@dataclass(frozen=True)
class Minute:
    at: datetime
    succeeded: int
    failed: int


@dataclass(frozen=True)
class Overview:
    attempts_per_s: float  # over this minute so far and the one before
    success_rate: float | None  # of the same attempts; None without any
    queue: QueueFigures
    trouble: list[Trouble]
    last_hour: list[Minute]  # oldest first, a minute without attempts included

    @property
    def busiest_minute(self) -> int:
        return max((minute.succeeded + minute.failed for minute in self.last_hour), default=0)


async def overview(session: AsyncSession, *, breaker_threshold: int) -> Overview:
    now = datetime.now(UTC)
    last_hour = await _last_hour(session, now)
    recent = last_hour[-2:]  # the minute before and this one, up to now
    total = sum(minute.succeeded + minute.failed for minute in recent)
    succeeded = sum(minute.succeeded for minute in recent)
    elapsed_s = (now - recent[0].at).total_seconds()
    endpoints = await session.scalars(
        select(Endpoint)
        .where(Endpoint.deleted_at.is_(None))
        .where(or_(Endpoint.consecutive_failures > 0, Endpoint.enabled.is_(False)))
        .order_by(Endpoint.consecutive_failures.desc())
        .limit(TROUBLE_SHOWN)
    )
    return Overview(
        attempts_per_s=total / elapsed_s,
        success_rate=succeeded / total if total else None,
        queue=await queue_figures(await driver_connection(session)),
        trouble=[_trouble(endpoint, breaker_threshold) for endpoint in endpoints],
        last_hour=last_hour,
    )


async def _last_hour(session: AsyncSession, now: datetime) -> list[Minute]:
    """The sixty minutes up to ``now``, this one last (counted so far)."""
    first = now.replace(second=0, microsecond=0) - timedelta(minutes=59)
    rows = await session.execute(
        select(
            AttemptMinute.minute,
            func.sum(AttemptMinute.succeeded),
            func.sum(AttemptMinute.failed),
        )
        .where(AttemptMinute.minute >= first)
        .group_by(AttemptMinute.minute)
    )
    counted = {minute: (int(ok), int(bad)) for minute, ok, bad in rows}
    return [
        Minute(at, *counted.get(at, (0, 0)))
        for at in (first + timedelta(minutes=n) for n in range(60))
    ]


def _trouble(endpoint: Endpoint, breaker_threshold: int) -> Trouble:
    if not endpoint.enabled:
        return Trouble(endpoint, "disabled", endpoint.disabled_reason or "no reason given")
    streak = f"{endpoint.consecutive_failures} failed attempts in a row"
    if endpoint.consecutive_failures >= breaker_threshold:
        return Trouble(endpoint, "probing", f"{streak}: one probe at a time")
    return Trouble(endpoint, "failing", streak)
