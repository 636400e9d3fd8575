"""The retry policy: what happens to a delivery after an attempt. Pure functions of the
outcome, the delivery's history and the schedule (the settings', or an endpoint's overrides of
them), so the schedule is data that tests can read.

Delays grow exponentially (``base * factor ** (n - 1)``), capped, and shortened by a random
share (jitter) so that many deliveries failing together do not retry together. A receiver's
``Retry-After`` on 429 and 503 replaces the computed delay, kept between ``base`` and ``cap``.
"""

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

from hookpost.db.models import DeliveryStatus
from hookpost.settings import Settings

# ASCII digits only: str.isdigit() also takes "²" and "٣", which float() then refuses.
_DELTA_SECONDS = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True)
class RetrySchedule:
    base_s: float
    factor: float
    cap_s: float
    jitter: float
    max_attempts: int
    max_age_s: float

    def delay_s(self, attempt_number: int, rng: random.Random | None = None) -> float:
        """The delay after failed attempt ``attempt_number`` (1 for the first attempt)."""
        exponent = min(attempt_number - 1, 200)  # beyond this, the cap applies anyway
        delay = min(self.base_s * self.factor**exponent, self.cap_s)
        return delay * (1 - self.jitter * (rng or random).random())


class Outcome(StrEnum):
    """How one attempt ended, from the receiver's point of view."""

    SUCCESS = "success"  # 2xx
    GONE = "gone"  # 410: the receiver asks to stop for good
    FAILURE = "failure"  # anything else


@dataclass(slots=True)  # not frozen: made per delivery (queue.Claimed says why)
class Decision:
    """The delivery's state after an attempt."""

    status: DeliveryStatus
    next_attempt_at: datetime | None
    reason: str | None


def classify(status_code: int | None) -> Outcome:
    if status_code is not None and 200 <= status_code < 300:
        return Outcome.SUCCESS
    if status_code == 410:
        return Outcome.GONE
    return Outcome.FAILURE


def retry_after_s(status_code: int | None, header: str | None, now: datetime) -> float | None:
    """Seconds asked for by ``Retry-After`` on a 429 or 503 (delta-seconds or an HTTP date, RFC
    9110); None for anything else, which the computed delay then serves."""
    if status_code not in (429, 503) or not header:
        return None
    value = header.strip(" \t")
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def decide(
    schedule: RetrySchedule,
    *,
    status_code: int | None,
    retry_after: str | None,
    attempt_number: int,
    created_at: datetime,
    now: datetime,
    rng: random.Random | None = None,
) -> Decision:
    """The delivery's next state after attempt ``attempt_number`` of the current retry round
    (begun at ``created_at``: the delivery's creation, or its last resend or recovery)
    answered ``status_code`` (None when no response came)."""
    outcome = classify(status_code)
    if outcome is Outcome.SUCCESS:
        return Decision(DeliveryStatus.SUCCEEDED, None, None)
    if outcome is Outcome.GONE:
        return Decision(DeliveryStatus.FAILED, None, "the endpoint answered 410 Gone")
    if attempt_number >= schedule.max_attempts:
        return Decision(DeliveryStatus.FAILED, None, f"gave up after {attempt_number} attempts")
    asked = retry_after_s(status_code, retry_after, now)
    if asked is not None:
        delay = min(max(asked, schedule.base_s), schedule.cap_s)
    else:
        delay = schedule.delay_s(attempt_number, rng)
    next_at = now + timedelta(seconds=delay)
    if next_at > created_at + timedelta(seconds=schedule.max_age_s):
        return Decision(
            DeliveryStatus.FAILED,
            None,
            f"gave up after {attempt_number} attempts: the next would pass the maximum age "
            f"of {schedule.max_age_s:g} s",
        )
    return Decision(DeliveryStatus.PENDING, next_at, None)


# An endpoint's policy overrides the settings of the same names (less HOOKPOST_), and
# ``timeout_s`` HOOKPOST_DELIVERY_TIMEOUT_S.
TIMEOUT_OVERRIDE = "timeout_s"


def with_overrides(schedule: RetrySchedule, overrides: Mapping[str, float]) -> RetrySchedule:
    """``schedule`` with an endpoint's overrides of it (other keys are ignored)."""
    return RetrySchedule(
        base_s=overrides.get("retry_base_s", schedule.base_s),
        factor=overrides.get("retry_factor", schedule.factor),
        cap_s=overrides.get("retry_cap_s", schedule.cap_s),
        jitter=overrides.get("retry_jitter", schedule.jitter),
        max_attempts=int(overrides.get("retry_max_attempts", schedule.max_attempts)),
        max_age_s=overrides.get("retry_max_age_s", schedule.max_age_s),
    )


def schedule_from(settings: Settings) -> RetrySchedule:
    return RetrySchedule(
        base_s=settings.retry_base_s,
        factor=settings.retry_factor,
        cap_s=settings.retry_cap_s,
        jitter=settings.retry_jitter,
        max_attempts=settings.retry_max_attempts,
        max_age_s=settings.retry_max_age_s,
    )
