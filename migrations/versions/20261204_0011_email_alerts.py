"""E-mail: who is told of an agency's calendar problems, and when an import counts as stale.

``alert_email``: the managers' address for staff alerts (sync failures, conflicts).
``calendar_stale_minutes``: an external calendar not synced for this long withholds its
counsellor's online slots (0: never).

Revision ID: 20261204_0011
Revises: 20261204_0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "20261204_0011"
down_revision: str | None = "20261204_0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("agencies", sa.Column("alert_email", sa.String(320)))
    op.add_column(
        "agencies",
        sa.Column("calendar_stale_minutes", sa.Integer(), server_default=sa.text("360"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("agencies", "calendar_stale_minutes")
    op.drop_column("agencies", "alert_email")
