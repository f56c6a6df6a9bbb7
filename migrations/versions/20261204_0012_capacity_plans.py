"""The capacity plan: one row per agency and day (the plan as shown, with its reasons) and its
reservations of counsellors' free time, read by the ledger loader.

Revision ID: 20261204_0012
Revises: 20261204_0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261204_0012"
down_revision: str | None = "20261204_0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "capacity_plans",
        sa.Column("agency_id", sa.Uuid(), sa.ForeignKey("agencies.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("plan", postgresql.JSONB(), nullable=False),
    )
    op.create_table(
        "plan_reservations",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("agency_id", sa.Uuid(), sa.ForeignKey("agencies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column(
            "counsellor_id", sa.Uuid(), sa.ForeignKey("counsellors.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pool", sa.String(16), nullable=False),
        sa.CheckConstraint("starts_at < ends_at", name=op.f("ck_plan_reservations_start_before_end")),
        sa.CheckConstraint("pool IN ('walk_in', 'callback')", name=op.f("ck_plan_reservations_pool_known")),
    )
    op.create_index(
        "ix_plan_reservations_counsellor_range",
        "plan_reservations",
        ["counsellor_id", "starts_at", "ends_at"],
    )
    op.create_index("ix_plan_reservations_agency_day", "plan_reservations", ["agency_id", "day"])


def downgrade() -> None:
    op.drop_table("plan_reservations")
    op.drop_table("capacity_plans")
