"""Channels: an event may carry channels, and an endpoint that listens to channels receives
only the events that share one (an endpoint without channels receives every event).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("events", "endpoints"):
        op.add_column(table, sa.Column("channels", postgresql.ARRAY(sa.Text()), nullable=True))


def downgrade() -> None:
    for table in ("events", "endpoints"):
        op.drop_column(table, "channels")
