"""One attempt of a leased delivery, in stages: ``sign`` makes hookpost's headers, ``send``
POSTs (nothing goes out unsigned), ``decide`` says what follows and what the log keeps. All
but ``send`` are pure functions of their arguments, so each is tested alone."""

from dataclasses import dataclass
from datetime import datetime

from hookpost import __version__, ids
from hookpost.db.models import DeliveryStatus
from hookpost.delivery import queue, storable
from hookpost.delivery.policy import (
    TIMEOUT_OVERRIDE,
    Decision,
    Outcome,
    RetrySchedule,
    classify,
    decide,
    with_overrides,
)
from hookpost.delivery.sender import ErrorKind, Sender, SendResult
from hookpost.delivery.signing import sign as signature

USER_AGENT = f"hookpost/{__version__}"
REDACTED = "[redacted]"
UNREADABLE_SECRET = (
    "the endpoint's signing secret cannot be decrypted with the keys of HOOKPOST_SECRET_KEY "
    "(was the key it was encrypted with removed?); nothing was sent"
)


RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "user-agent", "transfer-encoding"}
)
# Headers that change how the request travels, not what it says: each would break every
# attempt (``Expect: 100-continue`` waits for an answer no receiver sends; a content-encoding
# makes receivers decode a body that is not encoded) or is the connection's own business.
TRANSPORT_HEADERS = frozenset(
    {
        "expect",
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "te",
        "trailer",
        "upgrade",
        "content-encoding",
    }
)


# The names an endpoint's signature headers go by: Standard Webhooks' (``webhook-id``,
# ``webhook-timestamp``, ``webhook-signature``), Svix's (``svix-*``), or both.
SIGNATURE_SCHEMES = {"webhook": ("webhook",), "svix": ("svix",), "both": ("webhook", "svix")}


def custom_header_refusal(name: str) -> str | None:
    """Why an endpoint may not set the header ``name``, or None: hookpost's own headers, in
    any spelling a receiver reads as them (CGI, PHP and WSGI servers map "_" onto "-"), and
    the headers that govern the connection."""
    lowered = name.lower().replace("_", "-")
    if lowered in RESERVED_HEADERS or lowered.startswith(("webhook-", "svix-")):
        return f"the header {name!r} is set by hookpost and cannot be overridden"
    if lowered in TRANSPORT_HEADERS:
        return f"the header {name!r} governs the connection and cannot be set"
    return None


def sign(delivery: queue.Claimed, keys: list[bytes] | None, timestamp: int) -> dict[str, str]:
    """hookpost's headers for an attempt at ``timestamp`` (Unix seconds): the content type,
    the Standard Webhooks id and timestamp, and, when the keys could be read, the signature
    of every live secret, under the names the endpoint's ``signature_headers`` says."""
    msg_id = ids.encode(ids.Prefix.EVENT, delivery.event_id)
    signed = {"id": msg_id, "timestamp": str(timestamp)}
    if keys is not None:
        signed["signature"] = signature(keys, msg_id, timestamp, delivery.body)
    headers = {"content-type": "application/json"}
    for scheme in SIGNATURE_SCHEMES[delivery.signature_headers]:
        headers |= {f"{scheme}-{name}": value for name, value in signed.items()}
    return headers


async def send(sender: Sender, delivery: queue.Claimed, headers: dict[str, str]) -> SendResult:
    """POST the delivery with the endpoint's headers and hookpost's, within the endpoint's
    timeout when its policy sets one; an attempt whose headers carry no signature fails
    without sending."""
    if not any(name.endswith("-signature") for name in headers):
        return SendResult(
            duration_ms=0,
            error_kind=ErrorKind.SECRET_UNREADABLE,
            error_message=UNREADABLE_SECRET,
        )
    timeout_s = None if delivery.policy is None else delivery.policy.get(TIMEOUT_OVERRIDE)
    custom = delivery.headers
    if any(custom_header_refusal(name) for name in custom):  # stored before the rule existed
        custom = {k: v for k, v in custom.items() if custom_header_refusal(k) is None}
    return await sender.send(delivery.url, custom | headers, delivery.body, timeout_s=timeout_s)


