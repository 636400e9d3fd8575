"""Worker heartbeats: each worker process writes ``heartbeat_at`` every few seconds, and a
worker whose heartbeat stopped is dead: the deliveries it held go back to the queue within
seconds, instead of when their leases expire (a minute by default, plus the lease keeper's
period). A worker of an older release writes none, and its leases still expire as before.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("workers")
