"""New rows written in one round trip, with statements built once.

A new row is a table and its values (:class:`NewRow`; :func:`row_of` reads one from an ORM object
built in memory, not added to the session). :func:`write_together` sends several rows as one
statement, the first ones as data-modifying ``WITH`` clauses. PostgreSQL runs every clause
exactly once and checks foreign keys at the end of the statement, so a row may reference one
inserted by an earlier clause (an appointment its new job seeker). Used where a request creates
several rows at once (a booking: job seeker, appointment, audit event, notifications).

A guarded write (:func:`insert_guarded`) puts a statement that returns an id first (the claim
of counsellor time, ``claim_time()``; a ticket's update) and writes the rows only if that id is
not NULL; a row's value :data:`GUARD_ID` stands for that id (an appointment's ``claim_id``). A
booking's claim and its rows are then one statement, and a lost race writes nothing. Besides new
rows, such a write may change existing ones by id (:class:`RowChange`: a started ticket's status
and claim).

The statement depends only on the *shape* of the rows (tables, columns, conflict targets), so it
is built once per shape with bound parameters and kept: a booking pays for binding its values,
not for building and compiling an ``INSERT`` per row (that was a quarter of a booking's CPU).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    CTE,
    CursorResult,
    Delete,
    Executable,
    Table,
    Update,
    bindparam,
    inspect,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

SHAPES_KEPT = 256  # distinct row shapes whose statement is kept (a handful occur in practice)


class _GuardId:
    def __repr__(self) -> str:
        return "GUARD_ID"


GUARD_ID: Any = _GuardId()  # a row value standing for the id the guard of the same statement returns


@dataclass(frozen=True, slots=True)
class NewRow:
    """One row to insert; ``skip_duplicate``: ``ON CONFLICT (those columns) DO NOTHING``."""

    table: Table
    values: dict[str, Any]
    skip_duplicate: tuple[str, ...] = ()

    def shape(self) -> tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        guarded = tuple(key for key, value in self.values.items() if value is GUARD_ID)
        return self.table.name, tuple(self.values), self.skip_duplicate, guarded

    def params(self, i: int) -> dict[str, Any]:
        return {f"r{i}_{key}": value for key, value in self.values.items() if value is not GUARD_ID}


@dataclass(frozen=True, slots=True)
class RowChange:
    """``values`` to set on the row ``id`` of ``table`` (a row not loaded into the session)."""

    table: Table
    id: Any
    values: dict[str, Any]

    def shape(self) -> tuple[str, str, tuple[str, ...], tuple[str, ...]]:
        guarded = tuple(key for key, value in self.values.items() if value is GUARD_ID)
        return "update", self.table.name, tuple(self.values), guarded

    def params(self, i: int) -> dict[str, Any]:
        values = {f"r{i}_{key}": value for key, value in self.values.items() if value is not GUARD_ID}
        return {f"r{i}__id": self.id, **values}


@dataclass(frozen=True, slots=True)
class Prebuilt:
    """An ``UPDATE`` or ``DELETE`` built once (at import) and the values of its bound parameters,
    for changes that are not one row by id (a claim released, an appointment's reminders
    withdrawn). Its parameters are named unlike any column of a table the statement updates."""

    statement: Update | Delete
    values: dict[str, Any]

    def shape(self) -> tuple[str, int, tuple[str, ...]]:
        return "prebuilt", id(self.statement), tuple(self.values)

    def params(self, i: int) -> dict[str, Any]:
        return self.values


Write = NewRow | RowChange | Prebuilt


def row_of(entity: Any) -> NewRow:
    """The row of a new ORM object: its set column attributes (an ``id`` is given if none)."""
    if getattr(entity, "id", None) is None:
        entity.id = uuid.uuid4()
    state = entity.__dict__
    mapper = inspect(type(entity))
    values = {attr.columns[0].key: state[attr.key] for attr in mapper.column_attrs if attr.key in state}
    return NewRow(mapper.local_table, values)


_STATEMENTS: dict[tuple[Any, ...], Executable] = {}


def _statement(
    rows: Sequence[Write], guard: Executable | None = None, guard_keys: tuple[str, ...] = ()
) -> Executable:
    shape = (id(guard), guard_keys, *(row.shape() for row in rows))
    statement = _STATEMENTS.get(shape)
    if statement is None:
        _check_names(rows, guard, {*guard_keys, *_params(rows)})
        if len(_STATEMENTS) >= SHAPES_KEPT:
            _STATEMENTS.clear()
        statement = _STATEMENTS[shape] = _build(rows, guard)
    return statement


def _check_names(rows: Sequence[Write], guard: Any, params: set[str]) -> None:
    """Refuse a parameter named like a column of a table an ``UPDATE`` of the statement changes:
    SQLAlchemy would add it to that ``UPDATE``'s ``SET`` list, even inside a ``WITH``."""
    updates: list[Any] = [row.table for row in rows if isinstance(row, RowChange)]
    updates += [
        one.table
        for one in (guard, *(row.statement for row in rows if isinstance(row, Prebuilt)))
        if isinstance(one, Update)
    ]
    for table in updates:
        if clash := sorted(key for key in params if key in table.c):
            raise ValueError(f"parameters {clash} are named like columns of {table.name}")


