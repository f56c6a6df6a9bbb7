"""Counsellors' external calendars (ICS URLs) and the busy blocks imported from them.

Busy blocks are their own table, outside the no-overlap constraint: an outside meeting may collide
with a booked appointment, which is a conflict to flag, not a write to refuse.

Revision ID: 20261204_0010
Revises: 20261204_0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "20261204_0010"
down_revision: str | None = "20261204_0009"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "external_calendars",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("agency_id", sa.Uuid(), sa.ForeignKey("agencies.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "counsellor_id", sa.Uuid(), sa.ForeignKey("counsellors.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("etag", sa.String(200)),
        sa.Column("last_modified", sa.String(100)),
        sa.Column("last_attempt_at", TZ),
        sa.Column("last_success_at", TZ),
        sa.Column("last_error", sa.String(300)),
        sa.Column("busy_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
    )
    op.create_index("ix_external_calendars_agency_id", "external_calendars", ["agency_id"])
    op.create_index("ix_external_calendars_counsellor_id", "external_calendars", ["counsellor_id"])
    op.create_table(
        "busy_blocks",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "counsellor_id", sa.Uuid(), sa.ForeignKey("counsellors.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "calendar_id",
            sa.Uuid(),
            sa.ForeignKey("external_calendars.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("starts_at", TZ, nullable=False),
        sa.Column("ends_at", TZ, nullable=False),
        sa.CheckConstraint("starts_at < ends_at", name=op.f("ck_busy_blocks_start_before_end")),
    )
    op.create_index(
        "ix_busy_blocks_counsellor_range", "busy_blocks", ["counsellor_id", "starts_at", "ends_at"]
    )
    op.create_index("ix_busy_blocks_calendar_id", "busy_blocks", ["calendar_id"])


def downgrade() -> None:
    op.drop_table("busy_blocks")
    op.drop_table("external_calendars")
