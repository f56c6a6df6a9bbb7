"""epoch_us(): a timestamptz as integer microseconds since the Unix epoch.

The ledger loader (``repositories/ledgers.py``) sends counsellors' claims and absences as
``int8`` arrays of these: the core's time unit, decoded by asyncpg without building a
``datetime`` per value. A one-line SQL function, inlined by the planner.

Revision ID: 20261204_0004
Revises: 20261204_0003
"""

from __future__ import annotations

from alembic import op

revision: str = "20261204_0004"
down_revision: str | None = "20261204_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE FUNCTION epoch_us(moment timestamptz) RETURNS int8 LANGUAGE sql STABLE PARALLEL SAFE "
        "AS $$ SELECT (extract(epoch FROM moment) * 1000000)::int8 $$"
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION epoch_us(timestamptz)")
