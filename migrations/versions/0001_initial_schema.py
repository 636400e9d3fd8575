"""The initial schema: tenants, api keys, event types, endpoints with their secrets,
subscriptions, events, deliveries (the queue) and attempts (the log).

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSON, JSONB, UUID

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def _id() -> sa.Column:
    return sa.Column("id", UUID(as_uuid=True), primary_key=True)


def _ref(name: str, table: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(
        name,
        UUID(as_uuid=True),
        sa.ForeignKey(f"{table}.id", ondelete="CASCADE"),
        nullable=nullable,
    )


def _created_at() -> sa.Column:
    return sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now())


def _updated_at() -> sa.Column:
    return sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "tenants",
        _id(),
        sa.Column("uid", sa.String(255), nullable=True, unique=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("metadata", JSONB, nullable=False, server_default="{}"),
        _created_at(),
        _updated_at(),
    )
    op.create_table(
        "api_keys",
        _id(),
        _ref("tenant_id", "tenants", nullable=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("key_hash", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("key_hint", sa.String(16), nullable=False),
        _created_at(),
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    op.create_table(
        "event_types",
        _id(),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("schema", JSONB, nullable=True),
        sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
        _created_at(),
        _updated_at(),
    )
    op.create_table(
        "endpoints",
        _id(),
        _ref("tenant_id", "tenants"),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("headers", JSONB, nullable=False, server_default="{}"),
        sa.Column("rate_limit_per_s", sa.Integer, nullable=True),
        sa.Column("max_in_flight", sa.Integer, nullable=False, server_default="10"),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("disabled_reason", sa.Text, nullable=True),
        sa.Column("disabled_at", TZ, nullable=True),
        sa.Column("failing_since", TZ, nullable=True),
        sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("deleted_at", TZ, nullable=True),
        _created_at(),
        _updated_at(),
    )
    op.create_index(
        "ix_endpoints_tenant_id_live",
        "endpoints",
        ["tenant_id"],
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "endpoint_secrets",
        _id(),
        _ref("endpoint_id", "endpoints"),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        _created_at(),
        sa.Column("expires_at", TZ, nullable=True),
    )
    op.create_index("ix_endpoint_secrets_endpoint_id", "endpoint_secrets", ["endpoint_id"])
    op.create_table(
        "subscriptions",
        _id(),
        _ref("endpoint_id", "endpoints"),
        sa.Column("event_type", sa.String(255), nullable=False),
        _created_at(),
        sa.UniqueConstraint("endpoint_id", "event_type"),
    )
    # The fan-out looks subscriptions up by pattern across a tenant's endpoints.
    op.create_index("ix_subscriptions_event_type", "subscriptions", ["event_type"])
    op.create_table(
        "events",
        _id(),
        _ref("tenant_id", "tenants"),
        sa.Column("event_type", sa.String(255), nullable=False),
        sa.Column("body", JSON, nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("payload_hash", sa.LargeBinary, nullable=False),
        _created_at(),
    )
    op.create_index(
        "uq_events_tenant_id_idempotency_key",
        "events",
        ["tenant_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.create_index("ix_events_tenant_id_id", "events", ["tenant_id", sa.text("id DESC")])
    op.create_table(
        "deliveries",
        _id(),
        _ref("event_id", "events"),
        _ref("endpoint_id", "endpoints"),
        _ref("tenant_id", "tenants"),
        sa.Column("event_type", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("status_reason", sa.Text, nullable=True),
        sa.Column("attempt_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("locked_until", TZ, nullable=True),
        sa.Column("locked_by", sa.String(128), nullable=True),
        sa.Column("last_attempt_at", TZ, nullable=True),
        sa.Column("last_status_code", sa.Integer, nullable=True),
        sa.Column("last_error_kind", sa.String(32), nullable=True),
        _created_at(),
        sa.Column("finished_at", TZ, nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'in_flight', 'succeeded', 'failed', 'cancelled')",
            name="status",
        ),
    )
    # The queue: a claim reads due pending rows in due order; this partial index holds only them,
    # so it stays small and a claim stays cheap whatever the size of the history.
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    # Lease recovery: in-flight rows whose lease ran out.
    op.create_index(
        "ix_deliveries_lease",
        "deliveries",
        ["locked_until"],
        postgresql_where=sa.text("status = 'in_flight'"),
    )
    # The delivery log, newest first, by each filter operators use.
    op.create_index("ix_deliveries_event_id", "deliveries", ["event_id"])
    op.create_index(
        "ix_deliveries_endpoint_id_id", "deliveries", ["endpoint_id", sa.text("id DESC")]
    )
    op.create_index("ix_deliveries_tenant_id_id", "deliveries", ["tenant_id", sa.text("id DESC")])
    op.create_table(
        "attempts",
        _id(),
        _ref("delivery_id", "deliveries"),
        _ref("endpoint_id", "endpoints"),
        _ref("tenant_id", "tenants"),
        sa.Column("attempt_number", sa.Integer, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False, server_default="scheduled"),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("duration_ms", sa.BigInteger, nullable=False),
        sa.Column("request_headers", JSONB, nullable=False),
        sa.Column("response_status", sa.Integer, nullable=True),
        sa.Column("response_headers", JSONB, nullable=True),
        sa.Column("response_body", sa.Text, nullable=True),
        sa.Column("error_kind", sa.String(32), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("worker_id", sa.String(128), nullable=False),
    )
    op.create_index("ix_attempts_delivery_id_id", "attempts", ["delivery_id", "id"])
    op.create_index("ix_attempts_endpoint_id_id", "attempts", ["endpoint_id", sa.text("id DESC")])
    op.create_index("ix_attempts_tenant_id_id", "attempts", ["tenant_id", sa.text("id DESC")])


def downgrade() -> None:
    for table in (
        "attempts",
        "deliveries",
        "events",
        "subscriptions",
        "endpoint_secrets",
        "endpoints",
        "event_types",
        "api_keys",
        "tenants",
    ):
        op.drop_table(table)
