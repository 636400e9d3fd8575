"""Deliveries without foreign keys to their tenant and endpoint: each delivery the fan-out
inserted paid both referential checks (a query and a row lock each), while the statement that
inserts it has just read that endpoint, of that tenant. Measured on a batch of 1,000 events
with one delivery each: 4.7 ms of the statement's 59.6 ms for each of the two checks.

Nothing is left to dangle: deliveries keep their key to their event, with its cascade, and
events theirs to the tenant. Deleting a tenant deletes its events, so their deliveries, and
endpoints are only ever deleted with their tenant (deleting one through the API marks it).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOREIGN_KEYS = {
    "fk_deliveries_endpoint_id_endpoints": ("endpoints", "endpoint_id"),
    "fk_deliveries_tenant_id_tenants": ("tenants", "tenant_id"),
}


def upgrade() -> None:
    for name in FOREIGN_KEYS:
        op.drop_constraint(name, "deliveries", type_="foreignkey")


def downgrade() -> None:
    # deliveries whose endpoint or tenant is gone would fail the keys: drop them first
    for table, column in FOREIGN_KEYS.values():
        op.execute(
            f"DELETE FROM deliveries d "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} r WHERE r.id = d.{column})"
        )
    for name, (table, column) in FOREIGN_KEYS.items():
        op.create_foreign_key(name, "deliveries", table, [column], ["id"], ondelete="CASCADE")
