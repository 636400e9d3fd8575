"""The retry policy: the schedule, Retry-After, giving up, and 410."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookpost.db.models import DeliveryStatus
from hookpost.delivery.policy import (
    RetrySchedule,
    classify,
    decide,
    retry_after_s,
    schedule_from,
    with_overrides,
)
from hookpost.settings import Settings

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SCHEDULE = RetrySchedule(
    base_s=10, factor=3, cap_s=6 * 3600, jitter=0.25, max_attempts=20, max_age_s=3 * 86400
)


def _decide(status: int | None, attempt: int, *, age_s: float = 0, retry_after: str | None = None):  # type: ignore[no-untyped-def]
    return decide(
        SCHEDULE,
        status_code=status,
        retry_after=retry_after,
        attempt_number=attempt,
        created_at=NOW - timedelta(seconds=age_s),
        now=NOW,
        rng=random.Random(7),
    )


@given(st.integers(1, 100), st.floats(0, 1))
def test_delays_grow_are_capped_and_jittered_within_bounds(attempt: int, draw: float) -> None:
    class Fixed(random.Random):
        def random(self) -> float:
            return draw

    delay = SCHEDULE.delay_s(attempt, Fixed())
    full = min(10 * 3 ** (attempt - 1), 6 * 3600)
    assert full * 0.75 <= delay <= full


def test_delays_without_jitter() -> None:
    exact = RetrySchedule(1, 2, 10, 0, 10, 1000)
    assert [exact.delay_s(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_the_default_schedule_spans_about_three_days() -> None:
    schedule = schedule_from(Settings())
    no_jitter = RetrySchedule(**{**schedule.__dict__, "jitter": 0.0})
    total = sum(no_jitter.delay_s(n) for n in range(1, schedule.max_attempts))
    assert 2.5 * 86400 < total < 3.5 * 86400
    assert schedule.max_age_s == 3 * 86400


def test_success_and_outcomes() -> None:
    assert _decide(200, 1).status is DeliveryStatus.SUCCEEDED
    assert _decide(204, 5).status is DeliveryStatus.SUCCEEDED
    for status in (None, 199, 301, 400, 404, 429, 500, 503):
        assert _decide(status, 1).status is DeliveryStatus.PENDING, status
    gone = _decide(410, 1)
    assert gone.status is DeliveryStatus.FAILED
    assert "410" in (gone.reason or "")
    assert classify(410).value == "gone"


def test_retry_is_scheduled_after_the_delay() -> None:
    decision = _decide(500, 3)
    assert decision.next_attempt_at is not None
    delay = (decision.next_attempt_at - NOW).total_seconds()
    assert 90 * 0.75 <= delay <= 90


def test_gives_up_after_max_attempts_and_max_age() -> None:
    assert _decide(500, 19).status is DeliveryStatus.PENDING
    exhausted = _decide(500, 20)
    assert exhausted.status is DeliveryStatus.FAILED
    assert exhausted.reason == "gave up after 20 attempts"
    too_old = _decide(500, 2, age_s=3 * 86400 - 5)
    assert too_old.status is DeliveryStatus.FAILED
    assert "maximum age" in (too_old.reason or "")


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [
        (429, "120", 120.0),
        (503, "0", 0.0),
        (429, "Sun, 22 Nov 2026 12:05:00 GMT", 300.0),
        (429, "Sun, 22 Nov 2026 11:00:00 GMT", 0.0),
        (429, "soon", None),
        (500, "120", None),
        (429, None, None),
    ],
)
def test_retry_after_parsing(status: int, header: str | None, expected: float | None) -> None:
    assert retry_after_s(status, header, NOW) == expected


def test_retry_after_is_kept_within_bounds() -> None:
    asked = _decide(429, 1, retry_after="120")
    assert asked.next_attempt_at == NOW + timedelta(seconds=120)
    too_soon = _decide(503, 1, retry_after="0")
    assert too_soon.next_attempt_at == NOW + timedelta(seconds=10)  # not below base
    too_late = _decide(429, 1, retry_after="999999")
    assert too_late.next_attempt_at == NOW + timedelta(hours=6)  # not above the cap


def test_an_endpoints_overrides_replace_only_what_they_name() -> None:
    changed = with_overrides(SCHEDULE, {"retry_max_attempts": 3.0, "timeout_s": 5, "x": 1})
    assert changed == RetrySchedule(
        base_s=10, factor=3, cap_s=6 * 3600, jitter=0.25, max_attempts=3, max_age_s=3 * 86400
    )
    assert isinstance(changed.max_attempts, int)
    assert with_overrides(SCHEDULE, {}) == SCHEDULE
