"""Payload filters: a subscription may carry a filter (the rule as given, and the SQL/JSON
path predicate with its variables that the fan-out evaluates).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONB = postgresql.JSONB(astext_type=sa.Text())


def upgrade() -> None:
    op.add_column("subscriptions", sa.Column("filter", JSONB, nullable=True))
    op.add_column("subscriptions", sa.Column("filter_path", postgresql.JSONPATH(), nullable=True))
    op.add_column("subscriptions", sa.Column("filter_vars", JSONB, nullable=True))


def downgrade() -> None:
    for column in ("filter_vars", "filter_path", "filter"):
        op.drop_column("subscriptions", column)
