"""The one loader of counsellors' time: one row per active counsellor, in one query.

Each row carries the counsellor's profile and desk state, their weekly rules valid in the range,
and their live claims and absences around it as epoch microseconds (``epoch_us()``) packed by
PostgreSQL into one ``bytea`` per column (``int8send``: 8 big-endian bytes each). asyncpg decodes
no ``timestamptz`` and no array element, the digest hashes the bytes as they came, and Python
integers are made only when a ledger is built (a cache miss); no ``datetime`` at all.
:class:`LedgerRows` gives a digest of everything read (the availability cache's key) and the typed
rows, built only when needed; the core turns the records
(:class:`~orchestrator.scheduling.ledger.LedgerRecord`) into ledgers (``build_ledgers``).

Claims of kinds appointment, hold and callback are the counsellor's booked time, kind service
their serving time (a walk-in in progress); both are load. Kind busy (imported or entered busy
blocks) only blocks time, like absences. Aggregates run over ordered subqueries, so identical
weekly schedules give identical rule tuples (expanded once) and equal claims equal arrays.
"""

from __future__ import annotations

import hashlib
import pickle
import sys
import uuid
from array import array
from collections.abc import Collection
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import ARRAY, Boolean, Date, DateTime, String, Uuid, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.scheduling.ledger import LedgerRange, LedgerRecord
from orchestrator.scheduling.rules import WeeklyRule
from orchestrator.scheduling.types import Mode

LEDGER_SQL = """
SELECT c.id, c.skills, c.languages, c.modes, c.name, c.on_desk, c.desk_label, c.desk_since,
       r.weekdays, r.starts, r.ends, r.modes AS rule_modes, r.quotas, r.valid_froms, r.valid_untils,
       b.starts AS booked_starts, b.ends AS booked_ends, b.serving_starts, b.serving_ends,
       u.starts AS unavailable_starts, u.ends AS unavailable_ends,
       p.starts AS reserved_starts, p.ends AS reserved_ends, p.pools AS reserved_pools
  FROM counsellors c
  LEFT JOIN LATERAL (
        SELECT array_agg(weekday) AS weekdays, array_agg(start_time) AS starts,
               array_agg(end_time) AS ends, array_agg(modes) AS modes, array_agg(quota) AS quotas,
               array_agg(valid_from) AS valid_froms, array_agg(valid_until) AS valid_untils
          FROM (SELECT weekday, start_time::text, end_time::text, array_to_string(modes, ',') AS modes,
                       quota, valid_from::text, valid_until::text
                  FROM availability_rules
                 WHERE counsellor_id = c.id
                   AND (valid_from IS NULL OR valid_from <= :last_day)
                   AND (valid_until IS NULL OR valid_until >= :first_day)
                 ORDER BY 1, 2, 3, 4, 5, 6, 7) AS rules) r ON true
  LEFT JOIN LATERAL (
        SELECT string_agg(int8send(epoch_us(starts_at)), '') FILTER (WHERE kind <> 'service') AS starts,
               string_agg(int8send(epoch_us(ends_at)), '') FILTER (WHERE kind <> 'service') AS ends,
               string_agg(int8send(epoch_us(starts_at)), '') FILTER (WHERE kind = 'service')
                 AS serving_starts,
               string_agg(int8send(epoch_us(ends_at)), '') FILTER (WHERE kind = 'service') AS serving_ends
          FROM (SELECT starts_at, ends_at, kind FROM claims
                 WHERE counsellor_id = c.id AND starts_at < :until AND ends_at > :since
                   AND kind IN ('appointment', 'hold', 'callback', 'service')
                   AND (kind <> 'hold' OR expires_at > :now)
                   AND id <> ALL(:exclude)
                 ORDER BY 1, 2) AS booked) b ON true
  LEFT JOIN LATERAL (
        SELECT string_agg(int8send(epoch_us(starts_at)), '') AS starts,
               string_agg(int8send(epoch_us(ends_at)), '') AS ends
          FROM (SELECT starts_at, ends_at FROM absences
                 WHERE counsellor_id = c.id AND starts_at < :until AND ends_at > :since
                UNION ALL
                SELECT starts_at, ends_at FROM busy_blocks
                 WHERE counsellor_id = c.id AND starts_at < :until AND ends_at > :since
                UNION ALL
                SELECT starts_at, ends_at FROM claims
                 WHERE counsellor_id = c.id AND starts_at < :until AND ends_at > :since
                   AND kind NOT IN ('appointment', 'hold', 'callback', 'service')
                   AND id <> ALL(:exclude)
                 ORDER BY 1, 2) AS blocked) u ON true
  LEFT JOIN LATERAL (
        SELECT string_agg(int8send(epoch_us(starts_at)), '') AS starts,
               string_agg(int8send(epoch_us(ends_at)), '') AS ends, array_agg(pool) AS pools
          FROM (SELECT starts_at, ends_at, pool FROM plan_reservations
                 WHERE CAST(:with_plan AS boolean) AND counsellor_id = c.id
                   AND starts_at < :until AND ends_at > :since
                 ORDER BY 1, 2, 3) AS reserved) p ON true
 WHERE c.agency_id = :agency_id AND c.active
   AND (CAST(:skill AS text) IS NULL OR CAST(:skill AS text) = ANY(c.skills))
   AND NOT (CAST(:withhold_stale AS boolean) AND EXISTS (
        SELECT 1 FROM external_calendars e JOIN agencies a ON a.id = e.agency_id
         WHERE e.counsellor_id = c.id AND a.calendar_stale_minutes > 0 AND e.url NOT LIKE 'upload:%'
           AND coalesce(e.last_success_at, e.created_at)
               < :now - a.calendar_stale_minutes * interval '1 minute'))
   AND (CAST(:ids AS uuid[]) IS NULL OR c.id = ANY(CAST(:ids AS uuid[])))
 ORDER BY c.id
"""
LEDGER_BINDS = (
    bindparam("agency_id", type_=Uuid),
    bindparam("first_day", type_=Date),
    bindparam("last_day", type_=Date),
    bindparam("since", type_=DateTime(timezone=True)),
    bindparam("until", type_=DateTime(timezone=True)),
    bindparam("now", type_=DateTime(timezone=True)),
    bindparam("skill", type_=String),
    bindparam("ids", type_=ARRAY(Uuid)),
    bindparam("exclude", type_=ARRAY(Uuid)),
    bindparam("withhold_stale", type_=Boolean),
    bindparam("with_plan", type_=Boolean),
)
_LEDGERS = text(LEDGER_SQL).bindparams(*LEDGER_BINDS)


