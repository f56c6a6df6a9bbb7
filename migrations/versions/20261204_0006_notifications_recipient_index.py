"""Index the outbox by recipient and send time (the per-number limit reads it before every send),
and inbound events by sender and time (the inbound per-number limit reads it on every text).

Revision ID: 20261204_0006
Revises: 20261204_0005
"""

from __future__ import annotations

from alembic import op

revision: str = "20261204_0006"
down_revision: str | None = "20261204_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_notifications_recipient_sent", "notifications", ["recipient", "sent_at"])
    op.execute("CREATE INDEX ix_inbound_events_from ON inbound_events ((payload ->> 'From'), received_at)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_inbound_events_from")
    op.drop_index("ix_notifications_recipient_sent", "notifications")
