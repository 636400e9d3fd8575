"""Endpoint, subscription, filter-test and secret answers."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hookpost.api.schemas.common import EndpointId, SubscriptionId, TenantId


class EffectivePolicy(BaseModel):
    """The policy an endpoint's deliveries follow: its overrides, and the settings for the
    rest."""

    retry_base_s: float
    retry_factor: float
    retry_cap_s: float
    retry_jitter: float
    retry_max_attempts: int
    retry_max_age_s: float
    timeout_s: float


class EndpointOut(BaseModel):
    id: EndpointId
    tenant_id: TenantId
    uid: str | None
    metadata: dict[str, str]
    url: str
    description: str
    event_types: list[str]
    headers: dict[str, str]
    rate_limit_per_s: int | None
    max_in_flight: int
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    filters: dict[str, dict[str, Any]] = Field(
        description="The payload filters of its subscriptions, by pattern."
    )
    channels: list[str] | None = Field(
        description="The channels it listens to; null: it receives events of any channel."
    )
    ordering: dict[str, Any] | None = Field(description="Its ordered lanes; null: unordered.")
    policy: dict[str, float] = Field(description="The overrides set on this endpoint.")
    body_format: str = Field(description="`envelope` or `payload`: what the body holds.")
    signature_headers: str = Field(description="`webhook`, `svix` or `both`.")
    effective_policy: EffectivePolicy = Field(
        description="What its deliveries follow: the overrides, and the settings for the rest."
    )
    created_at: datetime
    updated_at: datetime
    warnings: list[str] = Field(
        default_factory=list,
        description="In the answer to a create or an update: what will likely not do what was "
        "meant, such as no subscription at all or a pattern no event type matches.",
    )


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: SubscriptionId
    endpoint_id: EndpointId
    event_type: str
    filter: dict[str, Any] | None
    created_at: datetime
    warnings: list[str] = Field(
        default_factory=list,
        description="In the answer to a subscribe: a pattern that no event type matches today.",
    )


class SubscriptionMatch(BaseModel):
    id: SubscriptionId
    event_type: str
    takes_type: bool = Field(description="Its pattern matches the event type.")
    passes: bool = Field(description="It has no filter, or its filter passes the payload.")


class FilterTestOut(BaseModel):
    delivered: bool = Field(description="Whether such an event would be delivered to it.")
    reason: str
    subscriptions: list[SubscriptionMatch]


class LiveSecretOut(BaseModel):
    key: str = Field(examples=["whsec_..."])
    created_at: datetime
    expires_at: datetime | None = Field(
        description="When it stops signing; null for the current secret."
    )


class SecretOut(BaseModel):
    key: str = Field(description="The current signing secret.", examples=["whsec_..."])
    secrets: list[LiveSecretOut] = Field(
        description="Every secret that signs now, the current one first: after a rotation, "
        "the earlier ones sign too until their expires_at."
    )
