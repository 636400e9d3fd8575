"""What an event is emitted with, one or a batch of them."""

from typing import Annotated, Any

from pydantic import Field

from hookpost.admin.schemas.fields import (
    Channels,
    Schema,
    StorableDatetime,
    StorableText,
    TenantRef,
)

IdempotencyKey = Annotated[
    StorableText,
    Field(
        min_length=1,
        max_length=255,
        description="Emitting twice with the same key (per tenant) creates one event.",
        examples=["invoice-1234-paid"],
    ),
]

EventTypeName = Annotated[
    StorableText, Field(min_length=1, max_length=255, examples=["invoice.paid"])
]


class EventCreate(Schema):
    tenant_id: TenantRef | None = Field(
        default=None, description="The tenant (id or uid). A tenant key may leave it out."
    )
    event_type: EventTypeName
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
