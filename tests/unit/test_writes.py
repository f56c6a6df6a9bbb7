"""Guarded writes refuse a guard parameter that SQLAlchemy would turn into a ``SET`` column."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql

from orchestrator.repositories.queue_claims import TICKETS
from orchestrator.repositories.writes import GUARD_ID, RowChange, _statement, insert_guarded

GUARD = select(bindparam("guard_value").label("id"))


async def test_a_guard_parameter_named_like_a_changed_column_is_refused() -> None:
    change = RowChange(TICKETS, uuid.uuid4(), {"status": "in_service"})
    with pytest.raises(ValueError, match="walk_in_tickets"):
        # refused before anything is sent (no session needed)
        await insert_guarded(None, GUARD, {"guard_value": 1, "agency_id": uuid.uuid4()}, [change])  # type: ignore[arg-type]


def test_a_guarded_change_sets_only_its_columns_and_only_once_the_guard_returned_an_id() -> None:
    change = RowChange(TICKETS, uuid.uuid4(), {"status": "in_service", "claim_id": GUARD_ID})
    sql = str(_statement([change], GUARD).compile(dialect=postgresql.dialect()))
    update = sql[sql.index("UPDATE walk_in_tickets") :]
    assert "SET status=" in update and "claim_id=(SELECT guard.id" in update
    assert "agency_id" not in update
    assert "IS NOT NULL" in update  # nothing changes when the guard returned NULL


def _set_list(statement: object, params: list[str], table: str) -> str:
    """The SET list of ``table``'s UPDATE as SQLAlchemy compiles it for these parameter names
    (it adds any parameter named like a column of the updated table)."""
    sql = str(statement.compile(dialect=postgresql.dialect(), column_keys=params))  # type: ignore[attr-defined]
    update = sql[sql.index(f"UPDATE {table} SET") :]
    return update[: update.index(" WHERE ")]


def test_the_nested_updates_of_call_next_and_completion_set_only_their_columns() -> None:
    from orchestrator.repositories.queue_claims import _COMPLETE_TICKET
    from orchestrator.services.desk import _DESK

    desk = _set_list(_DESK, ["counsellor", "now", "due"], "callback_requests")
    assert [
        part.split("=")[0] for part in desk.removeprefix("UPDATE callback_requests SET ").split(", ")
    ] == [
        "status",
        "attempts",
        "started_at",
        "updated_at",
    ]
    done = _set_list(_COMPLETE_TICKET, ["ticket", "releasing", "to_status", "at"], "walk_in_tickets")
    assert [part.split("=")[0] for part in done.removeprefix("UPDATE walk_in_tickets SET ").split(", ")][
        :2
    ] == [
        "status",
        "claim_id",
    ]
    assert "completed_at=" in done and "agency_id" not in done and " id=" not in done
