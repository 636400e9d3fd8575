"""The operator's overview: the attempt rate and success rate of the last minute, the queue's
figures, the endpoints in trouble (failing, probed by their breaker, disabled) with why, and
the attempts of each minute of the last hour (the workers count them per minute)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost import ids
from hookpost.db.engine import driver_connection
from hookpost.db.models import Attempt, AttemptMinute, Endpoint
from hookpost.ops.metrics import QueueFigures, queue_figures

WINDOW_S = 60
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
    attempts_per_s: float
    success_rate: float | None  # of the last minute's attempts; None without any
    queue: QueueFigures
    trouble: list[Trouble]
    last_hour: list[Minute]  # oldest first, a minute without attempts included

    @property
    def busiest_minute(self) -> int:
        return max((minute.succeeded + minute.failed for minute in self.last_hour), default=0)


async def overview(session: AsyncSession, *, breaker_threshold: int) -> Overview:
    since = ids.floor(datetime.now(UTC) - timedelta(seconds=WINDOW_S))
    total, succeeded = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(Attempt.error_kind.is_(None)),
            ).where(Attempt.id >= since)
        )
    ).one()
    endpoints = await session.scalars(
        select(Endpoint)
        .where(Endpoint.deleted_at.is_(None))
        .where(or_(Endpoint.consecutive_failures > 0, Endpoint.enabled.is_(False)))
        .order_by(Endpoint.consecutive_failures.desc())
        .limit(TROUBLE_SHOWN)
    )
    return Overview(
        attempts_per_s=total / WINDOW_S,
        success_rate=succeeded / total if total else None,
        queue=await queue_figures(await driver_connection(session)),
        trouble=[_trouble(endpoint, breaker_threshold) for endpoint in endpoints],
        last_hour=await _last_hour(session),
    )


async def _last_hour(session: AsyncSession) -> list[Minute]:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    first = now - timedelta(minutes=59)
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
