"""claim_time(): a counsellor's time claimed in one round trip.

The advisory lock on the counsellor (and on the replaced claim's counsellor), the removal of
lapsed holds in the range, the release of the claim being replaced and the insert run in one
PL/pgSQL block. Its EXCEPTION clause is a subtransaction: on an overlap (the exclusion
constraint) everything it did, locks included, is undone and it returns NULL, like the savepoint
it replaces. The lock key is the first 8 bytes of the counsellor id as a signed big-endian
integer, the key ``repositories.calendars.lock_key`` computes for the desk's locks.

Revision ID: 20261204_0003
Revises: 20261204_0002
"""

from __future__ import annotations

from alembic import op

revision: str = "20261204_0003"
down_revision: str | None = "20261204_0002"
branch_labels = None
depends_on = None

LOCK_KEY = """
CREATE FUNCTION counsellor_lock_key(counsellor uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ('x' || left(replace(counsellor::text, '-', ''), 16))::bit(64)::bigint $$
"""

CLAIM_TIME = """
CREATE FUNCTION claim_time(
    p_agency uuid, p_counsellor uuid, p_starts timestamptz, p_ends timestamptz, p_kind text,
    p_now timestamptz, p_expires timestamptz, p_replacing uuid
) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    claimed uuid := gen_random_uuid();
BEGIN
    PERFORM pg_advisory_xact_lock(k)
       FROM (SELECT DISTINCT counsellor_lock_key(c) AS k
               FROM unnest(ARRAY[p_counsellor,
                                 (SELECT counsellor_id FROM claims WHERE id = p_replacing)]) AS c
              WHERE c IS NOT NULL ORDER BY 1) AS keys;
    DELETE FROM claims
     WHERE counsellor_id = p_counsellor AND kind = 'hold' AND expires_at <= p_now
       AND starts_at < p_ends AND ends_at > p_starts;
    IF p_replacing IS NOT NULL THEN
        DELETE FROM claims WHERE id = p_replacing;
    END IF;
    INSERT INTO claims (id, agency_id, counsellor_id, starts_at, ends_at, kind, expires_at)
    VALUES (claimed, p_agency, p_counsellor, p_starts, p_ends, p_kind, p_expires);
    RETURN claimed;
EXCEPTION WHEN exclusion_violation THEN
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.execute(LOCK_KEY)
    op.execute(CLAIM_TIME)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION claim_time(uuid, uuid, timestamptz, timestamptz, text, timestamptz, timestamptz, uuid)"
    )
    op.execute("DROP FUNCTION counsellor_lock_key(uuid)")
