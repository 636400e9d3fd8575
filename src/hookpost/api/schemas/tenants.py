"""Tenant answers, and the portal link request."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from hookpost.admin.portal_links import LIFETIME_RANGE_S
from hookpost.admin.schemas.fields import Schema
from hookpost.api.schemas.common import TenantId
from hookpost.db.models import Tenant


class TenantOut(BaseModel):
    id: TenantId
    name: str
    uid: str | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, tenant: Tenant) -> "TenantOut":
        return cls(
            id=tenant.id,
            name=tenant.name,
            uid=tenant.uid,
            metadata=tenant.metadata_,
            created_at=tenant.created_at,
            updated_at=tenant.updated_at,
        )


class PortalLinkCreate(Schema):
    scope: Literal["read", "manage"] = Field(
        default="read",
        description="`read`: see the tenant's endpoints, deliveries and attempts. `manage`: "
        "also add, change and delete endpoints, reveal and rotate their secrets, send test "
        "events and resend.",
    )
    expires_in_s: int = Field(
        default=3600,
        ge=LIFETIME_RANGE_S[0],
        le=LIFETIME_RANGE_S[1],
        description="How long the link and its session last.",
    )


class PortalLink(BaseModel):
    url: str = Field(description="Open it in a browser (or an iframe) to enter the portal.")
    scope: Literal["read", "manage"]
    expires_at: datetime
