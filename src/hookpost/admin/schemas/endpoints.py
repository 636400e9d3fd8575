"""What an endpoint, a subscription, a filter test and a secret rotation are made with."""

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

from hookpost import ids
from hookpost.admin.schemas.fields import (
    Channels,
    PatchSchema,
    Schema,
    StorableText,
    TenantRef,
    not_hookposts,
    uid_field,
)
from hookpost.db import unstorable
from hookpost.delivery import ssrf
from hookpost.delivery.attempt import custom_header_refusal
from hookpost.delivery.signing import secret_bytes

MAX_URL_LENGTH = 2048


def url_refusal(url: str) -> str | None:
    """Why ``url`` cannot be an endpoint's URL, whoever asks (None: it can, as far as its
    spelling goes; ``accepted_url`` also applies the deployment's destination policy)."""
    if not url:
        return "the URL is empty"
    if len(url) > MAX_URL_LENGTH:
        return f"the URL is longer than {MAX_URL_LENGTH} characters"
    if (unstorable_reason := unstorable.refusal(url)) is not None:
        return f"the URL {unstorable_reason}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "the URL must start with http:// or https://"
    if not parts.hostname:
        return "the URL has no host"
    if parts.username is not None or parts.password is not None:
        return "credentials in the URL are not allowed; use a custom header"
    try:
        parts.port  # noqa: B018  (raises on a port out of range)
    except ValueError as error:
        return f"the URL's port is invalid: {error}"
    if any(char.isspace() for char in url):
        return "the URL contains white space"
    return ssrf.unsendable(url)


_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")


def _check_url(url: str) -> str:
    reason = url_refusal(url)
    if reason is not None:
        raise ValueError(reason)
    return url


def _check_headers(headers: dict[str, str] | None) -> dict[str, str] | None:
    if headers is None:
        return None
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid header name")
        refusal = custom_header_refusal(name)
        if refusal is not None:
            raise ValueError(refusal)
        if not _HEADER_VALUE.match(value):
            raise ValueError(f"the value of {name!r} contains control characters")
    return headers


def _check_secret(secret: str | None) -> str | None:
    if secret is not None:
        secret_bytes(secret)
    return secret


Uid = Annotated[
    StorableText | None,
    uid_field(
        "The product's own id for this endpoint, unique among its tenant's endpoints; usable "
        "wherever an endpoint is named (with an admin key, with its `tenant_id`).",
        "billing-hook",
    ),
    not_hookposts(ids.Prefix.ENDPOINT),
]
Metadata = Annotated[
    dict[
        Annotated[StorableText, Field(min_length=1, max_length=128)],
        Annotated[StorableText, Field(max_length=1024)],
    ],
    Field(
        max_length=32,
        description="Up to 32 strings kept with the endpoint, for the product's own use.",
        examples=[{"team": "billing"}],
    ),
]
Url = Annotated[
    StorableText,
    Field(min_length=1, max_length=2048, examples=["https://example.com/webhooks"]),
    AfterValidator(_check_url),
]
Headers = Annotated[
    dict[StorableText, Annotated[StorableText, Field(max_length=4096)]],
    Field(
        max_length=32,
        description="Extra headers sent with every request to this endpoint.",
        examples=[{"x-customer": "acme"}],
    ),
    AfterValidator(_check_headers),
]
Secret = Annotated[
    str,
    Field(
        description="A Standard Webhooks secret: `whsec_` and the base64 of 24 to 64 bytes.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    ),
    AfterValidator(_check_secret),
]
EventTypePattern = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        pattern=r"^(\*|[a-zA-Z0-9_]+(\.[a-zA-Z0-9_]+)*(\.\*)?)$",
        description="An event type name (`invoice.paid`), a prefix pattern (`invoice.*`), or "
        "`*` for every type.",
        examples=["invoice.*"],
    ),
]
Filter = Annotated[
    dict[str, Any],
    Field(
        description="A payload filter: only events whose payload it passes are delivered. "
        "Keys name payload fields; a value is a value to equal, an object of operators "
        "(`$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`, `$in`, `$nin`, `$exists`, "
        "`$starts_with`) or a rule for a nested object; `$and`, `$or` and `$not` combine rules.",
        examples=[{"amount": {"$gt": 10000}, "currency": "eur"}],
    ),
]
Filters = Annotated[
    dict[str, Filter],
    Field(
        max_length=256,
        description="Payload filters by subscription: each key is one of `event_types`.",
        examples=[{"invoice.paid": {"amount": {"$gt": 10000}, "currency": "eur"}}],
    ),
]
RateLimit = Annotated[
    int | None,
    Field(ge=1, le=100_000, description="Most requests per second; null for no limit."),
]
MaxInFlight = Annotated[
    int, Field(ge=1, le=1000, description="Most requests under way at once to this endpoint.")
]
Description = Annotated[StorableText, Field(max_length=4096)]
EventTypes = Annotated[
    list[EventTypePattern],
    Field(
        max_length=256,
        description="The event types this endpoint receives. An endpoint with none receives "
        'nothing; `["*"]` receives everything.',
        examples=[["invoice.*", "user.signup"]],
    ),
]


class Ordering(Schema):
    """Ordered delivery: the deliveries of one lane reach the endpoint one at a time, in the
    order their events were emitted; other lanes and endpoints go on in parallel."""

    key: Annotated[StorableText, Field(min_length=1, max_length=255)] | None = Field(
        default=None,
        description="A top-level payload field whose value names the lane (`customer_id`). "
        "Null: one lane for the endpoint, its tenant's events in order. Events without the "
        "field share the lane ''.",
        examples=["customer_id"],
    )
    on_exhausted: Literal["fail", "hold"] = Field(
        default="fail",
        description="What a delivery that runs out of attempts does: `fail` lets the lane "
        "go on; `hold` keeps the lane waiting until it is resent (or this becomes `fail`).",
    )