def failed_internally(stage: str, error: Exception, duration_ms: int) -> SendResult:
    """The result of an attempt on which hookpost itself failed at ``stage`` (a bug): logged as
    an attempt of kind ``internal_error`` and retried by the policy, never resent silently."""
    return SendResult(
        duration_ms=duration_ms,
        error_kind=ErrorKind.INTERNAL,
        error_message=storable.message(
            f"hookpost failed while {stage} this attempt: {type(error).__name__}: {error}"
        ),
    )


@dataclass(slots=True)  # not frozen: made per delivery (queue.Claimed says why)
class Verdict:
    """What an attempt leaves behind: the log row, the delivery's new state, and how the
    attempt ended."""

    attempt: queue.AttemptRow
    change: queue.StateChange
    outcome: Outcome
    decision: Decision


def decide_after(
    delivery: queue.Claimed,
    headers: dict[str, str],
    result: SendResult,
    *,
    schedule: RetrySchedule,
    started_at: datetime,
    now: datetime,
    worker_id: str,
) -> Verdict:
    """The verdict on an attempt that started at ``started_at`` and gave ``result``: the
    retry policy's decision (on ``schedule``, with the endpoint's overrides of it), and the
    attempt as the log keeps it (the endpoint's own headers redacted, since they may carry
    credentials)."""
    attempt_number = delivery.attempt_count + 1
    if delivery.policy is not None:
        schedule = with_overrides(schedule, delivery.policy)
    decision = decide(
        schedule,
        status_code=result.status_code,
        retry_after=(result.headers or {}).get("retry-after"),
        attempt_number=delivery.round_attempts + 1,
        created_at=delivery.round_started_at,
        now=now,
    )
    attempt = queue.AttemptRow(
        id=ids.new_id(),
        delivery_id=delivery.id,
        endpoint_id=delivery.endpoint_id,
        tenant_id=delivery.tenant_id,
        attempt_number=attempt_number,
        trigger=delivery.trigger,
        started_at=started_at,
        duration_ms=result.duration_ms,
        request_headers={"user-agent": USER_AGENT}
        | dict.fromkeys(delivery.headers, REDACTED)
        | headers,
        response_status=result.status_code,
        response_headers=result.headers,
        response_body=result.body,
        error_kind=result.error_kind,
        error_message=result.error_message,
        worker_id=worker_id,
    )
    holds = delivery.hold and delivery.lane is not None and decision.status is DeliveryStatus.FAILED
    reason = decision.reason or result.error_message
    if holds:
        reason = f"{reason}; it holds its ordered lane until it is resent"
    change = queue.StateChange.attempted(
        delivery.id,
        delivery.endpoint_id,
        status=decision.status,
        reason=reason,
        attempt_count=attempt_number,
        next_attempt_at=decision.next_attempt_at,
        attempted_at=started_at,
        status_code=result.status_code,
        error_kind=result.error_kind,
        lane=delivery.lane,
        holds_lane=holds,
    )
    return Verdict(attempt, change, classify(result.status_code), decision)


def stop_undeliverable(delivery: queue.Claimed) -> queue.StateChange:
    """The end of a delivery whose endpoint was deleted (cancelled) or disabled (failed, to
    resume when it is enabled again), without an attempt."""
    if delivery.deleted:
        return queue.StateChange.stopped(
            delivery, DeliveryStatus.CANCELLED, "the endpoint was deleted", resume_on_enable=False
        )
    reason = f"the endpoint is disabled: {delivery.disabled_reason or 'no reason given'}"
    return queue.StateChange.stopped(delivery, DeliveryStatus.FAILED, reason, resume_on_enable=True)


def public_ids(delivery: queue.Claimed) -> dict[str, str]:
    """The delivery's ids as the logs show them."""
    return {
        "delivery_id": ids.encode(ids.Prefix.DELIVERY, delivery.id),
        "endpoint_id": ids.encode(ids.Prefix.ENDPOINT, delivery.endpoint_id),
        "tenant_id": ids.encode(ids.Prefix.TENANT, delivery.tenant_id),
    }
