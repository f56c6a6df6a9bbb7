"""Callbacks: who to call (number, language, needs, reason), when they can answer (windows), by
when (deadline), the retry spacing, the manage token, the placement's reason, the outcome note;
one active request per number and agency.

Revision ID: 20261204_0007
Revises: 20261204_0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261204_0007"
down_revision: str | None = "20261204_0006"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
COLUMNS = (
    ("phone", sa.String(20)),
    ("language", sa.String(16)),
    ("reason", sa.String(500)),
    ("deadline_at", TZ),
    ("not_before", TZ),
    ("manage_token_hash", sa.String(64)),
    ("placement_reason", sa.String(40)),
    ("note", sa.String(1000)),
    ("started_at", TZ),
    ("completed_at", TZ),
)


def upgrade() -> None:
    for name, type_ in COLUMNS:
        op.add_column("callback_requests", sa.Column(name, type_))
    op.add_column(
        "callback_requests", sa.Column("priority", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.add_column(
        "callback_requests",
        sa.Column("needs", postgresql.ARRAY(sa.String()), server_default=sa.text("'{}'"), nullable=False),
    )
    op.add_column(
        "callback_requests",
        sa.Column("windows", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
    )
    op.add_column(
        "callback_requests", sa.Column("updated_at", TZ, server_default=sa.text("now()"), nullable=False)
    )
    op.create_unique_constraint(
        op.f("uq_callback_requests_manage_token_hash"), "callback_requests", ["manage_token_hash"]
    )
    op.create_index(
        "uq_callback_requests_active_phone",
        "callback_requests",
        ["agency_id", "phone"],
        unique=True,
        postgresql_where=sa.text("status IN ('requested', 'scheduled', 'in_progress')"),
    )
    op.create_index("ix_callback_requests_agency_status", "callback_requests", ["agency_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_callback_requests_agency_status", "callback_requests")
    op.drop_index("uq_callback_requests_active_phone", "callback_requests")
    op.drop_constraint(op.f("uq_callback_requests_manage_token_hash"), "callback_requests", type_="unique")
    for name in ("updated_at", "windows", "needs", "priority", *(name for name, _ in COLUMNS)):
        op.drop_column("callback_requests", name)
