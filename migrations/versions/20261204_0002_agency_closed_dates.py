"""Agencies: closed dates (public holidays, exceptional closures) next to weekly opening hours.

Revision ID: 20261204_0002
Revises: 20261125_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261204_0002"
down_revision: str | None = "20261125_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "agencies",
        sa.Column(
            "closed_dates", postgresql.ARRAY(sa.Date()), server_default=sa.text("'{}'"), nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_column("agencies", "closed_dates")
