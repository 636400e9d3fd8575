"""Types shared by every resource's schemas: public ids, pages, tenant references."""

import uuid
from typing import Annotated, Any, ClassVar, Generic, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

from hookpost import ids

Item = TypeVar("Item")


def _public_id(prefix: ids.Prefix) -> Any:
    example = ids.encode(prefix, uuid.UUID("0193f2c4-e5b0-7a1c-9d3e-4f5a6b7c8d9e"))
    return Annotated[
        uuid.UUID,
        PlainSerializer(lambda value: ids.encode(prefix, value), return_type=str),
        WithJsonSchema({"type": "string", "examples": [example]}),
    ]


TenantId = _public_id(ids.Prefix.TENANT)
ApiKeyId = _public_id(ids.Prefix.API_KEY)
EventTypeId = _public_id(ids.Prefix.EVENT_TYPE)
EndpointId = _public_id(ids.Prefix.ENDPOINT)
SubscriptionId = _public_id(ids.Prefix.SUBSCRIPTION)
EventId = _public_id(ids.Prefix.EVENT)
DeliveryId = _public_id(ids.Prefix.DELIVERY)
AttemptId = _public_id(ids.Prefix.ATTEMPT)


def uid_field(description: str, example: str) -> Any:
    """The constraints of a uid: the product's own id for an object."""
    return Field(
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9._:@/+-]+$",
        description=description,
        examples=[example],
    )


def not_hookposts(prefix: ids.Prefix) -> AfterValidator:
    """Refuse a uid that looks like hookpost's ids of that kind (``prefix``)."""

    def check(value: str | None) -> str | None:
        if value is not None and value.startswith(f"{prefix}_"):
            raise ValueError(f"a uid may not start with '{prefix}_', which marks hookpost's ids")
        return value

    return AfterValidator(check)


Channel = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$", examples=["project_123"]),
]
Channels = Annotated[
    list[Channel],
    Field(max_length=10, examples=[["project_123"]]),
    AfterValidator(lambda names: list(dict.fromkeys(names))),
]

TenantRef = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        description="A tenant's id (`ten_...`) or its `uid`.",
        examples=["ten_01jd8k2c3w5x7y9z0a1b2c3d4e", "acme-corp"],
    ),
]


class Schema(BaseModel):
    """Base of every request model: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class PatchSchema(Schema):
    """Base of PATCH bodies: a field left out keeps its value; null only where it is allowed."""

    nullable_fields: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _refuse_nulls(self) -> Self:
        for name in self.model_fields_set:
            if getattr(self, name) is None and name not in self.nullable_fields:
                field = self.__class__.model_fields[name]
                raise ValueError(f"{field.alias or name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields sent, by their public names."""
        return self.model_dump(exclude_unset=True, by_alias=True)


class Page(BaseModel, Generic[Item]):
    """One page of a list, newest first."""

    data: list[Item]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )
