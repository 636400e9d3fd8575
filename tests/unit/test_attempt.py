"""An attempt's stages alone: signing, the refusal to send unsigned, the verdict and what the
log keeps, and the results a flush writes."""

import time
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from hookpost import ids
from hookpost.db.models import DeliveryStatus
from hookpost.delivery import attempt, queue
from hookpost.delivery.policy import Outcome, RetrySchedule
from hookpost.delivery.results import Results
from hookpost.delivery.sender import ErrorKind, SendResult
from hookpost.delivery.signing import generate_secret, secret_bytes
from hookpost.ops.events import operational_events

SECRET = generate_secret()
SCHEDULE = RetrySchedule(
    base_s=1.0, factor=2.0, cap_s=60.0, jitter=0.0, max_attempts=3, max_age_s=3600
)
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _delivery(**fields: object) -> queue.Claimed:
    values: dict[str, object] = {
        "id": ids.new_id(),
        "event_id": ids.new_id(),
        "endpoint_id": uuid.UUID(int=7),
        "tenant_id": uuid.UUID(int=8),
        "event_type": "invoice.paid",
        "attempt_count": 0,
        "trigger": "scheduled",
        "round_attempts": 0,
        "round_started_at": NOW - timedelta(seconds=5),
        "body": b'{"type":"invoice.paid","data":{"n":1}}',
        "url": "http://127.0.0.1:9/hook",
        "headers": {"authorization": "Bearer secret-token"},
        "enabled": True,
        "deleted": False,
        "disabled_reason": None,
        "secrets": [],
        "max_in_flight": 10,
        "policy": None,
    } | fields
    return queue.Claimed(**values)  # type: ignore[arg-type]


def _verdict(delivery: queue.Claimed, result: SendResult) -> attempt.Verdict:
    headers = attempt.sign(delivery, [secret_bytes(SECRET)], int(time.time()))
    return attempt.decide_after(
        delivery, headers, result, schedule=SCHEDULE, started_at=NOW, now=NOW, worker_id="w"
    )


def test_the_signature_verifies_with_standard_webhooks() -> None:
    delivery = _delivery()
    headers = attempt.sign(delivery, [secret_bytes(SECRET)], int(time.time()))
    assert headers["webhook-id"] == ids.encode(ids.Prefix.EVENT, delivery.event_id)
    Webhook(SECRET).verify(delivery.body, headers)


async def test_nothing_is_sent_unsigned() -> None:
    class Refuses:
        async def send(
            self, url: str, headers: dict[str, str], body: bytes, *, timeout_s: float | None = None
        ) -> SendResult:
            raise AssertionError("an unsigned request was sent")

        async def close(self) -> None:
            return None

    delivery = _delivery()
    headers = attempt.sign(delivery, None, int(time.time()))
    assert "webhook-signature" not in headers
    result = await attempt.send(Refuses(), delivery, headers)
    assert result.error_kind is ErrorKind.SECRET_UNREADABLE


def test_a_failure_is_retried_and_the_log_hides_the_endpoints_headers() -> None:
    delivery = _delivery()
    verdict = _verdict(delivery, SendResult(duration_ms=12, status_code=500))
    assert verdict.outcome is Outcome.FAILURE
    assert verdict.change.status == DeliveryStatus.PENDING
    assert verdict.change.next_attempt_at == NOW + timedelta(seconds=1)
    assert verdict.change.attempt_count == 1
    logged = verdict.attempt.request_headers
    assert logged["authorization"] == attempt.REDACTED
    assert logged["user-agent"] == attempt.USER_AGENT
    assert logged["webhook-signature"].startswith("v1,")


def test_the_last_attempt_fails_the_delivery_for_good() -> None:
    delivery = _delivery(attempt_count=2, round_attempts=2)
    verdict = _verdict(delivery, SendResult(duration_ms=3, error_kind=ErrorKind.TIMEOUT))
    assert verdict.change.status == DeliveryStatus.FAILED
    assert verdict.change.reason == "gave up after 3 attempts"
    results = Results()
    results.add_attempt(delivery, verdict)
    assert [e.event_id for e in results.exhausted] == [delivery.event_id]
    assert results.finished_counts == {DeliveryStatus.FAILED: 1}
    assert results.attempt_counts == {(Outcome.FAILURE, ErrorKind.TIMEOUT): 1}


