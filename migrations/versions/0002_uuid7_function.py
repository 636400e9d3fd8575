"""A SQL function making UUIDv7 ids, so set-based inserts (the fan-out) make time-ordered ids.

Postgres 18 has uuidv7(); this works on every supported version.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # 48 bits of Unix milliseconds over a random v4 UUID, then the version bits 0100 -> 0111.
    op.execute(
        """
        CREATE FUNCTION hookpost_uuid7() RETURNS uuid
        LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
          SELECT encode(
            set_bit(
              set_bit(
                overlay(
                  uuid_send(gen_random_uuid())
                  PLACING substring(
                    int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                    FROM 3
                  )
                  FROM 1 FOR 6
                ),
                52, 1
              ),
              53, 1
            ),
            'hex'
          )::uuid
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION hookpost_uuid7()")
