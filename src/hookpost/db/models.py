"""The ORM models: the whole data model of DESIGN.md, one class per table.

Alembic owns the schema (``migrations/``); these classes mirror it, indexes included, and a
test compares them with the migrated schema. There are no relationships: every load is an
explicit query.
"""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSON, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from hookpost.ids import new_id

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class DeliveryStatus(StrEnum):
    """Where a delivery is in its life; see DESIGN.md, "Data flow"."""

    PENDING = "pending"
    WAITING = "waiting"  # behind an unfinished delivery of its ordered lane
    IN_FLIGHT = "in_flight"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JsonPath(UserDefinedType[str]):
    """A SQL/JSON path, bound as its text (SQLAlchemy's JSONPATH binds None as a list)."""

    cache_ok = True

    def get_col_spec(self, **_: Any) -> str:
        return "JSONPATH"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012
        datetime: DateTime(timezone=True),
        uuid.UUID: UUID(as_uuid=True),
        dict[str, Any]: JSONB,
        dict[str, str]: JSONB,
    }


def _newest_first(*columns: str) -> list[Any]:
    """An index's columns, then ``id DESC``: lists read newest first."""
    return [*columns, text("id DESC")]


# The statuses that are few (settled rows are most of the table): migration 0007.
_RARE_STATUSES = text("status IN ('pending', 'failed', 'cancelled')")


def _id_column() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, default=new_id)


def _created_at() -> Mapped[datetime]:
    return mapped_column(server_default=func.now())


def _updated_at() -> Mapped[datetime]:
    return mapped_column(server_default=func.now(), onupdate=func.now())


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = _id_column()
    uid: Mapped[str | None] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    # portal links issued before this, and the sessions opened with them, no longer work
    portal_revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = _id_column()
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    key_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    key_hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = _created_at()


class EventType(Base):
    __tablename__ = "event_types"

    id: Mapped[uuid.UUID] = _id_column()
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    schema: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    # Svix's flag and grouping, kept as sent; neither changes what is delivered
    deprecated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    group_name: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class Endpoint(Base):
    __tablename__ = "endpoints"
    __table_args__ = (
        CheckConstraint("body_format IN ('envelope', 'payload')", name="body_format"),
        CheckConstraint(
            "signature_headers IN ('webhook', 'svix', 'both')", name="signature_headers"
        ),
        Index(
            "ix_endpoints_tenant_id_live", "tenant_id", postgresql_where=text("deleted_at IS NULL")
        ),
        Index(
            "uq_endpoints_tenant_id_uid",
            "tenant_id",
            "uid",
            unique=True,
            postgresql_where=text("uid IS NOT NULL AND deleted_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = _id_column()
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    uid: Mapped[str | None] = mapped_column(String(255))  # unique among the tenant's live ones
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", default=dict)
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    headers: Mapped[dict[str, str]] = mapped_column(default=dict)
    rate_limit_per_s: Mapped[int | None]
    max_in_flight: Mapped[int] = mapped_column(Integer, default=10)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None]
    failing_since: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    rate_tokens: Mapped[float | None]
    rate_updated_at: Mapped[datetime | None]
    breaker_probe_at: Mapped[datetime | None]
    concurrency_limit: Mapped[int | None]  # as a worker's gate last reported it
    policy: Mapped[dict[str, Any]] = mapped_column(default=dict)  # overridden settings
    # ordered lanes: {"key": a payload field or None, "on_exhausted": "fail" | "hold"}
    ordering: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    channels: Mapped[list[str] | None] = mapped_column(ARRAY(Text))  # None: every event
    # the requests on the wire (migration 0020): "envelope" or "payload"; "webhook", "svix"
    # or "both" (the signature headers' names)
    body_format: Mapped[str] = mapped_column(String(16), default="envelope")
    signature_headers: Mapped[str] = mapped_column(String(16), default="webhook")
    deleted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class EndpointSecret(Base):
    """A signing secret of an endpoint, encrypted. Live while ``expires_at`` is null or ahead."""

    __tablename__ = "endpoint_secrets"

    id: Mapped[uuid.UUID] = _id_column()
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("endpoints.id", ondelete="CASCADE"), index=True
    )
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _created_at()
    expires_at: Mapped[datetime | None]


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("endpoint_id", "event_type"),)

    id: Mapped[uuid.UUID] = _id_column()
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(255), index=True)
    # a payload filter: the rule as given, and what the fan-out evaluates (admin.filters)
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    filter_path: Mapped[str | None] = mapped_column(JsonPath)
    filter_vars: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    created_at: Mapped[datetime] = _created_at()


