"""Event answers."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from hookpost.api.schemas.common import DeliveryId, EndpointId, EventId, TenantId


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
