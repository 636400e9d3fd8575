"""The concurrency limit each endpoint has earned, as a worker last reported it: workers adapt
it (``delivery.gates``) and write it with their results when it changes, so that the stats
and the console can show it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("endpoints", sa.Column("concurrency_limit", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("endpoints", "concurrency_limit")
