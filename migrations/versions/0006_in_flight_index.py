"""Requests in flight counted over a small index: the lease index becomes
(endpoint_id, locked_until) for in-flight rows.

Every claim counts each candidate endpoint's requests in flight. That count read the
in-flight range of (endpoint_id, status, id), where every lease leaves a dead entry until
autovacuum visits the table: after 30,000 deliveries the count read 391 index pages, and it
grows with the deliveries made since the last vacuum. A partial index over in-flight rows only
stays compact (1-3 pages after the same 30,000, measured). It replaces the lease index
(locked_until) instead of joining it, so a lease writes no more index entries than before;
the lease keeper's search for expired leases reads the whole small index (2-21 pages).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IN_FLIGHT = sa.text("status = 'in_flight'")


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_in_flight",
        "deliveries",
        ["endpoint_id", "locked_until"],
        postgresql_where=IN_FLIGHT,
    )
    op.drop_index("ix_deliveries_lease", table_name="deliveries")


def downgrade() -> None:
    op.create_index(
        "ix_deliveries_lease", "deliveries", ["locked_until"], postgresql_where=IN_FLIGHT
    )
    op.drop_index("ix_deliveries_in_flight", table_name="deliveries")
