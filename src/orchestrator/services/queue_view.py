"""Reading the walk-in queue: the front desk's view and the public display board."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator.auth import require_in_agency
from orchestrator.db import UnitOfWork
from orchestrator.models import Agency
from orchestrator.repositories.queue import appointment_label
from orchestrator.repositories.queue_board import recent_calls
from orchestrator.services import admin
from orchestrator.services.commands import Actor, Channel, principal_of
from orchestrator.services.queue_common import QUEUE_ROLES, TicketView
from orchestrator.services.queue_snapshot import Snapshot, board_stats, load_snapshot


@dataclass
class QueueView:
    snapshot: Snapshot
    snapshot_id: str
    waiting: list[TicketView]
    called: list[TicketView]
    appointments: list[tuple[Any, str]]  # appointment rows (AppointmentQueueRead fields), labels
    counsellors: list[tuple[Any, dict[str, Any] | None]]  # counsellor rows, what they have in hand


@dataclass(frozen=True, slots=True)
class GetQueue:
    actor: Actor
    channel: Channel
    agency_id: uuid.UUID


async def get_queue(uow: UnitOfWork, cmd: GetQueue, *, now: datetime) -> QueueView:
    """The front desk's view: waiting tickets in call order with estimates, people being called
    or served, today's appointments, counsellors and what they have in hand — all from the one
    snapshot load."""
    require_in_agency(principal_of(cmd.actor), cmd.agency_id, *QUEUE_ROLES)
    agency = await admin.get_agency(uow, cmd.agency_id, active_only=False)
    snapshot_id = await uow.latest_event_id(agency.id)  # before reading: replay covers the rest
    snapshot = await load_snapshot(uow.session, agency, now, for_display=True)
    waits = snapshot.waits()
    waiting = [
        TicketView(
            snapshot.tickets[t.id],
            index + 1,
            waits.get(t.id),
            snapshot.tickets[t.id].job_seeker_id is not None,
        )
        for index, t in enumerate(snapshot.order())
    ]
    called = [TicketView(t, has_phone=t.job_seeker_id is not None) for t in snapshot.called]
    counsellors = [(c, snapshot.current_work(c.id)) for c in snapshot.counsellors.values()]
    counsellors.sort(key=lambda pair: (not pair[0].on_desk, pair[0].desk_label or "", pair[0].name))
    return QueueView(
        snapshot=snapshot,
        snapshot_id=snapshot_id,
        waiting=waiting,
        called=called,
        appointments=[(a, appointment_label(a, snapshot.tz)) for a in snapshot.appointments],
        counsellors=counsellors,
    )


async def board_snapshot(uow: UnitOfWork, agency_id: uuid.UUID, *, now: datetime) -> dict[str, Any]:
    """Public state of the display board: last calls (label + desk), waiting count, typical wait."""
    agency = await admin.get_agency(uow, agency_id)
    snapshot = await load_snapshot(uow.session, agency, now)
    return {
        "type": "snapshot",
        "at": now.isoformat(),
        "agency": agency.name,
        "calls": await recent_calls(uow.session, snapshot.agency.id, snapshot.day, snapshot.tz),
        **board_stats(snapshot),
    }


async def public_agency(uow: UnitOfWork, agency_id: uuid.UUID) -> Agency:
    return await admin.get_agency(uow, agency_id)
