"""Operations: manual resends and recovery rounds on deliveries, the log indexes operators
filter by, and the attempts table partitioned by day for cheap retention.

- deliveries.trigger says whether the next attempt is 'scheduled' or 'manual' (a resend);
  round_attempts and round_started_at count the retry round: a resend or a recovery starts a
  new one, so the retry limits apply afresh while attempt numbers keep counting.
- attempts is range-partitioned on its id: ids are UUIDv7, so an id range is a time range and
  a day is one partition, dropped whole when it expires (no bulk DELETE, no bloat).
  hookpost_uuid7_floor(t) is the smallest id made at t; hookpost_create_attempt_partitions
  makes the daily partitions of a date range (the worker keeps a week ahead).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "deliveries",
        sa.Column("trigger", sa.String(16), nullable=False, server_default="scheduled"),
    )
    op.add_column(
        "deliveries",
        sa.Column("round_attempts", sa.Integer, nullable=False, server_default="0"),
    )
    op.add_column(
        "deliveries",
        sa.Column(
            "round_started_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    )
    op.execute(
        "UPDATE deliveries SET round_attempts = attempt_count, round_started_at = created_at"
    )
    op.create_index(
        "ix_deliveries_endpoint_id_status_id",
        "deliveries",
        ["endpoint_id", "status", sa.text("id DESC")],
    )
    op.create_index("ix_deliveries_status_id", "deliveries", ["status", sa.text("id DESC")])
    op.create_index(
        "ix_deliveries_tenant_id_event_type_id",
        "deliveries",
        ["tenant_id", "event_type", sa.text("id DESC")],
    )

    op.execute(
        """
        CREATE FUNCTION hookpost_uuid7_floor(at timestamptz) RETURNS uuid
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
          SELECT encode(
            substring(int8send(floor(extract(epoch FROM at) * 1000)::bigint) FROM 3)
              || '\\x00000000000000000000'::bytea,
            'hex'
          )::uuid
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION hookpost_create_attempt_partitions(first_day date, last_day date)
        RETURNS integer LANGUAGE plpgsql AS $$
        DECLARE
          day date;
          name text;
          made integer := 0;
        BEGIN
          FOR day IN SELECT generate_series(first_day, last_day, interval '1 day')::date LOOP
            name := 'attempts_p' || to_char(day, 'YYYYMMDD');
            IF to_regclass(name) IS NULL THEN
              EXECUTE format(
                'CREATE TABLE %I PARTITION OF attempts FOR VALUES FROM (%L) TO (%L)',
                name,
                hookpost_uuid7_floor(day::timestamp AT TIME ZONE 'UTC'),
                hookpost_uuid7_floor((day + 1)::timestamp AT TIME ZONE 'UTC')
              );
              made := made + 1;
            END IF;
          END LOOP;
          RETURN made;
        END
        $$
        """
    )

    op.drop_table("attempts")
    op.execute(
        """
        CREATE TABLE attempts (
            id uuid NOT NULL,
            delivery_id uuid NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
            endpoint_id uuid NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            attempt_number integer NOT NULL,
            trigger varchar(16) NOT NULL DEFAULT 'scheduled',
            started_at timestamptz NOT NULL,
            duration_ms bigint NOT NULL,
            request_headers jsonb NOT NULL,
            response_status integer,
            response_headers jsonb,
            response_body text,
            error_kind varchar(32),
            error_message text,
            worker_id varchar(128) NOT NULL,
            CONSTRAINT pk_attempts PRIMARY KEY (id)
        ) PARTITION BY RANGE (id)
        """
    )
    # Rows outside every daily partition land here rather than fail; the worker keeps the
    # daily partitions a week ahead, so it stays empty.
    op.execute("CREATE TABLE attempts_default PARTITION OF attempts DEFAULT")
    op.create_index("ix_attempts_delivery_id_id", "attempts", ["delivery_id", "id"])
    op.create_index("ix_attempts_endpoint_id_id", "attempts", ["endpoint_id", sa.text("id DESC")])
    op.create_index("ix_attempts_tenant_id_id", "attempts", ["tenant_id", sa.text("id DESC")])
    op.create_index(
        "ix_attempts_endpoint_id_response_status_id",
        "attempts",
        ["endpoint_id", "response_status", sa.text("id DESC")],
    )
    op.execute(
        "SELECT hookpost_create_attempt_partitions("
        "(now() AT TIME ZONE 'UTC')::date - 1, (now() AT TIME ZONE 'UTC')::date + 7)"
    )


def downgrade() -> None:
    op.drop_table("attempts")
    op.execute("DROP FUNCTION hookpost_create_attempt_partitions(date, date)")
    op.execute("DROP FUNCTION hookpost_uuid7_floor(timestamptz)")
    op.drop_index("ix_deliveries_tenant_id_event_type_id", "deliveries")
    op.drop_index("ix_deliveries_endpoint_id_status_id", "deliveries")
    op.drop_index("ix_deliveries_status_id", "deliveries")
    for column in ("round_started_at", "round_attempts", "trigger"):
        op.drop_column("deliveries", column)
    op.create_table(
        "attempts",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "delivery_id",
            sa.Uuid,
            sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "endpoint_id",
            sa.Uuid,
            sa.ForeignKey("endpoints.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "tenant_id", sa.Uuid, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("attempt_number", sa.Integer, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False, server_default="scheduled"),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.BigInteger, nullable=False),
        sa.Column("request_headers", sa.JSON, nullable=False),
        sa.Column("response_status", sa.Integer, nullable=True),
        sa.Column("response_headers", sa.JSON, nullable=True),
        sa.Column("response_body", sa.Text, nullable=True),
        sa.Column("error_kind", sa.String(32), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("worker_id", sa.String(128), nullable=False),
    )
