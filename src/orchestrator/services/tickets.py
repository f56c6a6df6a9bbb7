"""Walk-in tickets: issue one, and everything a desk does with it except calling it.

State machine (anything else is a 409 ``bad_transition``): ``waiting → called`` (call next,
:mod:`orchestrator.services.desk`) ``→ in_service`` (start) ``→ completed``; ``called → called``
(recall, not sooner than ``recall_min_interval``), ``called → waiting`` (requeue),
``waiting|called → cancelled``, ``waiting|called → no_show`` once called
``max_calls_before_no_show`` times, ``waiting|called|in_service → waiting`` (transfer: same
number and arrival time, new service and/or preferred counsellor).

Concurrency: every action here locks its ticket row first (``FOR NO KEY UPDATE``, see
:func:`_ticket`) and then checks the status it starts from, so it serializes with a call next
claiming the same ticket (which takes the same row lock, or skips the row while we hold it).
Numbers come from per-day counter rows incremented with ``INSERT … ON CONFLICT DO UPDATE …
RETURNING`` (atomic; concurrent issues queue on the row, never share a number).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from orchestrator.auth import Principal, Role, require_in_agency
from orchestrator.db import UnitOfWork
from orchestrator.errors import Conflict, Forbidden, Invalid, NotFound
from orchestrator.models import Agency, Claim, Counsellor, JobSeeker, Service, TicketCounter, WalkInTicket
from orchestrator.repositories.calendars import claim_time, live_claims, release_claim
from orchestrator.repositories.queue_claims import (
    TICKETS,
    LockedTicket,
    complete_ticket,
    lock_ticket,
    lock_ticket_and_service,
)
from orchestrator.repositories.writes import GUARD_ID, RowChange, row_of, write_together
from orchestrator.scheduling.opening import is_open, next_opening
from orchestrator.scheduling.transitions import TICKET, Move, TicketStatus
from orchestrator.schemas import e164_phone, phone_region
from orchestrator.services import admin, audit
from orchestrator.services.commands import Actor, Channel, principal_of
from orchestrator.services.queue_common import (
    ISSUE_ROLES,
    QUEUE_ROLES,
    TicketView,
    active_in_agency,
    agency_of,
    call_event,
    event,
    light_event,
    notify_called,
    publish_change,
)
from orchestrator.services.queue_snapshot import expected_duration, load_snapshot

T = TypeVar("T")
SEQ_PREFIX = "#"  # the agency-wide arrival counter lives next to the per-prefix ones


def _move(ticket: WalkInTicket | LockedTicket, action: str) -> Move[TicketStatus]:
    """The allowed move (the core's table), or ``BadTransition`` naming the ticket."""
    return TICKET.move(action, ticket.status, label=f"ticket {ticket.number}")


def _require_open(agency: Agency, caller: Principal, outside_hours: bool, now: datetime) -> None:
    """Tickets are issued while the agency is open (its hours and closed dates); staff may
    override for someone still waiting, a kiosk never."""
    if is_open(agency.opening_hours, agency.timezone, now, agency.closed_dates):
        return
    if outside_hours and caller.role is not Role.KIOSK:
        return
    opens = next_opening(agency.opening_hours, agency.timezone, now, agency.closed_dates)
    raise Conflict(
        "the agency is closed" + (f"; it opens at {opens.isoformat()}" if opens else ""),
        code="agency_closed",
        opens_at=opens.isoformat() if opens else None,
    )


async def _next_numbers(uow: UnitOfWork, agency_id: uuid.UUID, day: Any, prefix: str) -> tuple[int, int]:
    """The next number of ``prefix``'s daily series and the next agency-wide arrival ``seq``, in
    one atomic upsert (``INSERT … ON CONFLICT DO UPDATE … RETURNING``). Both counter rows stay
    locked until commit — every issue of the agency queues on the ``seq`` row — so the caller
    keeps what follows short. Rows are taken in one order (prefix, then ``#``): no deadlock."""
    statement = (
        insert(TicketCounter)
        .values(
            [
                {"agency_id": agency_id, "local_day": day, "prefix": prefix, "last": 1},
                {"agency_id": agency_id, "local_day": day, "prefix": SEQ_PREFIX, "last": 1},
            ]
        )
        .on_conflict_do_update(
            index_elements=["agency_id", "local_day", "prefix"], set_={"last": TicketCounter.last + 1}
        )
        .returning(TicketCounter.prefix, TicketCounter.last)
    )
    last = {row_prefix: int(value) for row_prefix, value in await uow.session.execute(statement)}
    return last[prefix], last[SEQ_PREFIX]


@dataclass(frozen=True, slots=True)
class IssueTicket:
    actor: Actor
    channel: Channel  # walk_in (a kiosk), front_desk, sms (remote queue)…
    agency_id: uuid.UUID
    service_id: uuid.UUID
    language: str | None = None
    priority: int = 0
    needs: tuple[str, ...] = ()
    preferred_counsellor_id: uuid.UUID | None = None
    name: str | None = None
    phone: str | None = None  # as typed; a number given is consent to texts about this ticket
    outside_hours: bool = False


@dataclass(frozen=True, slots=True)
class GetTicket:
    actor: Actor
    channel: Channel
    ticket_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class TicketAction:
    """recall, start, complete, requeue, no_show or cancel (the names of :data:`TICKET`)."""

    actor: Actor
    channel: Channel
    ticket_id: uuid.UUID
    action: str


@dataclass(frozen=True, slots=True)
class TransferTicket:
    actor: Actor
    channel: Channel
    ticket_id: uuid.UUID
    service_id: uuid.UUID | None = None
    counsellor_id: uuid.UUID | None = None


async def issue_ticket(uow: UnitOfWork, body: IssueTicket, *, now: datetime) -> TicketView:
    """A person walks in: a human number (prefix + daily counter), a place in the queue, a wait."""
    caller = require_in_agency(principal_of(body.actor), body.agency_id, *ISSUE_ROLES)
    agency = await admin.get_agency(uow, body.agency_id)
    if not agency.walk_in_enabled:
        raise Conflict("this agency does not take walk-ins", code="walk_in_disabled")
    if caller.role is Role.KIOSK and (body.priority or body.preferred_counsellor_id):
        raise Forbidden(
            "a kiosk issues ordinary tickets; priority is set at the front desk", code="forbidden"
        )
    _require_open(agency, caller, body.outside_hours, now)
    # The queue is read before the numbers are taken, and the new ticket added to it in memory:
    # the counter rows stay locked until commit, so nothing slow may run after them. (Position
    # and wait are estimates; a ticket issued or called in those few milliseconds is the only
    # difference.) Its rows also hold the agency's services and active counsellors.
    snapshot = await load_snapshot(uow.session, agency, now)
    service = snapshot.services.get(str(body.service_id))
    if service is None or not service.active:
        raise Invalid("service_id", "no active service with this id in this agency")
    if (
        body.preferred_counsellor_id is not None
        and str(body.preferred_counsellor_id) not in snapshot.counsellors
    ):
        raise Invalid("preferred_counsellor_id", "no active counsellor with this id in this agency")
    seeker: JobSeeker | None = None
    if body.name or body.phone:
        phone = e164_phone(body.phone, region=phone_region(agency.timezone))
        # A number given for the queue is consent to be texted about this ticket.
        seeker = JobSeeker(
            id=uuid.uuid4(),  # written with the ticket, in one statement
            agency_id=agency.id,
            name=body.name,
            phone=phone,
            language=body.language,
            preferred_channel="sms" if phone else "none",
            consent_sms=phone is not None,
        )
    number, seq = await _next_numbers(uow, agency.id, snapshot.day, service.ticket_prefix)
    ticket = WalkInTicket(
        id=uuid.uuid4(),
        agency_id=agency.id,
        service_id=service.id,
        job_seeker_id=seeker.id if seeker else None,
        number=f"{service.ticket_prefix}{number:03d}",
        local_day=snapshot.day,
        seq=seq,
        status=TicketStatus.WAITING,
        priority=body.priority,
        language=body.language,
        needs=list(body.needs),
        mode="in_person",
        channel=body.channel.value,
        preferred_counsellor_id=body.preferred_counsellor_id,
        arrived_at=now,
        call_count=0,
        created_by=caller.actor,
    )
    issued = audit.row(
        actor=caller.actor,
        action="ticket.issued",
        entity=ticket,
        agency_id=agency.id,
        number=ticket.number,
        service_id=service.id,
        priority=ticket.priority,
    )
    # the person, the ticket and its audit row: one round trip (the counter rows are locked)
    writes = [row_of(seeker)] if seeker is not None else []
    await write_together(uow.session, [*writes, row_of(ticket), issued])
    snapshot = snapshot.with_ticket(ticket)
    key = str(ticket.id)
    # a new ticket moves nobody forward: counters only, no "soon" SMS
    publish_change(uow, agency.id, event("issued", snapshot, id=key, number=ticket.number), notify=False)
    return TicketView(
        ticket,
        snapshot.positions().get(key),
        snapshot.waits().get(key),
        seeker is not None and seeker.phone is not None,
    )


async def _ticket(
    uow: UnitOfWork, principal: Principal | None, ticket_id: uuid.UUID, *roles: Role
) -> tuple[WalkInTicket, Principal]:
    """Load and lock a ticket the caller may act on.

    ``FOR NO KEY UPDATE``: conflicts with a call next claiming the row (it skips the ticket while
    we hold it; we wait for its commit and then see ``called``), but not with the ``FOR KEY
    SHARE`` that an outbox row referencing the ticket takes, so a concurrent "soon" SMS never
    waits for us."""
    ticket = await uow.session.get(
        WalkInTicket, ticket_id, with_for_update={"key_share": True}, populate_existing=True
    )
    found = _found(ticket_id, ticket)
    return found, require_in_agency(principal, found.agency_id, *roles)


def _found(ticket_id: uuid.UUID, found: T | None) -> T:
    """What was read of the ticket, or 404 when there is no such ticket."""
    if found is None:
        raise NotFound(f"no ticket {ticket_id}", code="not_found")
    return found


def _only_own(caller: Principal, ticket: WalkInTicket | LockedTicket) -> None:
    if caller.role is Role.COUNSELLOR and ticket.counsellor_id != caller.counsellor_id:
        raise Forbidden("a counsellor acts only on the people it called", code="not_yours")


async def get_ticket(uow: UnitOfWork, cmd: GetTicket, *, now: datetime) -> TicketView:
    ticket = _found(cmd.ticket_id, await uow.session.get(WalkInTicket, cmd.ticket_id))
    require_in_agency(principal_of(cmd.actor), ticket.agency_id, *QUEUE_ROLES)
    snapshot = await load_snapshot(uow.session, await agency_of(uow, ticket.agency_id), now)
    return TicketView.in_queue(ticket, snapshot)


async def _recall(
    uow: UnitOfWork, principal: Principal | None, ticket_id: uuid.UUID, *, now: datetime
) -> TicketView:
    ticket, caller = await _ticket(uow, principal, ticket_id, *QUEUE_ROLES)
    agency = await agency_of(uow, ticket.agency_id)
    _only_own(caller, ticket)
    move = _move(ticket, "recall")
    snapshot = await load_snapshot(uow.session, agency, now)
    policy = snapshot.policy
    if ticket.call_count >= policy.max_calls_before_no_show:
        raise Conflict(
            f"ticket {ticket.number} was called {ticket.call_count} times; mark it as a no-show",
            code="max_calls_reached",
        )
    if ticket.last_called_at is not None and now < ticket.last_called_at + policy.recall_min_interval:
        wait = ticket.last_called_at + policy.recall_min_interval - now
        raise Conflict(
            f"ticket {ticket.number} was called less than "
            f"{int(policy.recall_min_interval.total_seconds() // 60)} min ago",
            code="recall_too_soon",
            retry_after_seconds=int(wait.total_seconds()) + 1,
        )
    ticket.call_count += 1
    ticket.last_called_at = now
    audit.record(
        uow,
        actor=caller.actor,
        action="ticket.recalled",
        entity=ticket,
        agency_id=agency.id,
        call=ticket.call_count,
        desk=ticket.desk,
    )
    await notify_called(uow, ticket, agency)
    publish_change(
        uow,
        agency.id,
        call_event(move.live_event, snapshot, ticket, ticket.counsellor_id),
    )
    return TicketView(ticket, has_phone=ticket.job_seeker_id is not None)


async def _start(
    uow: UnitOfWork, principal: Principal | None, ticket_id: uuid.UUID, *, now: datetime
) -> TicketView:
    """The person came to the desk: the counsellor's time is claimed (kind ``service``) for the
    expected duration, so online booking cannot take it; 409 if the counsellor is committed now.

    Two statements: the ticket locked with its service's observed times, then the claim with the
    ticket's change and its audit row (written only if the claim is made)."""
    ticket, services = _found(ticket_id, await lock_ticket_and_service(uow.session, ticket_id, now))
    caller = require_in_agency(principal, ticket.agency_id, *QUEUE_ROLES)
    agency_id = ticket.agency_id  # the agency row itself is not needed here
    _only_own(caller, ticket)
    move = _move(ticket, "start")
    if ticket.counsellor_id is None:  # pragma: no cover - a called ticket always has one
        raise Conflict(f"ticket {ticket.number} has no counsellor", code="bad_transition")
    expected = expected_duration(services, ticket.service_id)
    counsellor_id = ticket.counsellor_id
    started = {"status": move.target, "started_at": now, "claim_id": GUARD_ID}

    async def claim(until: datetime) -> uuid.UUID | None:
        """The service's time up to ``until``, with the ticket's change and its audit row."""
        audited = audit.row(
            actor=caller.actor,
            action="ticket.started",
            entity=ticket,
            agency_id=agency_id,
            counsellor_id=counsellor_id,
            claim_until=until.isoformat(),
        )
        return await claim_time(
            uow.session,
            agency_id=agency_id,
            counsellor_id=counsellor_id,
            starts_at=now,
            ends_at=until,
            kind="service",
            now=now,
            rows=[RowChange(TICKETS, ticket.id, started), audited],
        )

    claim_id = await claim(now + expected)
    if claim_id is None:
        # Something is booked before the usual end: claim the time up to it, if there is any.
        next_start = await uow.session.scalar(
            select(func.min(Claim.starts_at)).where(
                Claim.counsellor_id == counsellor_id, Claim.ends_at > now, live_claims(now)
            )
        )
        if next_start is not None and next_start > now:
            claim_id = await claim(next_start)
    if claim_id is None:
        raise Conflict("the counsellor has another commitment right now", code="counsellor_busy")
    ticket = ticket._replace(status=move.target, started_at=now, claim_id=claim_id)
    publish_change(
        uow,
        agency_id,
        light_event(
            move.live_event,
            now,
            kind="ticket",
            id=str(ticket.id),
            number=ticket.number,
            desk=ticket.desk,
        ),
    )
    return TicketView(ticket, has_phone=ticket.job_seeker_id is not None)


async def _complete(
    uow: UnitOfWork, principal: Principal | None, ticket_id: uuid.UUID, *, now: datetime
) -> TicketView:
    """Done: records the service duration (it feeds the expected durations) and frees the rest
    of the claimed time. Two statements: the ticket locked, then its change, the release of the
    rest of its claim and its audit row."""
    ticket = _found(ticket_id, await lock_ticket(uow.session, ticket_id))
    caller = require_in_agency(principal, ticket.agency_id, *QUEUE_ROLES)
    _only_own(caller, ticket)
    move = _move(ticket, "complete")
    seconds = int((now - (ticket.started_at or now)).total_seconds())  # in service means started
    completed = audit.row(
        actor=caller.actor,
        action="ticket.completed",
        entity=ticket,
        agency_id=ticket.agency_id,
        counsellor_id=ticket.counsellor_id,
        service_seconds=seconds,
    )
    await complete_ticket(uow.session, ticket, move.target, now, [completed])
    ticket = ticket._replace(status=move.target, completed_at=now)
    publish_change(
        uow,
        ticket.agency_id,
        light_event(
            move.live_event,
            now,
            kind="ticket",
            id=str(ticket.id),
            number=ticket.number,
            desk=ticket.desk,
        ),
    )
    return TicketView(ticket, has_phone=ticket.job_seeker_id is not None, service_seconds=seconds)


async def _requeue(
    uow: UnitOfWork, principal: Principal | None, ticket_id: uuid.UUID, *, now: datetime
) -> TicketView:
    """Nobody answered: back to the queue with its calls counted (offered again after the recall
    interval; a no-show after ``max_calls_before_no_show`` calls)."""
    ticket, caller = await _ticket(uow, principal, ticket_id, *QUEUE_ROLES)
    agency = await agency_of(uow, ticket.agency_id)
    _only_own(caller, ticket)
    move = _move(ticket, "requeue")
    ticket.status, ticket.counsellor_id, ticket.desk = move.target, None, None
    audit.record(
        uow,
        actor=caller.actor,
        action="ticket.requeued",
        entity=ticket,
        agency_id=agency.id,
        calls=ticket.call_count,
    )
    snapshot = await load_snapshot(uow.session, agency, now)
    publish_change(uow, agency.id, event(move.live_event, snapshot, id=str(ticket.id), number=ticket.number))
    return TicketView.in_queue(ticket, snapshot)


async def _no_show(
    uow: UnitOfWork, principal: Principal | None, ticket_id: uuid.UUID, *, now: datetime
) -> TicketView:
    ticket, caller = await _ticket(uow, principal, ticket_id, *QUEUE_ROLES)
    agency = await agency_of(uow, ticket.agency_id)
    _only_own(caller, ticket)
    move = _move(ticket, "no_show")
    snapshot = await load_snapshot(uow.session, agency, now)
    limit = snapshot.policy.max_calls_before_no_show
    if ticket.call_count < limit:
        raise Conflict(
            f"ticket {ticket.number} was called {ticket.call_count} of {limit} times; recall it first",
            code="too_few_calls",
            calls=ticket.call_count,
            required=limit,
        )
    ticket.status = move.target
    audit.record(
        uow,
        actor=caller.actor,
        action="ticket.no_show",
        entity=ticket,
        agency_id=agency.id,
        calls=ticket.call_count,
    )
    after = snapshot.without(str(ticket.id))
    publish_change(uow, agency.id, event(move.live_event, after, id=str(ticket.id), number=ticket.number))
    return TicketView(ticket, has_phone=ticket.job_seeker_id is not None)


async def _cancel(
    uow: UnitOfWork, principal: Principal | None, ticket_id: uuid.UUID, *, now: datetime
) -> TicketView:
    ticket, caller = await _ticket(uow, principal, ticket_id, *QUEUE_ROLES)
    agency = await agency_of(uow, ticket.agency_id)
    _only_own(caller, ticket)
    move = _move(ticket, "cancel")
    ticket.status = move.target
    audit.record(uow, actor=caller.actor, action="ticket.cancelled", entity=ticket, agency_id=agency.id)
    snapshot = await load_snapshot(uow.session, agency, now)
    publish_change(uow, agency.id, event(move.live_event, snapshot, id=str(ticket.id), number=ticket.number))
    return TicketView(ticket, has_phone=ticket.job_seeker_id is not None)


async def transfer_ticket(uow: UnitOfWork, body: TransferTicket, *, now: datetime) -> TicketView:
    """Send a ticket to another service and/or counsellor. It keeps its number and its original
    arrival time (so its place), and waits again; a counsellor target becomes its preferred
    counsellor (reserved for them while they are on desk, until the ticket is urgent or starving)."""
    ticket, caller = await _ticket(uow, principal_of(body.actor), body.ticket_id, *QUEUE_ROLES)
    agency = await agency_of(uow, ticket.agency_id)
    _only_own(caller, ticket)
    move = _move(ticket, "transfer")
    changes: dict[str, Any] = {"from_service_id": ticket.service_id}
    if body.service_id is not None:
        service = await active_in_agency(uow, Service, body.service_id, agency.id, "service_id", "service")
        ticket.service_id = service.id
        changes["service_id"] = service.id
    if body.counsellor_id is not None:
        target = await active_in_agency(
            uow, Counsellor, body.counsellor_id, agency.id, "counsellor_id", "counsellor"
        )
        ticket.preferred_counsellor_id = target.id
        changes["counsellor_id"] = target.id
    if ticket.status == TicketStatus.IN_SERVICE and await release_claim(uow.session, ticket.claim_id, now):
        ticket.claim_id = None
    ticket.status, ticket.counsellor_id, ticket.desk = move.target, None, None
    ticket.call_count, ticket.last_called_at, ticket.started_at = 0, None, None
    audit.record(
        uow, actor=caller.actor, action="ticket.transferred", entity=ticket, agency_id=agency.id, **changes
    )
    snapshot = await load_snapshot(uow.session, agency, now)
    publish_change(
        uow,
        agency.id,
        event(
            move.live_event,
            snapshot,
            id=str(ticket.id),
            number=ticket.number,
            service_id=str(ticket.service_id),
        ),
    )
    return TicketView.in_queue(ticket, snapshot)


_ACTIONS = {
    "recall": _recall,
    "start": _start,
    "complete": _complete,
    "requeue": _requeue,
    "no_show": _no_show,
    "cancel": _cancel,
}


async def act_on_ticket(uow: UnitOfWork, cmd: TicketAction, *, now: datetime) -> TicketView:
    """One of a desk's actions on a ticket; each checks its move in the core's table."""
    if cmd.action not in _ACTIONS:
        raise Invalid("action", f"one of {', '.join(_ACTIONS)}")
    return await _ACTIONS[cmd.action](uow, principal_of(cmd.actor), cmd.ticket_id, now=now)
