"""The use cases called directly with commands, on the real database, with no HTTP in sight:
what an SMS, voice or job channel will do. Live events go to a recording publisher (a fake
port passed to the unit of work), and only after commit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from orchestrator.auth import Principal, Role
from orchestrator.db import unit_of_work
from orchestrator.errors import Conflict, NotFound, Unauthorized
from orchestrator.scheduling.transitions import BadTransition
from orchestrator.services import arrivals, booking, desk, tickets
from orchestrator.services.commands import (
    Channel,
    JobSeekerDetails,
    ManageTokenHolder,
    PhoneOwner,
    Public,
    Staff,
    System,
)
from tests.integration.test_walkin_queue import open_agency

PHONE = "+33612345678"


@dataclass
class RecordingPublisher:
    events: list[tuple[uuid.UUID, dict[str, Any]]] = field(default_factory=list)

    async def publish(self, agency_id: uuid.UUID, event: dict[str, Any]) -> None:
        self.events.append((agency_id, event))

    async def latest_id(self, agency_id: uuid.UUID) -> str:
        return "0-0"

    def types(self) -> list[str]:
        return [event["type"] for _, event in self.events]


@pytest.fixture
async def world(client) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """An agency (through the admin API) with one counsellor on desk working all day."""
    setup = await open_agency(client, desks=1)
    from tests.helpers import make_rule

    await make_rule(client, setup["counsellors"][0]["id"], weekday=0, start="07:00", end="19:00")
    return setup


def _staff(world: dict[str, Any], role: Role = Role.FRONT_DESK) -> Staff:
    counsellor = uuid.UUID(world["counsellors"][0]["id"]) if role is Role.COUNSELLOR else None
    return Staff(Principal("desk-1", role, uuid.UUID(world["id"]), counsellor))


async def _book(
    sessions: Any, world: dict[str, Any], clock: Any, channel: Channel = Channel.SMS
) -> tuple[Any, str]:
    command = booking.BookAppointment(
        actor=System("sms_conversation"),
        channel=channel,
        agency_id=uuid.UUID(world["id"]),
        service_id=uuid.UUID(world["service"]["id"]),
        starts_at=clock.now + timedelta(hours=3),
        mode="in_person",
        job_seeker=JobSeekerDetails(name="Awa", phone="06 12 34 56 78", preferred_channel="sms"),
    )
    async with unit_of_work(sessions) as uow:
        return await booking.book_appointment(uow, command, now=clock.now)


async def test_a_channel_books_and_the_phone_owner_cancels(sessions, world, clock):
    appointment, token = await _book(sessions, world, clock)
    assert (appointment.channel, appointment.created_by) == ("sms", "system:sms_conversation")
    stranger = booking.CancelAppointment(PhoneOwner("+33699999999"), Channel.SMS, appointment.id)
    async with unit_of_work(sessions) as uow:
        with pytest.raises(NotFound):
            await booking.cancel_appointment(uow, stranger, now=clock.now, cutoff=timedelta(hours=2))
    owner = booking.CancelAppointment(PhoneOwner(PHONE), Channel.SMS, appointment.id, reason="malade")
    async with unit_of_work(sessions) as uow:
        cancelled = await booking.cancel_appointment(uow, owner, now=clock.now, cutoff=timedelta(hours=2))
    assert cancelled.status == "cancelled" and cancelled.cancel_reason == "malade"
    async with unit_of_work(sessions) as uow:  # a terminal status: every other move is refused
        with pytest.raises(BadTransition):
            await booking.reschedule_appointment(
                uow,
                booking.RescheduleAppointment(
                    ManageTokenHolder(token), Channel.WEB, appointment.id, clock.now
                ),
                now=clock.now,
                cutoff=timedelta(hours=2),
            )


async def test_the_system_is_not_bound_by_the_cutoff_and_the_public_sees_nothing(sessions, world, clock):
    appointment, token = await _book(sessions, world, clock)
    async with unit_of_work(sessions) as uow:
        with pytest.raises(Unauthorized):
            await booking.get_appointment(uow, booking.GetAppointment(Public(), Channel.WEB, appointment.id))
    late = clock.now + timedelta(hours=2, minutes=30)  # inside the 2 h cut-off
    async with unit_of_work(sessions) as uow:
        with pytest.raises(Conflict, match=r"closed 120 minutes before"):
            await booking.cancel_appointment(
                uow,
                booking.CancelAppointment(ManageTokenHolder(token), Channel.WEB, appointment.id),
                now=late,
                cutoff=timedelta(hours=2),
            )
    async with unit_of_work(sessions) as uow:
        done = await booking.cancel_appointment(
            uow,
            booking.CancelAppointment(System("agency_closure"), Channel.SYSTEM, appointment.id),
            now=late,
            cutoff=timedelta(hours=2),
        )
    assert done.status == "cancelled"


async def test_check_in_and_call_next_publish_after_commit_only(sessions, world, clock):
    appointment, token = await _book(sessions, world, clock, channel=Channel.VOICE)
    clock.now = appointment.starts_at - timedelta(minutes=3)
    publisher = RecordingPublisher()
    step = arrivals.AppointmentStep(ManageTokenHolder(token), Channel.WALK_IN, appointment.id)
    await _check_in_then_fail(sessions, publisher, step, clock)
    assert publisher.events == []  # rolled back: nothing announced
    async with unit_of_work(sessions, publisher) as uow:
        checked_in, _ = await arrivals.check_in(uow, step, now=clock.now)
    assert checked_in.status == "checked_in" and publisher.types() == ["checked_in"]
    counsellor = uuid.UUID(world["counsellors"][0]["id"])
    async with unit_of_work(sessions, publisher) as uow:
        work = await desk.call_next(
            uow, desk.CallNext(_staff(world, Role.COUNSELLOR), Channel.FRONT_DESK, counsellor), now=clock.now
        )
    assert work is not None and work.decision.item_id == str(appointment.id)
    assert publisher.types() == ["checked_in", "called"]


async def _check_in_then_fail(sessions: Any, publisher: RecordingPublisher, step: Any, clock: Any) -> None:
    """A check-in whose request fails after the use case: the unit of work rolls back."""
    try:
        async with unit_of_work(sessions, publisher) as uow:
            await arrivals.check_in(uow, step, now=clock.now)
            raise RuntimeError("the request failed after the use case")
    except RuntimeError:
        return
    raise AssertionError("the failure should have propagated")


async def test_a_remote_ticket_and_the_desk_actions(sessions, world, clock):
    publisher = RecordingPublisher()
    issue = tickets.IssueTicket(
        actor=_staff(world),
        channel=Channel.SMS,  # joined the queue remotely
        agency_id=uuid.UUID(world["id"]),
        service_id=uuid.UUID(world["service"]["id"]),
        phone="06 12 34 56 78",
    )
    async with unit_of_work(sessions, publisher) as uow:
        view = await tickets.issue_ticket(uow, issue, now=clock.now)
    assert view.ticket.channel == "sms" and view.position == 1 and view.has_phone
    ticket_id = view.ticket.id
    async with unit_of_work(sessions, publisher) as uow:
        with pytest.raises(BadTransition, match=f"ticket {view.ticket.number} is waiting"):
            await tickets.act_on_ticket(
                uow,
                tickets.TicketAction(_staff(world), Channel.FRONT_DESK, ticket_id, "start"),
                now=clock.now,
            )
    counsellor = uuid.UUID(world["counsellors"][0]["id"])
    async with unit_of_work(sessions, publisher) as uow:
        await desk.call_next(uow, desk.CallNext(_staff(world), Channel.FRONT_DESK, counsellor), now=clock.now)
    for action in ("start", "complete"):
        async with unit_of_work(sessions, publisher) as uow:
            await tickets.act_on_ticket(
                uow, tickets.TicketAction(_staff(world), Channel.FRONT_DESK, ticket_id, action), now=clock.now
            )
    assert publisher.types() == ["issued", "called", "started", "completed"]
