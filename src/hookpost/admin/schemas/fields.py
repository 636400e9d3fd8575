"""The rules a field of a request holds to, whichever face it came through: text, JSON and
times that Postgres can store (``StorableText``, ``StorableJson``, ``StorableDatetime``; a
value it would refuse is an error naming its field, never an error of the statement, which
may carry other requests' values too, as the group commit of events does), uids, channels,
tenant references, and the bases of create and change models."""

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic_core import PydanticCustomError

from hookpost import ids
from hookpost.db import unstorable


def _storable_text(value: Any) -> Any:
    # before the str validation, whose own words for a lone surrogate do not say what is wrong
    if isinstance(value, str) and (reason := unstorable.refusal(value)) is not None:
        raise PydanticCustomError("unstorable_text", "the text {reason}", {"reason": reason})
    return value


StorableText = Annotated[str, BeforeValidator(_storable_text)]
"""Text Postgres can store: no NUL (U+0000), no lone surrogate."""


def _storable_json(value: Any) -> Any:
    if (found := unstorable.json_refusal(value, keep_nul=False)) is not None:
        path, reason = found
        # ``at`` goes on the field's place in the answer's errors (see api/errors.py)
        raise PydanticCustomError("unstorable_text", "{reason}", {"reason": reason, "at": path})
    return value


StorableJson = AfterValidator(_storable_json)
"""For JSON kept as ``jsonb``: no NUL and no lone surrogate in any string or key."""


def _storable_datetime(value: datetime) -> datetime:
    try:
        value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC: no driver sends it
        raise PydanticCustomError(
            "datetime_out_of_range", "the time is out of range once in UTC"
        ) from None
    return value


StorableDatetime = Annotated[AwareDatetime, AfterValidator(_storable_datetime)]
"""A time with its zone, which stays within years 1 to 9999 in UTC."""


def uid_field(description: str, example: str) -> Any:
    """The constraints of a uid: the product's own id for an object. It is a segment of URL
    paths, so it holds no ``/`` and is not ``.`` or ``..``."""
    return Field(
        min_length=1,
        max_length=255,
        # letters, digits and ``._:@+-``, but not ``.`` or ``..`` alone (a path reads those as
        # this folder or its parent); spelled without a lookahead, which pydantic's engine lacks
        pattern=r"^([A-Za-z0-9_:@+-]|\.[A-Za-z0-9_:@+-]|\.\.[A-Za-z0-9._:@+-])[A-Za-z0-9._:@+-]*$",
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
    StorableText,
    Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$", examples=["project_123"]),
]
Channels = Annotated[
    list[Channel],
    Field(max_length=10, examples=[["project_123"]]),
    AfterValidator(lambda names: list(dict.fromkeys(names))),
]

TenantRef = Annotated[
    StorableText,
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
