"""New rows written in one round trip.

An ORM object built in memory (not added to the session) becomes a Core ``INSERT`` of the
attributes that were set (:func:`insert_of`); :func:`insert_together` sends several such inserts
as one statement, the first ones as data-modifying ``WITH`` clauses. PostgreSQL runs every clause
exactly once and checks foreign keys at the end of the statement, so a row may reference one
inserted by an earlier clause (an appointment its new job seeker). Used where a request creates
several rows at once (a booking: job seeker, appointment, audit event, notifications).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Insert, insert, inspect
from sqlalchemy.ext.asyncio import AsyncSession


def insert_of(entity: Any) -> Insert:
    """An ``INSERT`` of a new ORM object's set column attributes (an ``id`` is given if none)."""
    if getattr(entity, "id", None) is None:
        entity.id = uuid.uuid4()
    state = entity.__dict__
    values = {attr.key: state[attr.key] for attr in inspect(type(entity)).column_attrs if attr.key in state}
    return insert(type(entity)).values(**values)


async def insert_together(session: AsyncSession, statements: Sequence[Insert]) -> None:
    """Run ``statements`` in order as one statement: one round trip."""
    if not statements:
        return
    *first, last = statements
    if first:
        last = last.add_cte(*(statement.cte(f"write_{i}") for i, statement in enumerate(first)))
    await session.execute(last)
