"""Writes refuse a parameter that SQLAlchemy would turn into a ``SET`` column; a prebuilt
change runs only once the guard returned an id."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql

from orchestrator.models import Notification
from orchestrator.repositories.appointments import changed, reminders_withdrawn
from orchestrator.repositories.queue_claims import TICKETS
from orchestrator.repositories.writes import (
    GUARD_ID,
    Prebuilt,
    RowChange,
    _statement,
    insert_guarded,
    write_together,
)

GUARD = select(bindparam("guard_value").label("id"))


async def test_a_guard_parameter_named_like_a_changed_column_is_refused() -> None:
    change = RowChange(TICKETS, uuid.uuid4(), {"status": "in_service"})
    with pytest.raises(ValueError, match="walk_in_tickets"):
        # refused before anything is sent (no session needed)
        await insert_guarded(None, GUARD, {"guard_value": 1, "agency_id": uuid.uuid4()}, [change])  # type: ignore[arg-type]


async def test_a_prebuilt_update_whose_parameter_is_named_like_its_column_is_refused() -> None:
    from sqlalchemy import update

    clashing = update(Notification).where(Notification.id == bindparam("status")).values(last_error="x")
    with pytest.raises(ValueError, match=r"\['status'\].*notifications"):
        await write_together(None, [Prebuilt(clashing, {"status": uuid.uuid4()})])  # type: ignore[arg-type]


def test_an_appointment_change_and_its_reminders_withdrawal_set_only_their_columns() -> None:
    from orchestrator.models import Appointment

    appointment = Appointment(id=uuid.uuid4(), status="confirmed", sequence=0)
    change = changed(appointment, status="cancelled", sequence=1)
    assert (appointment.status, appointment.sequence) == ("cancelled", 1)  # the object follows the row
    rows = [change, reminders_withdrawn(appointment.id)]
    sql = str(_statement(rows, GUARD).compile(dialect=postgresql.dialect()))
    withdrawal = sql[sql.index("UPDATE notifications SET") :]
    sets = "SET status=%(param_1)s::VARCHAR, last_error=%(param_2)s::VARCHAR WHERE"
    assert withdrawal.startswith(f"UPDATE notifications {sets}")
    assert withdrawal.count("IS NOT NULL") == 1  # guarded like every other write
    moved = sql[sql.index("UPDATE appointments SET") :]
    assert moved.startswith(
        "UPDATE appointments SET status=%(r0_status)s::VARCHAR, sequence=%(r0_sequence)s::INTEGER WHERE"
    )


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