def test_a_delivery_out_of_attempts_holds_its_lane_only_when_the_endpoint_says_so() -> None:
    last = {"attempt_count": 2, "round_attempts": 2}
    failure = SendResult(duration_ms=3, status_code=500)
    held = _verdict(_delivery(**last, lane="c1", hold=True), failure).change
    assert held.holds_lane
    assert held.lane == "c1"
    assert held.reason == ("gave up after 3 attempts; it holds its ordered lane until it is resent")
    events = operational_events(
        uuid.UUID(int=1),
        disabled=[],
        failing=[],
        exhausted=[(held, uuid.UUID(int=2), uuid.UUID(int=3), "invoice.paid")],
    )
    assert events[0].payload["holds_lane"] is True
    for fields in ({"lane": "c1", "hold": False}, {"lane": None, "hold": True}):
        change = _verdict(_delivery(**last, **fields), failure).change
        assert not change.holds_lane
        assert change.reason == "gave up after 3 attempts"
    retried = _verdict(_delivery(lane="c1", hold=True), failure).change
    assert (retried.status, retried.holds_lane) == (DeliveryStatus.PENDING, False)


def test_health_counts_the_failures_after_the_last_success() -> None:
    a, b = _delivery(endpoint_id=uuid.UUID(int=1)), _delivery(endpoint_id=uuid.UUID(int=2))
    results = Results()
    for delivery, status in ((a, 500), (a, 200), (a, 500), (a, 503), (b, 500), (b, 500)):
        results.add_attempt(delivery, _verdict(delivery, SendResult(1, status_code=status)))
    health = {h.endpoint_id: (h.succeeded, h.failures_after) for h in results.health()}
    assert health == {a.endpoint_id: (True, 2), b.endpoint_id: (False, 2)}


def test_a_410_marks_the_endpoint_gone() -> None:
    delivery = _delivery()
    results = Results()
    results.add_attempt(delivery, _verdict(delivery, SendResult(1, status_code=410)))
    assert results.gone == {delivery.endpoint_id}
    assert results.exhausted == []  # the endpoint asked to stop: not an exhausted delivery


def test_deliveries_of_deleted_and_disabled_endpoints_stop_without_an_attempt() -> None:
    deleted = attempt.stop_undeliverable(_delivery(enabled=False, deleted=True))
    assert (deleted.status, deleted.resume_on_enable) == (DeliveryStatus.CANCELLED, False)
    disabled = attempt.stop_undeliverable(_delivery(enabled=False, disabled_reason="410"))
    assert (disabled.status, disabled.resume_on_enable) == (DeliveryStatus.FAILED, True)
    assert disabled.reason == "the endpoint is disabled: 410"
    assert disabled.last_attempt_at is None


@given(
    name=st.sampled_from(
        [
            *sorted(attempt.RESERVED_HEADERS | attempt.TRANSPORT_HEADERS),
            "webhook-signature",
            "webhook-id",
            "webhook-timestamp",
        ]
    ),
    data=st.data(),
)
def test_a_reserved_header_is_refused_in_every_spelling(name: str, data: st.DataObject) -> None:
    """Any case, and "_" for "-" (what CGI, PHP and WSGI servers read as the same header)."""
    spelled = "".join(
        data.draw(st.sampled_from(["-", "_"]))
        if char == "-"
        else data.draw(st.sampled_from([char.lower(), char.upper()]))
        for char in name
    )
    assert attempt.custom_header_refusal(spelled) is not None, spelled


def test_ordinary_custom_headers_are_allowed() -> None:
    for name in ("x-customer", "Authorization", "X_API_KEY", "x-webhook-source"):
        assert attempt.custom_header_refusal(name) is None, name
