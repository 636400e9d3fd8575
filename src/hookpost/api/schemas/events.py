"""Event requests and answers."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from hookpost.admin.schemas.fields import (
    Channels,
    Schema,
    StorableDatetime,
    StorableText,
    TenantRef,
)
from hookpost.api.schemas.common import DeliveryId, EndpointId, EventId, TenantId

IdempotencyKey = Annotated[
    StorableText,
    Field(
        min_length=1,
        max_length=255,
        description="Emitting twice with the same key (per tenant) creates one event.",
        examples=["invoice-1234-paid"],
    ),
]


class EventCreate(Schema):
    tenant_id: TenantRef | None = Field(
        default=None, description="The tenant (id or uid). A tenant key may leave it out."
    )
    event_type: Annotated[
        StorableText, Field(min_length=1, max_length=255, examples=["invoice.paid"])
    ]
    # no StorableText here: a payload's NUL is stored (text JSON keeps it escaped), and a lone
    # surrogate is found, with its place, only when the payload cannot be written (intake)
    payload: dict[str, Any] = Field(
        description="The event's data: the `data` field of the webhook body.",
        examples=[{"invoice_id": "in_1234", "amount": 4200}],
    )
    idempotency_key: IdempotencyKey | None = Field(
        default=None, description="Or send the `Idempotency-Key` header."
    )
    deliver_at: StorableDatetime | None = Field(
        default=None,
        description="When its deliveries fall due (scheduled delivery), at most "
        "HOOKPOST_EVENT_RETENTION_DAYS ahead; left out, or in the past: at once.",
    )
    channels: Channels | None = Field(
        default=None,
        description="Up to 10 channels: endpoints that listen to channels receive the event "
        "only if they listen to one of these (endpoints without channels receive it anyway).",
    )


class EventBatch(Schema):
    events: list[EventCreate] = Field(min_length=1, max_length=1000)


class Emitted(BaseModel):
    id: EventId
    tenant_id: TenantId
    event_type: str
    idempotency_key: str | None
    created_at: datetime
    deliveries: int = Field(description="How many deliveries the fan-out created.")
    duplicate: bool = Field(
        description="True when the idempotency key was seen before: this is the first event."
    )


class EmittedBatch(BaseModel):
    data: list[Emitted]


class DeliverySummary(BaseModel):
    id: DeliveryId
    endpoint_id: EndpointId
    status: str = Field(examples=["pending"])
    status_reason: str | None
    attempt_count: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None


class EventOut(BaseModel):
    id: EventId
    tenant_id: TenantId
    event_type: str
    payload: dict[str, Any]
    idempotency_key: str | None
    created_at: datetime
    deliver_at: datetime | None
    channels: list[str] | None
    deliveries: list[DeliverySummary]
