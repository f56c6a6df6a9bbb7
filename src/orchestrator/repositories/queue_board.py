"""The public display board: last calls (label and desk, no personal data) and counters."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.models import Appointment, Counsellor, WalkInTicket
from orchestrator.repositories.queue import Snapshot, appointment_label
from orchestrator.scheduling.rules import local_day_bounds

BOARD_CALLS = 8


async def recent_calls(
    session: AsyncSession, snapshot: Snapshot, limit: int = BOARD_CALLS
) -> list[dict[str, Any]]:
    """The last called tickets and appointments of the day: label and desk only (public)."""
    tickets = await session.execute(
        select(WalkInTicket.number, WalkInTicket.desk, WalkInTicket.last_called_at)
        .where(
            WalkInTicket.agency_id == snapshot.agency.id,
            WalkInTicket.local_day == snapshot.day,
            WalkInTicket.last_called_at.is_not(None),
            WalkInTicket.status.in_(("called", "in_service", "completed")),
        )
        .order_by(WalkInTicket.last_called_at.desc())
        .limit(limit)
    )
    calls: list[dict[str, Any]] = [
        {
            "kind": "ticket",
            "label": number,
            "number": number,
            "desk": desk,
            "at": at.isoformat() if at else "",
        }
        for number, desk, at in tickets
    ]
    day_start = local_day_bounds(snapshot.day, snapshot.tz.key).start
    appointments = await session.execute(
        select(Appointment.starts_at, Appointment.started_at, Counsellor.desk_label)
        .join(Counsellor, and_(Counsellor.id == Appointment.counsellor_id))
        .where(
            Appointment.agency_id == snapshot.agency.id,
            Appointment.started_at >= day_start,
            Appointment.status.in_(("in_progress", "completed")),
        )
        .order_by(Appointment.started_at.desc())
        .limit(limit)
    )
    for appointment in appointments:
        assert appointment.started_at is not None
        calls.append(
            {
                "kind": "appointment",
                "label": appointment_label(appointment, snapshot.tz),
                "number": None,
                "desk": appointment.desk_label,
                "at": appointment.started_at.isoformat(),
            }
        )
    calls.sort(key=lambda c: str(c["at"]), reverse=True)
    return calls[:limit]


def board_counts(snapshot: Snapshot) -> dict[str, Any]:
    """The cheap public counters, carried by every queue event: people waiting, desks open."""
    return {
        "waiting_count": snapshot.waiting_count(),
        "counsellors_on_desk": sum(1 for c in snapshot.state.counsellors if c.on_desk),
    }


def board_stats(snapshot: Snapshot) -> dict[str, Any]:
    """Every public counter, the typical wait included (a simulation of the queue: the board's
    first snapshot, the queue view and the ``counters`` event of the refresh)."""
    return {**board_counts(snapshot), "typical_wait_minutes": snapshot.typical_wait_minutes()}
