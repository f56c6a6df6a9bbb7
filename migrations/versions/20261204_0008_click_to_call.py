"""Click-to-call: a counsellor's phone (the app rings it, then bridges to the job seeker) and the
call placed for a callback (Twilio's CallSid and its last status).

Revision ID: 20261204_0008
Revises: 20261204_0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "20261204_0008"
down_revision: str | None = "20261204_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("counsellors", sa.Column("phone", sa.String(20)))
    op.add_column("callback_requests", sa.Column("call_sid", sa.String(64)))
    op.add_column("callback_requests", sa.Column("call_status", sa.String(20)))


def downgrade() -> None:
    op.drop_column("callback_requests", "call_status")
    op.drop_column("callback_requests", "call_sid")
    op.drop_column("counsellors", "phone")
