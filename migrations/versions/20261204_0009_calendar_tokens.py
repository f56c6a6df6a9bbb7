"""Counsellors' calendar feed tokens (stored hashed; a new one revokes the old).

Revision ID: 20261204_0009
Revises: 20261204_0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "20261204_0009"
down_revision: str | None = "20261204_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("counsellors", sa.Column("calendar_token_hash", sa.String(64)))
    op.create_unique_constraint(
        op.f("uq_counsellors_calendar_token_hash"), "counsellors", ["calendar_token_hash"]
    )


def downgrade() -> None:
    op.drop_constraint(op.f("uq_counsellors_calendar_token_hash"), "counsellors", type_="unique")
    op.drop_column("counsellors", "calendar_token_hash")