class CounsellorRow(NamedTuple):
    """A counsellor's profile and desk state, read with their ledger (the walk-in queue's view)."""

    id: uuid.UUID
    name: str
    skills: list[str]
    languages: list[str]
    modes: list[str]
    on_desk: bool
    desk_label: str | None
    desk_since: datetime | None
    active: bool = True


def ledger_params(
    *,
    agency_id: uuid.UUID,
    span: LedgerRange,
    now: datetime,
    skill: str | None = None,
    counsellor_ids: Collection[uuid.UUID] | None = None,
    exclude_claims: Collection[uuid.UUID] = (),
    withhold_stale: bool = False,
    with_plan: bool = True,
) -> dict[str, Any]:
    """The parameters of ``LEDGER_SQL``: active counsellors of the agency (with ``skill``; only
    ``counsellor_ids`` if given), their profile and desk state, and their ledger record — rules
    valid on a day of ``span.first_day..span.last_day``, live claims (less ``exclude_claims``)
    and absences overlapping ``[span.since, span.until)``. ``withhold_stale``: leave out
    counsellors with an imported calendar not synced for longer than their agency's
    ``calendar_stale_minutes`` (their busy time is unknown: online booking must not offer them).
    ``with_plan``: relabel the free time the capacity plan reserves (False: the plan's own
    input)."""
    return {
        "agency_id": agency_id,
        "first_day": span.first_day,
        "last_day": span.last_day,
        "since": span.since,
        "until": span.until,
        "now": now,
        "skill": skill,
        "ids": list(counsellor_ids) if counsellor_ids is not None else None,
        "exclude": list(exclude_claims),
        "withhold_stale": withhold_stale,
        "with_plan": with_plan,
    }


async def load_ledger_records(session: AsyncSession, params: dict[str, Any]) -> LedgerRows:
    """The ledgers :func:`ledger_params` asks for, in one query."""
    return LedgerRows([tuple(row) for row in await session.execute(_LEDGERS, params)])


