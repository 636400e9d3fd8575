"""Event types keep Svix's ``deprecated`` flag and ``group_name``, so that a type made
through the Svix API (``/api/v1/event-type``) reads back as it was sent. Neither changes
what hookpost delivers.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "event_types",
        sa.Column("deprecated", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("event_types", sa.Column("group_name", sa.String(255)))


def downgrade() -> None:
    op.drop_column("event_types", "group_name")
    op.drop_column("event_types", "deprecated")