class Event(Base):
    """One emitted event. ``body`` is the exact webhook body sent on every attempt."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_tenant_id_id", *_newest_first("tenant_id")),
        Index(
            "uq_events_tenant_id_idempotency_key",
            "tenant_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = _id_column()
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(255))
    body: Mapped[Any] = mapped_column(JSON(none_as_null=True))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    payload_hash: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _created_at()
    deliver_at: Mapped[datetime | None]  # its deliveries fall due then; None: at once
    channels: Mapped[list[str] | None] = mapped_column(ARRAY(Text))


class Delivery(Base):
    """One event to one endpoint: the queue row (see ``delivery/queue.py``). Its only foreign
    key is its event's (migration 0008): deleting a tenant deletes its events, and so their
    deliveries, and endpoints go only with their tenant."""

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'in_flight', 'succeeded', 'failed', 'cancelled', 'waiting')",
            name="status",
        ),
        # the two lanes of the queue (queue.FIRST_LANE, queue.RETRY_LANE)
        Index(
            "ix_deliveries_due_first",
            "next_attempt_at",
            postgresql_where=text("status = 'pending' AND round_attempts = 0"),
        ),
        Index(
            "ix_deliveries_due_retry",
            "next_attempt_at",
            postgresql_where=text("status = 'pending' AND round_attempts > 0"),
        ),
        Index(
            "ix_deliveries_in_flight",
            "endpoint_id",
            "locked_until",
            postgresql_where=text("status = 'in_flight'"),
        ),
        Index("ix_deliveries_resume", "endpoint_id", postgresql_where=text("resume_on_enable")),
        # an ordered lane's unfinished deliveries in emit order (queue.LANE_HEAD)
        Index(
            "ix_deliveries_lane",
            "endpoint_id",
            "lane",
            "event_id",
            postgresql_where=text(
                "lane IS NOT NULL AND (status IN ('waiting', 'pending', 'in_flight') OR holds_lane)"
            ),
        ),
        Index("ix_deliveries_event_id", "event_id"),
        # the delivery log's lists
        Index("ix_deliveries_endpoint_id_id", *_newest_first("endpoint_id")),
        Index("ix_deliveries_tenant_id_id", *_newest_first("tenant_id")),
        Index("ix_deliveries_tenant_id_event_type_id", *_newest_first("tenant_id", "event_type")),
        Index("ix_deliveries_status_id", *_newest_first("status"), postgresql_where=_RARE_STATUSES),
        Index(
            "ix_deliveries_tenant_id_status_id",
            *_newest_first("tenant_id", "status"),
            postgresql_where=_RARE_STATUSES,
        ),
        Index(
            "ix_deliveries_endpoint_id_status_id",
            *_newest_first("endpoint_id", "status"),
            postgresql_where=_RARE_STATUSES,
        ),
    )

    id: Mapped[uuid.UUID] = _id_column()
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[uuid.UUID]
    tenant_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    status_reason: Mapped[str | None] = mapped_column(Text)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    trigger: Mapped[str] = mapped_column(String(16), default="scheduled")
    round_attempts: Mapped[int] = mapped_column(Integer, default=0)
    round_started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    locked_until: Mapped[datetime | None]
    locked_by: Mapped[str | None] = mapped_column(String(128))
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error_kind: Mapped[str | None] = mapped_column(String(32))
    resume_on_enable: Mapped[bool] = mapped_column(Boolean, default=False)
    lane: Mapped[str | None] = mapped_column(Text)  # its ordered lane; None: unordered
    holds_lane: Mapped[bool] = mapped_column(Boolean, default=False)  # failed, and holding it
    created_at: Mapped[datetime] = _created_at()
    finished_at: Mapped[datetime | None]


class Attempt(Base):
    """One HTTP try of a delivery: an immutable log row. No foreign keys (migration 0005):
    they cost more than the row; retention and tenant deletion delete attempts themselves."""

    __tablename__ = "attempts"
    __table_args__ = (
        Index("ix_attempts_delivery_id_id", "delivery_id", "id"),
        Index("ix_attempts_endpoint_id_id", *_newest_first("endpoint_id")),
        Index("ix_attempts_tenant_id_id", *_newest_first("tenant_id")),
        Index(
            "ix_attempts_endpoint_id_response_status_id",
            *_newest_first("endpoint_id", "response_status"),
        ),
    )

    id: Mapped[uuid.UUID] = _id_column()
    delivery_id: Mapped[uuid.UUID]
    endpoint_id: Mapped[uuid.UUID]
    tenant_id: Mapped[uuid.UUID]
    attempt_number: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(16), default="scheduled")
    started_at: Mapped[datetime]
    duration_ms: Mapped[int] = mapped_column(BigInteger)
    request_headers: Mapped[dict[str, str]]
    response_status: Mapped[int | None]
    response_headers: Mapped[dict[str, str] | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    error_kind: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    worker_id: Mapped[str] = mapped_column(String(128))


class WorkerHeartbeat(Base):
    """A running worker process and when it last said so (migration 0017): the deliveries of
    one whose heartbeat stopped go back to the queue."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]


class AttemptMinute(Base):
    """Attempts one worker made in one minute, for the console's chart (migration 0010)."""

    __tablename__ = "attempt_minutes"

    minute: Mapped[datetime] = mapped_column(primary_key=True)
    worker_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    succeeded: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
