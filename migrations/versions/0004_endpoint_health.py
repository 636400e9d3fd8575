"""Endpoint health and isolation: per-endpoint rate limit buckets, the circuit breaker's probe
time, deliveries paused by a disable, one due index per lane (first attempts and retries),
and hookpost's own operational event types.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
OPERATIONAL_EVENT_TYPES = {
    "hookpost.endpoint.disabled": "hookpost disabled an endpoint (410 Gone, or failing too long).",
    "hookpost.endpoint.failing": "An endpoint failed enough attempts in a row to open its "
    "circuit breaker.",
    "hookpost.delivery.exhausted": "A delivery failed for good: out of attempts or of age.",
}


def upgrade() -> None:
    op.add_column("endpoints", sa.Column("rate_tokens", sa.Float, nullable=True))
    op.add_column("endpoints", sa.Column("rate_updated_at", TZ, nullable=True))
    op.add_column("endpoints", sa.Column("breaker_probe_at", TZ, nullable=True))
    op.add_column(
        "deliveries",
        sa.Column("resume_on_enable", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.drop_index("ix_deliveries_due", "deliveries")
    op.create_index(
        "ix_deliveries_due_first",
        "deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending' AND round_attempts = 0"),
    )
    op.create_index(
        "ix_deliveries_due_retry",
        "deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending' AND round_attempts > 0"),
    )
    # "failed deliveries of a tenant" was the slowest log query at 10 million attempts
    op.create_index(
        "ix_deliveries_tenant_id_status_id",
        "deliveries",
        ["tenant_id", "status", sa.text("id DESC")],
    )
    op.create_index(
        "ix_deliveries_resume",
        "deliveries",
        ["endpoint_id"],
        postgresql_where=sa.text("resume_on_enable"),
    )
    for name, description in OPERATIONAL_EVENT_TYPES.items():
        op.execute(
            sa.text(
                "INSERT INTO event_types (id, name, description) "
                "VALUES (hookpost_uuid7(), :name, :description) ON CONFLICT (name) DO NOTHING"
            ).bindparams(name=name, description=description)
        )


def downgrade() -> None:
    op.drop_index("ix_deliveries_resume", "deliveries")
    op.drop_index("ix_deliveries_tenant_id_status_id", "deliveries")
    op.drop_index("ix_deliveries_due_retry", "deliveries")
    op.drop_index("ix_deliveries_due_first", "deliveries")
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_column("deliveries", "resume_on_enable")
    for column in ("breaker_probe_at", "rate_updated_at", "rate_tokens"):
        op.drop_column("endpoints", column)
