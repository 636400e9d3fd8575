"""What a tenant is created and changed with."""

from typing import Annotated, Any

from pydantic import Field

from hookpost import ids
from hookpost.admin.schemas.fields import (
    PatchSchema,
    Schema,
    StorableJson,
    StorableText,
    not_hookposts,
    uid_field,
)

Uid = Annotated[
    StorableText | None,
    uid_field(
        "The product's own id for this customer; unique. Usable wherever a tenant is named.",
        "acme-corp",
    ),
    not_hookposts(ids.Prefix.TENANT),
]
Name = Annotated[StorableText, Field(min_length=1, max_length=255, examples=["Acme Corp"])]
Metadata = Annotated[
    dict[str, Any],
    Field(description="Free-form JSON kept with the tenant.", examples=[{"plan": "pro"}]),
    StorableJson,
]


class TenantCreate(Schema):
    name: Name
    uid: Uid = None
    metadata: Metadata = Field(default_factory=dict)


class TenantUpdate(PatchSchema):
    nullable_fields = frozenset({"uid"})

    """Only the fields sent are changed."""

    name: Name | None = None
    uid: Uid = None
    metadata: Metadata | None = None
