"""What an event type is created and changed with."""

from typing import Annotated, Any

from pydantic import Field

from hookpost.admin.event_types import NAME_PATTERN
from hookpost.admin.schemas.fields import PatchSchema, Schema, StorableJson, StorableText

EventTypeName = Annotated[
    StorableText,
    Field(
        min_length=1,
        max_length=255,
        pattern=NAME_PATTERN,
        description="Dot-separated words of letters, digits and underscores.",
        examples=["invoice.paid"],
    ),
]
Description = Annotated[
    StorableText, Field(max_length=4096, examples=["An invoice was paid in full."])
]
PayloadSchema = Annotated[
    dict[str, Any] | None,
    Field(
        description="A JSON Schema that every payload of this type must match; null for none.",
        examples=[{"type": "object", "required": ["invoice_id"]}],
    ),
    StorableJson,
]


class EventTypeCreate(Schema):
    name: EventTypeName
    description: Description = ""
    schema_: PayloadSchema = Field(default=None, alias="schema")


class EventTypeUpdate(PatchSchema):
    """Only the fields sent are changed; `schema: null` removes the schema."""

    nullable_fields = frozenset({"schema_"})

    description: Description | None = None
    schema_: PayloadSchema = Field(default=None, alias="schema")
    archived: bool | None = Field(default=None, description="Archived types accept no new events.")
