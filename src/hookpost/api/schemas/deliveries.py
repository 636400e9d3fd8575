"""Delivery, attempt, recovery and endpoint stats answers."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hookpost.admin.schemas.fields import Schema, StorableDatetime
from hookpost.api.schemas.common import AttemptId, DeliveryId, EndpointId, EventId, TenantId
from hookpost.db.models import DeliveryStatus


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: DeliveryId
    event_id: EventId
    endpoint_id: EndpointId
    tenant_id: TenantId
    event_type: str
    status: DeliveryStatus
    status_reason: str | None = Field(
        description="Why it failed or was cancelled; for a pending one, why its last attempt "
        "failed."
    )
    attempt_count: int
    next_attempt_at: datetime = Field(description="When a pending delivery is next tried.")
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error_kind: str | None
    created_at: datetime
    finished_at: datetime | None


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: AttemptId
    delivery_id: DeliveryId
    endpoint_id: EndpointId
    attempt_number: int
    trigger: str = Field(description="`scheduled`, or `manual` for a resend.")
    started_at: datetime
    duration_ms: int
    request_headers: dict[str, str] = Field(
        description="As sent; values of the endpoint's custom headers are redacted."
    )
    response_status: int | None
    response_headers: dict[str, str] | None
    response_body: str | None = Field(description="Up to the response body cap.")
    error_kind: str | None = Field(
        description="timeout, connect, dns, tls, http_status, redirect, blocked_destination, "
        "invalid_url, secret_unreadable; null on success."
    )
    error_message: str | None
    worker_id: str


class DeliveryEvent(BaseModel):
    id: EventId
    event_type: str
    payload: dict[str, Any]
    created_at: datetime


class DeliveryEndpoint(BaseModel):
    id: EndpointId
    url: str
    enabled: bool
    deleted: bool


class DeliveryDetail(DeliveryOut):
    event: DeliveryEvent
    endpoint: DeliveryEndpoint
    attempts: list[AttemptOut] = Field(description="Every attempt, oldest first.")


class RecoverRequest(Schema):
    since: StorableDatetime = Field(description="Deliveries created at or after this time.")
    until: StorableDatetime | None = Field(
        default=None, description="And before this time; now when left out."
    )
    dry_run: bool = Field(
        default=False, description="Only count what would be queued again; queue nothing."
    )

    @model_validator(mode="after")
    def _ordered(self) -> "RecoverRequest":
        if self.until is not None and self.until <= self.since:
            raise ValueError("until must be after since")
        return self


class Recovered(BaseModel):
    queued: int = Field(
        description="How many failed deliveries were put back in the queue; with dry_run, how "
        "many would be."
    )
    dry_run: bool


class LastAttempt(BaseModel):
    at: datetime
    status_code: int | None
    error_kind: str | None
    succeeded: bool


class EndpointStatsOut(BaseModel):
    since: datetime
    until: datetime
    counts: Annotated[
        dict[str, int],
        Field(description="Deliveries created in the window, by their state now."),
    ]
    success_rate: float | None = Field(
        description="succeeded / (succeeded + failed) in the window; null when none finished."
    )
    last_attempt: LastAttempt | None
    backlog: int = Field(
        description="Deliveries pending, waiting in an ordered lane, or in flight now."
    )
    oldest_pending_age_s: float | None = Field(
        description="Age of the oldest delivery of the backlog, in seconds."
    )
    concurrency_limit: int | None = Field(
        description="How many requests a worker lets be open to the endpoint at once now: "
        "earned up to max_in_flight by successes, halved by timeouts, connection errors, 429 "
        "and 502-504 (as the worker that changed it last reported it); null before the first "
        "attempt."
    )
    held_lanes: int = Field(
        description="Ordered lanes stopped behind a delivery that ran out of attempts "
        '(`ordering.on_exhausted` "hold"): resend it to go on.'
    )
