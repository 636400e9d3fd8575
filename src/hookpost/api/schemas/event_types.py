"""Event type answers."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hookpost.api.schemas.common import EventTypeId


class EventTypeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    id: EventTypeId
    name: str
    description: str
    schema_: dict[str, Any] | None = Field(alias="schema")
    archived: bool
    created_at: datetime
    updated_at: datetime
