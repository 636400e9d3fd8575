"""How an endpoint's requests look on the wire: ``body_format`` (``envelope``, hookpost's
``{id, type, timestamp, data}``, or ``payload``, the event's payload itself, as Svix sends
it) and ``signature_headers`` (``webhook``: the Standard Webhooks ``webhook-*`` headers;
``svix``: ``svix-*``; ``both``). Existing endpoints keep what they had.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "endpoints",
        sa.Column("body_format", sa.String(16), nullable=False, server_default="envelope"),
    )
    op.add_column(
        "endpoints",
        sa.Column("signature_headers", sa.String(16), nullable=False, server_default="webhook"),
    )
    op.create_check_constraint(
        op.f("ck_endpoints_body_format"), "endpoints", "body_format IN ('envelope', 'payload')"
    )
    op.create_check_constraint(
        op.f("ck_endpoints_signature_headers"),
        "endpoints",
        "signature_headers IN ('webhook', 'svix', 'both')",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_endpoints_signature_headers"), "endpoints")
    op.drop_constraint(op.f("ck_endpoints_body_format"), "endpoints")
    op.drop_column("endpoints", "signature_headers")
    op.drop_column("endpoints", "body_format")
