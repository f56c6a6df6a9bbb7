"""The transition tables: every allowed move, and every other (status, action) pair refused."""

from __future__ import annotations

import itertools

import pytest

from orchestrator.scheduling.transitions import (
    APPOINTMENT,
    CALLBACK,
    TICKET,
    AppointmentStatus,
    BadTransition,
    TicketStatus,
    Transitions,
)

# The moves the services relied on before the tables existed (tickets.py / arrivals.py / booking.py).
ALLOWED = {
    APPOINTMENT: {
        ("confirmed", "check_in"): "checked_in",
        ("checked_in", "start"): "in_progress",
        ("in_progress", "complete"): "completed",
        ("confirmed", "no_show"): "no_show",
        ("checked_in", "no_show"): "no_show",
        ("in_progress", "no_show"): "no_show",
        ("confirmed", "cancel"): "cancelled",
        ("checked_in", "cancel"): "cancelled",
        ("confirmed", "reschedule"): "confirmed",
    },
    TICKET: {
        ("waiting", "call"): "called",
        ("called", "recall"): "called",
        ("called", "start"): "in_service",
        ("in_service", "complete"): "completed",
        ("called", "requeue"): "waiting",
        ("waiting", "no_show"): "no_show",
        ("called", "no_show"): "no_show",
        ("waiting", "cancel"): "cancelled",
        ("called", "cancel"): "cancelled",
        ("waiting", "transfer"): "waiting",
        ("called", "transfer"): "waiting",
        ("in_service", "transfer"): "waiting",
    },
}


@pytest.mark.parametrize("table", [APPOINTMENT, TICKET], ids=lambda t: t.entity)
def test_exactly_the_documented_moves_are_allowed(table: Transitions) -> None:  # type: ignore[type-arg]
    for status, action in itertools.product(table.status, table.actions):
        expected = ALLOWED[table].get((status.value, action))
        if expected is None:
            with pytest.raises(BadTransition) as refused:
                table.move(action, status.value)
            assert refused.value.current == status
            assert str(refused.value).startswith(f"the {table.entity} is {status.value}; it cannot be")
        else:
            assert table.move(action, status.value).target == expected


def test_terminal_statuses_allow_nothing() -> None:
    for table, terminal in [
        (APPOINTMENT, ("completed", "cancelled", "no_show")),
        (TICKET, ("completed", "cancelled", "no_show")),
        (CALLBACK, ("completed", "cancelled")),
    ]:
        for status in terminal:
            assert table.allowed(status) == [], (table.entity, status)


def test_cancelling_a_checked_in_appointment_changes_the_board() -> None:
    # the bug the tables fix: this move used to publish no live event
    move = APPOINTMENT.move("cancel", AppointmentStatus.CHECKED_IN)
    assert move.event == "cancelled"
    assert APPOINTMENT.changes_board(move, "checked_in")
    assert not APPOINTMENT.changes_board(APPOINTMENT.move("cancel", "confirmed"), "confirmed")


def test_every_ticket_move_emits_an_event_and_changes_the_board() -> None:
    for action in TICKET.actions:
        source = next(s for s in TicketStatus if action in TICKET.allowed(s))
        move = TICKET.move(action, source)
        assert move.event is not None
        assert TICKET.changes_board(move, source)


def test_unknown_status_is_a_value_error_not_a_silent_refusal() -> None:
    with pytest.raises(ValueError, match="bogus"):
        TICKET.move("call", "bogus")


def test_allowed_lists_actions_in_table_order() -> None:
    assert TICKET.allowed("called") == ["recall", "start", "requeue", "no_show", "cancel", "transfer"]
    assert CALLBACK.allowed("requested") == ["schedule", "call_early", "cancel"]
