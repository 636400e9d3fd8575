"""API key requests and answers."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from hookpost.admin.schemas.fields import Schema, StorableText, TenantRef
from hookpost.api.schemas.common import ApiKeyId, TenantId


class ApiKeyCreate(Schema):
    name: Annotated[StorableText, Field(min_length=1, max_length=255, examples=["billing backend"])]
    tenant_id: TenantRef | None = Field(
        default=None,
        description="The tenant the key is scoped to; null for an admin key. A tenant key can "
        "create keys for its own tenant only.",
    )


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: ApiKeyId
    name: str
    tenant_id: TenantId | None
    key_hint: str = Field(description="The first characters of the key, to recognise it.")
    created_at: datetime


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself. Shown only in this answer: store it now.")