def _build(rows: Sequence[Write], guard: Any) -> Executable:
    guarded = guard.cte("guard") if guard is not None else None
    inserts = [_write(i, row, guarded) for i, row in enumerate(rows)]
    statement: Executable
    if guarded is not None:
        statement = select(guarded.c.id).add_cte(*(one.cte(f"write_{i}") for i, one in enumerate(inserts)))
        return statement
    *first, last = inserts
    statement = last.add_cte(*(one.cte(f"write_{i}") for i, one in enumerate(first))) if first else last
    return statement


def _value(i: int, row: NewRow | RowChange, key: str, guard_id: Any) -> Any:
    """The SQL of one value: its bound parameter, or ``guard_id`` for :data:`GUARD_ID`."""
    if row.values[key] is GUARD_ID:
        assert guard_id is not None, "GUARD_ID needs a guard"
        return guard_id
    return bindparam(f"r{i}_{key}", type_=row.table.c[key].type)


def _write(i: int, row: Write, guarded: CTE | None) -> Any:
    if isinstance(row, NewRow):
        return _insert(i, row, guarded)
    if isinstance(row, RowChange):
        return _change(i, row, guarded)
    if guarded is None:
        return row.statement
    return row.statement.where(select(guarded.c.id).scalar_subquery().is_not(None))


def _insert(i: int, row: NewRow, guarded: CTE | None) -> Any:
    guard_id = guarded.c.id if guarded is not None else None
    if guarded is None:
        one = insert(row.table).values({key: _value(i, row, key, guard_id) for key in row.values})
    else:
        chosen = select(*(_value(i, row, key, guard_id).label(key) for key in row.values))
        one = insert(row.table).from_select(
            list(row.values), chosen.where(guarded.c.id.is_not(None)).select_from(guarded)
        )
    if row.skip_duplicate:
        one = one.on_conflict_do_nothing(index_elements=list(row.skip_duplicate))
    return one


def _change(i: int, row: RowChange, guarded: CTE | None) -> Any:
    table = row.table
    guard_id = select(guarded.c.id).scalar_subquery() if guarded is not None else None
    one = update(table).where(table.c.id == bindparam(f"r{i}__id", type_=table.c.id.type))
    if guard_id is not None:
        one = one.where(guard_id.is_not(None))
    return one.values({key: _value(i, row, key, guard_id) for key in row.values})


async def write_together(session: AsyncSession, rows: Sequence[Write]) -> int:
    """Write ``rows`` as one statement (one round trip); returns the number of rows the *last*
    one wrote (0 when it was a skipped duplicate)."""
    if not rows:
        return 0
    statement = _statement(rows)
    result: CursorResult[Any] = await session.execute(statement, _params(rows))  # type: ignore[assignment]
    return result.rowcount


async def insert_guarded(
    session: AsyncSession, guard: Executable, guard_params: dict[str, Any], rows: Sequence[Write]
) -> Any:
    """Run ``guard`` (a statement built once returning one column ``id``: a ``SELECT``, or an
    ``UPDATE … RETURNING``) and, only if the id it returns is not NULL, write ``rows`` — one
    statement; returns the id.

    No parameter may be named like a column of a table an ``UPDATE`` of the statement changes
    (``ValueError`` when the statement is first built): SQLAlchemy would add it to that
    ``UPDATE``'s ``SET`` list."""
    statement = _statement(rows, guard, tuple(guard_params))
    return await session.scalar(statement, {**guard_params, **_params(rows)})


def _params(rows: Sequence[Write]) -> dict[str, Any]:
    return {key: value for i, row in enumerate(rows) for key, value in row.params(i).items()}
