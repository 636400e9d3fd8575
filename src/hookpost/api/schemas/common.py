"""Types the API's answers share: public ids and pages."""

import uuid
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, Field, PlainSerializer, WithJsonSchema

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


class Page(BaseModel, Generic[Item]):
    """One page of a list, newest first."""

    data: list[Item]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )
