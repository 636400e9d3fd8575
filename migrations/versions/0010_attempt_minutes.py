"""Attempts counted per minute by each worker, for the console's chart of the last hour: a
row per worker and minute, added to with each flush (no two workers write one row), kept a
day by upkeep. Counting the attempts table itself for an hour would read every attempt of it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attempt_minutes",
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("worker_id", sa.String(128), nullable=False),
        sa.Column("succeeded", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("minute", "worker_id", name="pk_attempt_minutes"),
    )


def downgrade() -> None:
    op.drop_table("attempt_minutes")