class LedgerRows:
    """What :func:`load_ledger_records` read: the raw rows, their digest (a cache key for
    anything computed from them) and the typed rows, built on demand."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows

    def digest(self) -> bytes:
        """A fingerprint of every value read: equal digests, equal ledgers (BLAKE2b, 256 bits)."""
        return hashlib.blake2b(pickle.dumps(self._rows, protocol=5), digest_size=32).digest()

    def records(self) -> list[LedgerRecord]:
        return [record for _, record in self.pairs()]

    def pairs(self) -> list[tuple[CounsellorRow, LedgerRecord]]:
        return [_pair(*row) for row in self._rows]

    def day_pairs(self) -> list[tuple[CounsellorRow, LedgerRecord]]:
        """:meth:`pairs` of rows covering a day (the queue's), memoized by the rows' values: the
        counsellors of a queue come back unchanged on most calls. The rows returned are shared:
        read them, never change them."""
        pairs = []
        for row in self._rows:
            key = tuple(tuple(value) if type(value) is list else value for value in row)
            pair = _DAY_PAIRS.get(key)
            if pair is None:
                if len(_DAY_PAIRS) >= DAY_PAIRS_KEPT:
                    _DAY_PAIRS.clear()
                pair = _DAY_PAIRS[key] = _pair(*row)
            pairs.append(pair)
        return pairs


DAY_PAIRS_KEPT = 2048  # a day's row is a few kB: a few MB at most
_DAY_PAIRS: dict[tuple[Any, ...], tuple[CounsellorRow, LedgerRecord]] = {}


def _pair(
    id: uuid.UUID,
    skills: list[str],
    languages: list[str],
    modes: list[str],
    name: str,
    on_desk: bool,
    desk_label: str | None,
    desk_since: datetime | None,
    weekdays: list[int] | None,
    starts: list[str] | None,
    ends: list[str] | None,
    rule_modes: list[str] | None,
    quotas: list[str | None] | None,
    valid_froms: list[str | None] | None,
    valid_untils: list[str | None] | None,
    booked_starts: bytes | None,
    booked_ends: bytes | None,
    serving_starts: bytes | None,
    serving_ends: bytes | None,
    unavailable_starts: bytes | None,
    unavailable_ends: bytes | None,
    reserved_starts: bytes | None = None,
    reserved_ends: bytes | None = None,
    reserved_pools: list[str] | None = None,
) -> tuple[CounsellorRow, LedgerRecord]:
    rules = zip(
        weekdays or (),
        starts or (),
        ends or (),
        rule_modes or (),
        quotas or (),
        valid_froms or (),
        valid_untils or (),
        strict=True,
    )
    return (
        CounsellorRow(id, name, skills, languages, modes, on_desk, desk_label, desk_since),
        LedgerRecord(
            id=str(id),
            skills=frozenset(skills),
            languages=frozenset(languages),
            modes=_modes(tuple(modes)),
            rules=_rules(tuple(rules)),
            # flat tuples of ints (the core pairs them up)
            booked_starts=_micros(booked_starts),
            booked_ends=_micros(booked_ends),
            unavailable_starts=_micros(unavailable_starts),
            unavailable_ends=_micros(unavailable_ends),
            serving_starts=_micros(serving_starts),
            serving_ends=_micros(serving_ends),
            reserved_starts=_micros(reserved_starts),
            reserved_ends=_micros(reserved_ends),
            reserved_pools=tuple(reserved_pools or ()),
        ),
    )


def _micros(packed: bytes | None) -> tuple[int, ...]:
    """Epoch microseconds packed by PostgreSQL (``int8send``: 8 bytes each, big-endian)."""
    if not packed:
        return ()
    values = array("q")
    values.frombytes(packed)
    if sys.byteorder == "little":
        values.byteswap()
    return tuple(values)


@lru_cache(maxsize=4096)
def _rules(rows: tuple[tuple[Any, ...], ...]) -> tuple[WeeklyRule, ...]:
    """Weekly rules from their columns (memoized: the same schedules come back on every request).
    Times and dates come as ISO text: cheap to hash into the digest, unlike ``time`` objects."""
    return tuple(
        WeeklyRule(
            weekday,
            time.fromisoformat(start),
            time.fromisoformat(end),
            _modes(tuple(modes.split(","))),
            quota,
            date.fromisoformat(valid_from) if valid_from else None,
            date.fromisoformat(valid_until) if valid_until else None,
        )
        for weekday, start, end, modes, quota, valid_from, valid_until in rows
    )


@lru_cache(maxsize=256)
def _modes(names: tuple[str, ...]) -> frozenset[Mode]:
    return frozenset(Mode(m) for m in names)
