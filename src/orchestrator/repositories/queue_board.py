"""The public display board: its last calls (label and desk, no personal data)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.models import Appointment, Counsellor, WalkInTicket
from orchestrator.repositories.queue import appointment_label
from orchestrator.scheduling.rules import local_day_bounds

BOARD_CALLS = 8


async def recent_calls(
    session: AsyncSession, agency_id: uuid.UUID, day: date, tz: ZoneInfo, limit: int = BOARD_CALLS
) -> list[dict[str, Any]]:
    """The last called tickets and appointments of the day: label and desk only (public)."""
    tickets = await session.execute(
        select(WalkInTicket.number, WalkInTicket.desk, WalkInTicket.last_called_at)
        .where(
            WalkInTicket.agency_id == agency_id,
            WalkInTicket.local_day == day,
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
    day_start = local_day_bounds(day, tz.key).start
    appointments = await session.execute(
        select(Appointment.starts_at, Appointment.started_at, Counsellor.desk_label)
        .join(Counsellor, and_(Counsellor.id == Appointment.counsellor_id))
        .where(
            Appointment.agency_id == agency_id,
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
                "label": appointment_label(appointment, tz),
                "number": None,
                "desk": appointment.desk_label,
                "at": appointment.started_at.isoformat(),
            }
        )
    calls.sort(key=lambda c: str(c["at"]), reverse=True)
    return calls[:limit]
