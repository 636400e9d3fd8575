"""Portal link revocation: ``tenants.portal_revoked_at``. Every portal link issued for the
tenant before that moment, and every session opened with one, stops working at once (a
leaked link no longer waits for its expiry). Null: nothing revoked.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("portal_revoked_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("tenants", "portal_revoked_at")