class EndpointPolicy(Schema):
    """This endpoint's overrides of the settings: a field left out (or null) follows the
    setting of the same name (`HOOKPOST_RETRY_BASE_S`, ...; `timeout_s` overrides
    `HOOKPOST_DELIVERY_TIMEOUT_S`)."""

    retry_base_s: float | None = Field(
        default=None, gt=0, le=86_400, description="Delay before the first retry."
    )
    retry_factor: float | None = Field(
        default=None, ge=1, le=10, description="Each retry waits this many times longer."
    )
    retry_cap_s: float | None = Field(
        default=None, gt=0, le=7 * 86_400, description="Longest delay between two attempts."
    )
    retry_jitter: float | None = Field(
        default=None, ge=0, le=1, description="Random share by which each delay is shortened."
    )
    retry_max_attempts: int | None = Field(
        default=None, ge=1, le=100, description="Attempts after which a delivery has failed."
    )
    retry_max_age_s: float | None = Field(
        default=None,
        gt=0,
        le=30 * 86_400,
        description="Age after which a delivery is not retried any more.",
    )
    timeout_s: float | None = Field(
        default=None,
        gt=0,
        le=300,
        description="Total time allowed for one request; below the workers' lease "
        "(`HOOKPOST_LEASE_S`).",
    )

    def overrides(self) -> dict[str, float]:
        """The fields set, as the endpoint stores them."""
        return self.model_dump(exclude_none=True)


BodyFormat = Annotated[
    Literal["envelope", "payload"],
    Field(
        description="The request's body: `envelope`, hookpost's `{id, type, timestamp, data}` "
        "with the payload in `data`; `payload`, the payload alone (as Svix sends it).",
    ),
]
SignatureHeaders = Annotated[
    Literal["webhook", "svix", "both"],
    Field(
        description="The names of the id, timestamp and signature headers: `webhook-*` "
        "(Standard Webhooks), `svix-*` (what Svix's libraries read first), or both.",
    ),
]


class EndpointCreate(Schema):
    tenant_id: TenantRef | None = Field(
        default=None,
        description="The owning tenant (id or uid). A tenant key may leave it out: its own.",
    )
    uid: Uid = None
    metadata: Metadata = Field(default_factory=dict)
    url: Url
    description: Description = ""
    event_types: EventTypes = Field(default_factory=list)
    headers: Headers = Field(default_factory=dict)
    rate_limit_per_s: RateLimit = None
    max_in_flight: MaxInFlight = 10
    enabled: bool = True
    secret: Secret | None = Field(default=None, description="Generated when left out.")
    policy: EndpointPolicy = Field(
        default_factory=EndpointPolicy,
        description="Overrides of the retry schedule and the timeout; none by default.",
    )
    channels: Channels | None = Field(
        default=None,
        description="Up to 10 channels: the endpoint receives only events that carry one of "
        "them. Left out, null or empty: every event its subscriptions match.",
    )
    filters: Filters = Field(default_factory=dict)
    ordering: Ordering | None = Field(
        default=None, description="Ordered lanes; left out or null: unordered (the fastest)."
    )
    body_format: BodyFormat = "envelope"
    signature_headers: SignatureHeaders = "webhook"


class EndpointUpdate(PatchSchema):
    """Only the fields sent are changed. `event_types` replaces every subscription."""

    nullable_fields = frozenset(
        {"rate_limit_per_s", "disabled_reason", "policy", "channels", "filters", "uid", "ordering"}
    )

    uid: Uid = None
    metadata: Metadata | None = None
    url: Url | None = None
    description: Description | None = None
    event_types: EventTypes | None = None
    headers: Headers | None = None
    rate_limit_per_s: RateLimit = None
    max_in_flight: MaxInFlight | None = None
    enabled: bool | None = Field(
        default=None, description="false disables the endpoint; true enables it again."
    )
    disabled_reason: Annotated[StorableText, Field(max_length=1024)] | None = Field(
        default=None, description="Why, when disabling."
    )
    policy: EndpointPolicy | None = Field(
        default=None,
        description="Replaces every override (`{}` or null: follow the settings again).",
    )
    channels: Channels | None = Field(
        default=None, description="Replaces its channels (`[]` or null: every event)."
    )
    filters: Filters | None = Field(
        default=None,
        description="Replaces every filter (`{}` or null: none). A change of `event_types` "
        "alone keeps the filters of the patterns that stay.",
    )
    ordering: Ordering | None = Field(
        default=None,
        description="Replaces the ordering; null: unordered from now on (what waits in a lane "
        "goes at once).",
    )
    body_format: BodyFormat | None = None
    signature_headers: SignatureHeaders | None = None


class SubscriptionCreate(Schema):
    event_type: EventTypePattern
    filter: Filter | None = None


class FilterTest(Schema):
    event_type: Annotated[
        StorableText, Field(min_length=1, max_length=255, examples=["invoice.paid"])
    ]
    payload: dict[str, Any] = Field(examples=[{"amount": 12000, "currency": "eur"}])
    channels: Channels | None = None


class SecretRotate(Schema):
    key: Secret | None = Field(default=None, description="The new secret; generated if absent.")
    grace_period_s: int = Field(
        default=86_400,
        ge=0,
        le=30 * 86_400,
        description="How long the secrets in use now keep signing beside the new one.",
    )
