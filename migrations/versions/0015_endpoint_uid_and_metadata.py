"""Endpoint uid and metadata: the product's own id for an endpoint (unique among its tenant's
live endpoints) and a small string map kept with it.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("endpoints", sa.Column("uid", sa.String(255), nullable=True))
    op.add_column(
        "endpoints",
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
        ),
    )
    op.create_index(
        "uq_endpoints_tenant_id_uid",
        "endpoints",
        ["tenant_id", "uid"],
        unique=True,
        postgresql_where=sa.text("uid IS NOT NULL AND deleted_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_endpoints_tenant_id_uid", table_name="endpoints")
    op.drop_column("endpoints", "metadata")
    op.drop_column("endpoints", "uid")
