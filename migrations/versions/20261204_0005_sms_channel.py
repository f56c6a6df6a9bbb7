"""SMS channel: what a message was (body, encoding, segments), its delivery, its deadline;
one row per phone number (opt-out, unreachable, the SMS conversation); agencies' SMS number,
inbound switch and daily budget; the reply given to each inbound webhook (for retries).

Revision ID: 20261204_0005
Revises: 20261204_0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261204_0005"
down_revision: str | None = "20261204_0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
OLD_STATUSES = "'pending', 'sending', 'sent', 'delivered', 'failed', 'skipped'"
STATUSES = (
    "'pending', 'sending', 'queued', 'sent', 'delivered', 'undelivered', 'failed', "
    "'expired', 'cancelled', 'skipped'"
)


def upgrade() -> None:
    for column in (
        sa.Column("body", sa.Text()),
        sa.Column("encoding", sa.String(8)),
        sa.Column("segments", sa.Integer()),
        sa.Column("error_code", sa.Integer()),
        sa.Column("expires_at", TZ),
        sa.Column("claimed_at", TZ),
        sa.Column("delivered_at", TZ),
    ):
        op.add_column("notifications", column)
    op.drop_constraint(op.f("ck_notifications_status_known"), "notifications", type_="check")
    op.create_check_constraint(
        op.f("ck_notifications_status_known"), "notifications", f"status IN ({STATUSES})"
    )
    op.create_index("ix_notifications_agency_sent", "notifications", ["agency_id", "sent_at"])
    op.create_index("ix_notifications_appointment_id", "notifications", ["appointment_id"])
    op.add_column("inbound_events", sa.Column("response", sa.Text()))
    op.add_column("agencies", sa.Column("sms_number", sa.String(20)))
    op.create_unique_constraint(op.f("uq_agencies_sms_number"), "agencies", ["sms_number"])
    op.add_column(
        "agencies",
        sa.Column("sms_inbound_enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
    )
    op.add_column(
        "agencies", sa.Column("sms_daily_budget", sa.Integer(), server_default=sa.text("500"), nullable=False)
    )
    op.create_table(
        "phone_contacts",
        sa.Column("phone", sa.String(20), primary_key=True),
        sa.Column("language", sa.String(16)),
        sa.Column("opted_out_at", TZ),
        sa.Column("unreachable_at", TZ),
        sa.Column("unreachable_code", sa.Integer()),
        sa.Column("conversation", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.text("now()"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("phone_contacts")
    op.drop_column("agencies", "sms_daily_budget")
    op.drop_column("agencies", "sms_inbound_enabled")
    op.drop_constraint(op.f("uq_agencies_sms_number"), "agencies", type_="unique")
    op.drop_column("agencies", "sms_number")
    op.drop_column("inbound_events", "response")
    op.drop_index("ix_notifications_appointment_id", "notifications")
    op.drop_index("ix_notifications_agency_sent", "notifications")
    op.execute("DELETE FROM notifications WHERE status NOT IN (" + OLD_STATUSES + ")")  # noqa: S608 (constants)
    op.drop_constraint(op.f("ck_notifications_status_known"), "notifications", type_="check")
    op.create_check_constraint(
        op.f("ck_notifications_status_known"), "notifications", f"status IN ({OLD_STATUSES})"
    )
    for column in ("delivered_at", "claimed_at", "expires_at", "error_code", "segments", "encoding", "body"):
        op.drop_column("notifications", column)
