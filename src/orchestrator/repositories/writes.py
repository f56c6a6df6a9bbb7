"""New rows written in one round trip, with statements built once.

A new row is a table and its values (:class:`NewRow`; :func:`row_of` reads one from an ORM object
built in memory, not added to the session). :func:`insert_together` sends several rows as one
statement, the first ones as data-modifying ``WITH`` clauses. PostgreSQL runs every clause
exactly once and checks foreign keys at the end of the statement, so a row may reference one
inserted by an earlier clause (an appointment its new job seeker). Used where a request creates
several rows at once (a booking: job seeker, appointment, audit event, notifications).

The statement depends only on the *shape* of the rows (tables, columns, conflict targets), so it
is built once per shape with bound parameters and kept: a booking pays for binding its values,
not for building and compiling an ``INSERT`` per row (that was a quarter of a booking's CPU).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CursorResult, Executable, Table, bindparam, inspect
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

SHAPES_KEPT = 256  # distinct row shapes whose statement is kept (a handful occur in practice)


@dataclass(frozen=True, slots=True)
class NewRow:
    """One row to insert; ``skip_duplicate``: ``ON CONFLICT (those columns) DO NOTHING``."""

    table: Table
    values: dict[str, Any]
    skip_duplicate: tuple[str, ...] = ()

    def shape(self) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
        return self.table.name, tuple(self.values), self.skip_duplicate


def row_of(entity: Any) -> NewRow:
    """The row of a new ORM object: its set column attributes (an ``id`` is given if none)."""
    if getattr(entity, "id", None) is None:
        entity.id = uuid.uuid4()
    state = entity.__dict__
    mapper = inspect(type(entity))
    values = {attr.columns[0].key: state[attr.key] for attr in mapper.column_attrs if attr.key in state}
    return NewRow(mapper.local_table, values)


_STATEMENTS: dict[tuple[Any, ...], Executable] = {}


def _statement(rows: Sequence[NewRow]) -> Executable:
    shape = tuple(row.shape() for row in rows)
    statement = _STATEMENTS.get(shape)
    if statement is None:
        if len(_STATEMENTS) >= SHAPES_KEPT:
            _STATEMENTS.clear()
        statement = _STATEMENTS[shape] = _build(rows)
    return statement


def _build(rows: Sequence[NewRow]) -> Executable:
    inserts = []
    for i, row in enumerate(rows):
        columns = row.table.c
        one = insert(row.table).values(
            {key: bindparam(f"r{i}_{key}", type_=columns[key].type) for key in row.values}
        )
        if row.skip_duplicate:
            one = one.on_conflict_do_nothing(index_elements=list(row.skip_duplicate))
        inserts.append(one)
    *first, last = inserts
    if first:
        return last.add_cte(*(one.cte(f"write_{i}") for i, one in enumerate(first)))
    return last


async def insert_together(session: AsyncSession, rows: Sequence[NewRow]) -> int:
    """Insert ``rows`` in order as one statement (one round trip); returns the number of rows
    the *last* one inserted (0 when it was a skipped duplicate)."""
    if not rows:
        return 0
    params = {f"r{i}_{key}": value for i, row in enumerate(rows) for key, value in row.values.items()}
    result: CursorResult[Any] = await session.execute(_statement(rows), params)  # type: ignore[assignment]
    return result.rowcount
