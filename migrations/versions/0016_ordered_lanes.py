"""Ordered lanes: an endpoint may deliver in order (``ordering``: the payload field whose
value names a lane, and what a delivery that runs out of attempts does to its lane). A
delivery of an ordered endpoint has its ``lane``; one behind an unfinished delivery of its
lane is ``waiting``, and a failed one that holds its lane says so (``holds_lane``).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "'pending', 'in_flight', 'succeeded', 'failed', 'cancelled'"


def _check_statuses(statuses: str) -> None:
    op.execute("ALTER TABLE deliveries DROP CONSTRAINT ck_deliveries_status")
    op.execute(
        f"ALTER TABLE deliveries ADD CONSTRAINT ck_deliveries_status CHECK (status IN ({statuses}))"
    )


def upgrade() -> None:
    op.add_column(
        "endpoints", sa.Column("ordering", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column("deliveries", sa.Column("lane", sa.Text(), nullable=True))
    op.add_column(
        "deliveries",
        sa.Column("holds_lane", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    _check_statuses(f"{STATUSES}, 'waiting'")
    # a lane's unfinished deliveries in emit order: its head, and who waits behind it
    op.create_index(
        "ix_deliveries_lane",
        "deliveries",
        ["endpoint_id", "lane", "event_id"],
        postgresql_where=sa.text(
            "lane IS NOT NULL AND (status IN ('waiting', 'pending', 'in_flight') OR holds_lane)"
        ),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_lane", table_name="deliveries")
    op.execute("UPDATE deliveries SET status = 'pending' WHERE status = 'waiting'")
    _check_statuses(STATUSES)
    op.drop_column("deliveries", "holds_lane")
    op.drop_column("deliveries", "lane")
    op.drop_column("endpoints", "ordering")
