"""Statuses and their allowed moves, one pure table per entity (appointment, ticket, callback).

Services never compare status strings: they ask the table for a move (``APPOINTMENT.move(
"check_in", current)``), get the target status and the live event the move emits, or a
:class:`BadTransition` (rendered by every channel as "cannot do that now"). The database keeps
the same values (``status_known`` check constraints), so the enums are plain ``StrEnum``s.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar


class AppointmentStatus(StrEnum):
    CONFIRMED = "confirmed"
    CHECKED_IN = "checked_in"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


class TicketStatus(StrEnum):
    WAITING = "waiting"
    CALLED = "called"
    IN_SERVICE = "in_service"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


class CallbackStatus(StrEnum):
    REQUESTED = "requested"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


S = TypeVar("S", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class Move(Generic[S]):
    """One allowed move: from any of ``sources`` to ``target``, emitting ``event`` (if any)."""

    action: str
    sources: frozenset[S]
    target: S
    event: str | None
    verb: str  # how the action reads in an error: "it cannot be <verb>"

    @property
    def live_event(self) -> str:
        """The live event this move publishes (``ValueError`` for a move that emits none)."""
        if self.event is None:
            raise ValueError(f"the move {self.action!r} emits no event")
        return self.event


class BadTransition(Exception):
    """The entity's current status does not allow the action."""

    def __init__(
        self, entity: str, action: str, verb: str, current: StrEnum, label: str | None = None
    ) -> None:
        super().__init__(f"{label or 'the ' + entity} is {current}; it cannot be {verb}")
        self.entity, self.action, self.current = entity, action, current


class Transitions(Generic[S]):
    """The transition table of one entity."""

    def __init__(self, entity: str, status: type[S], on_board: Iterable[S], moves: Iterable[Move[S]]) -> None:
        self.entity = entity
        self.status: type[S] = status
        self.on_board: frozenset[S] = frozenset(on_board)
        self._moves: dict[str, Move[S]] = {m.action: m for m in moves}

    def move(self, action: str, current: str, *, label: str | None = None) -> Move[S]:
        """The move ``action`` from status ``current``; :class:`BadTransition` if not allowed
        (its message names the entity by ``label``, e.g. "ticket A042", when given).

        Raises ``KeyError`` for an action the table does not know (a programming error)."""
        move = self._moves[action]
        status = self.status(current)
        if status not in move.sources:
            raise BadTransition(self.entity, action, move.verb, status, label)
        return move

    def allowed(self, current: str) -> list[str]:
        """Actions allowed from ``current``, in table order (for consoles and SMS/voice menus)."""
        status = self.status(current)
        return [action for action, move in self._moves.items() if status in move.sources]

    def changes_board(self, move: Move[S], current: str) -> bool:
        """Whether the move changes what the agency's queue board shows (so must be published)."""
        return self.status(current) in self.on_board or move.target in self.on_board

    @property
    def actions(self) -> list[str]:
        return list(self._moves)


def _moves(status: type[S], rows: Iterable[tuple[str, str, str, str | None, str]]) -> list[Move[S]]:
    return [
        Move(action, frozenset(status(s) for s in sources.split()), status(target), event, verb)
        for action, sources, target, event, verb in rows
    ]


# A confirmed appointment is on a counsellor's calendar; once checked in it is on the board.
APPOINTMENT: Transitions[AppointmentStatus] = Transitions(
    "appointment",
    AppointmentStatus,
    on_board=(AppointmentStatus.CHECKED_IN, AppointmentStatus.IN_PROGRESS),
    moves=_moves(
        AppointmentStatus,
        [
            # action       from                              to            event          verb
            ("check_in", "confirmed", "checked_in", "checked_in", "checked in"),
            ("start", "checked_in", "in_progress", "called", "started"),
            ("complete", "in_progress", "completed", "completed", "completed"),
            ("no_show", "confirmed checked_in in_progress", "no_show", "no_show", "a no-show"),
            ("cancel", "confirmed checked_in", "cancelled", "cancelled", "cancelled"),
            ("reschedule", "confirmed", "confirmed", None, "moved"),
        ],
    ),
)

TICKET: Transitions[TicketStatus] = Transitions(
    "ticket",
    TicketStatus,
    on_board=(TicketStatus.WAITING, TicketStatus.CALLED, TicketStatus.IN_SERVICE),
    moves=_moves(
        TicketStatus,
        [
            ("call", "waiting", "called", "called", "called"),
            ("recall", "called", "called", "recalled", "recalled"),
            ("start", "called", "in_service", "started", "started"),
            ("complete", "in_service", "completed", "completed", "completed"),
            ("requeue", "called", "waiting", "requeued", "put back in the queue"),
            ("no_show", "waiting called", "no_show", "no_show", "marked as a no-show"),
            ("cancel", "waiting called", "cancelled", "cancelled", "cancelled"),
            ("transfer", "waiting called in_service", "waiting", "transferred", "transferred"),
        ],
    ),
)

# Callbacks: requested → scheduled (planned into a counsellor's gap) → in_progress (dialling)
# → completed | failed; a failed attempt may be planned again; a lost claim race re-plans.
CALLBACK: Transitions[CallbackStatus] = Transitions(
    "callback",
    CallbackStatus,
    on_board=(),
    moves=_moves(
        CallbackStatus,
        [
            ("schedule", "requested", "scheduled", "callback.scheduled", "scheduled"),
            ("replan", "scheduled failed", "requested", "callback.replanned", "planned again"),
            ("dial", "scheduled", "in_progress", "callback.dialling", "dialled"),
            ("call_early", "requested scheduled", "in_progress", "callback.started", "called early"),
            ("retry", "in_progress", "requested", "callback.retry", "tried again"),
            ("complete", "in_progress", "completed", "callback.completed", "completed"),
            ("fail", "scheduled in_progress", "failed", "callback.failed", "marked as failed"),
            ("cancel", "requested scheduled failed", "cancelled", "callback.cancelled", "cancelled"),
        ],
    ),
)
