"""Walk-in queue use cases: issue tickets, call next, ticket actions, desk state, check-in.

One allocator for everyone who is physically at the agency: :func:`call_next` asks the pure
core (:func:`orchestrator.scheduling.queue.next_work`) what a counsellor should take — a
checked-in appointment of theirs or a walk-in ticket — under a per-agency advisory lock, then
claims it with a conditional UPDATE, so two counsellors never get the same person.

State machines (anything else is a 409 ``bad_transition``):

- ticket: ``waiting → called`` (call next) ``→ in_service`` (start) ``→ completed``; ``called →
  called`` (recall, not sooner than ``recall_min_interval``), ``called → waiting`` (requeue),
  ``waiting|called → cancelled``, ``waiting|called → no_show`` once called
  ``max_calls_before_no_show`` times, ``waiting|called|in_service → waiting`` (transfer: same
  number and arrival time, new service and/or preferred counsellor).
- appointment: ``confirmed → checked_in`` (on its local day, before its end) ``→ in_progress``
  (handed out by call next) ``→ completed``; ``confirmed|checked_in|in_progress → no_show``
  once its start time has passed.

Every change is audited; live events are published to Redis after commit; SMS go through the
outbox (written in the same transaction).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from orchestrator import live, outbox
from orchestrator.auth import STAFF_ROLES, Principal, Role, require_in_agency
from orchestrator.db import UnitOfWork
from orchestrator.errors import Conflict, Forbidden, Invalid, NotFound
from orchestrator.models import (
    Agency,
    Appointment,
    Claim,
    Counsellor,
    JobSeeker,
    Service,
    TicketCounter,
    WalkInTicket,
)
from orchestrator.queue_repo import (
    Snapshot,
    appointment_label,
    board_stats,
    day_bounds,
    expected_duration,
    load_snapshot,
    local_day,
    lock_queue,
    minutes_up,
    recent_calls,
)
from orchestrator.repositories import claim_time, live_claims, lock_counsellors
from orchestrator.scheduling.queue import WorkDecision, WorkKind, next_work
from orchestrator.schemas_queue import DeskUpdate, TicketCreate, TicketTransfer
from orchestrator.services import admin, audit
from orchestrator.services.appointments import appointment_for

DESK_ROLES = (Role.ADMIN, Role.MANAGER, Role.FRONT_DESK)
QUEUE_ROLES = (*DESK_ROLES, Role.COUNSELLOR)
ISSUE_ROLES = (*DESK_ROLES, Role.KIOSK)
SEQ_PREFIX = "#"  # the agency-wide arrival counter lives next to the per-prefix ones
MAX_CLAIM_RETRIES = 5


@dataclass
class TicketView:
    ticket: Any  # a WalkInTicket, or a plain row with the same attributes
    position: int | None = None
    estimated_wait: timedelta | None = None
    has_phone: bool = False
    service_seconds: int | None = None

    @property
    def estimated_wait_minutes(self) -> int | None:
        return minutes_up(self.estimated_wait)


@dataclass
class WorkView:
    decision: WorkDecision
    counsellor: Counsellor
    service_id: uuid.UUID
    label: str
    ticket: WalkInTicket | None = None
    appointment: Appointment | None = None


@dataclass
class QueueView:
    snapshot: Snapshot
    snapshot_id: str
    waiting: list[TicketView]
    called: list[TicketView]
    appointments: list[tuple[Appointment, str]]
    counsellors: list[tuple[Counsellor, dict[str, Any] | None]]


# --- helpers --------------------------------------------------------------------------------


def _publish(uow: UnitOfWork, redis: Redis, agency_id: uuid.UUID, event: dict[str, Any]) -> None:
    async def hook() -> None:
        await live.publish(redis, agency_id, event)

    uow.after_commit(hook)


def _event(event_type: str, snapshot: Snapshot, **fields: Any) -> dict[str, Any]:
    return {"type": event_type, "at": snapshot.now.isoformat(), **fields, **board_stats(snapshot)}


def _light_event(event_type: str, now: datetime, **fields: Any) -> dict[str, Any]:
    """An event that does not change who is waiting: no counters (clients keep the last ones)."""
    return {"type": event_type, "at": now.isoformat(), **fields}


def _bad_transition(ticket: WalkInTicket, action: str) -> Conflict:
    return Conflict(
        f"ticket {ticket.number} is {ticket.status}; it cannot be {action}",
        code="bad_transition",
        status_now=ticket.status,
    )


def _phone(raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        number = phonenumbers.parse(raw, "FR")
    except phonenumbers.NumberParseException as exc:
        raise Invalid("job_seeker.phone", "not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise Invalid("job_seeker.phone", "not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


async def _next_counter(uow: UnitOfWork, agency_id: uuid.UUID, day: Any, prefix: str) -> int:
    statement = (
        insert(TicketCounter)
        .values(agency_id=agency_id, local_day=day, prefix=prefix, last=1)
        .on_conflict_do_update(
            index_elements=["agency_id", "local_day", "prefix"], set_={"last": TicketCounter.last + 1}
        )
        .returning(TicketCounter.last)
    )
    return int((await uow.session.execute(statement)).scalar_one())


async def _agency(uow: UnitOfWork, agency_id: uuid.UUID) -> Agency:
    agency = await uow.session.get(Agency, agency_id)
    if agency is None:
        raise NotFound(f"no agency {agency_id}", code="not_found")
    return agency


async def _seeker_phone(uow: UnitOfWork, ticket: WalkInTicket) -> str | None:
    if ticket.job_seeker_id is None:
        return None
    return outbox.sms_recipient(await uow.session.get(JobSeeker, ticket.job_seeker_id))


async def _notify_called(uow: UnitOfWork, ticket: WalkInTicket, agency: Agency) -> None:
    phone = await _seeker_phone(uow, ticket)
    if phone is None:
        return
    await outbox.record(
        uow,
        agency_id=ticket.agency_id,
        kind="ticket.called",
        channel="sms",
        recipient=phone,
        dedupe_key=f"ticket:{ticket.id}:called:{ticket.call_count}:sms",
        ticket_id=ticket.id,
        payload={
            "number": ticket.number,
            "desk": ticket.desk,
            "agency": agency.name,
            "call": ticket.call_count,
            "language": ticket.language,
        },
    )


async def _notify_soon(uow: UnitOfWork, snapshot: Snapshot) -> int:
    """ "You will be called soon" SMS for people N positions or M minutes from the front (once each)."""
    settings = snapshot.settings
    if not settings.notify_positions_ahead and not settings.notify_minutes_ahead:
        return 0
    positions, waits = snapshot.positions(), snapshot.waits()
    due: dict[uuid.UUID, tuple[WalkInTicket, int, timedelta | None]] = {}
    for ticket_id, position in positions.items():
        row = snapshot.tickets[ticket_id]
        if row.job_seeker_id is None:
            continue
        wait = waits.get(ticket_id)
        near = settings.notify_positions_ahead and position <= settings.notify_positions_ahead
        soon = (
            settings.notify_minutes_ahead
            and wait is not None
            and wait <= timedelta(minutes=settings.notify_minutes_ahead)
        )
        if near or soon:
            due[row.job_seeker_id] = (row, position, wait)
    if not due:
        return 0
    sent = 0
    for seeker in await uow.session.scalars(select(JobSeeker).where(JobSeeker.id.in_(due))):
        phone = outbox.sms_recipient(seeker)
        if phone is None:
            continue
        row, position, wait = due[seeker.id]
        sent += await outbox.record(
            uow,
            agency_id=row.agency_id,
            kind="ticket.soon",
            channel="sms",
            recipient=phone,
            dedupe_key=f"ticket:{row.id}:soon:sms",
            ticket_id=row.id,
            payload={
                "number": row.number,
                "agency": snapshot.agency.name,
                "position": position,
                "estimated_wait_minutes": minutes_up(wait),
                "language": row.language,
            },
        )
    return sent


async def _release_claim(uow: UnitOfWork, claim_id: uuid.UUID | None, now: datetime) -> bool:
    """Give back the unused part of a claim: end it now, or delete it if it has not started yet
    (then True: the caller clears its reference)."""
    if claim_id is None:
        return False
    claim = await uow.session.get(Claim, claim_id)
    if claim is None:
        return False
    if now <= claim.starts_at:
        await uow.session.delete(claim)
        return True
    if now < claim.ends_at:
        claim.ends_at = now
    return False


# --- issuing --------------------------------------------------------------------------------


async def issue_ticket(
    uow: UnitOfWork,
    redis: Redis,
    principal: Principal | None,
    agency_id: uuid.UUID,
    body: TicketCreate,
    *,
    now: datetime,
) -> TicketView:
    """A person walks in: a human number (prefix + daily counter), a place in the queue, a wait."""
    caller = require_in_agency(principal, agency_id, *ISSUE_ROLES)
    agency = await admin.get_agency(uow, agency_id)
    if not agency.walk_in_enabled:
        raise Conflict("this agency does not take walk-ins", code="walk_in_disabled")
    if caller.role is Role.KIOSK and (body.priority or body.preferred_counsellor_id):
        raise Forbidden(
            "a kiosk issues ordinary tickets; priority is set at the front desk", code="forbidden"
        )
    service = await uow.session.get(Service, body.service_id)
    if service is None or service.agency_id != agency.id or not service.active:
        raise Invalid("service_id", "no active service with this id in this agency")
    if body.preferred_counsellor_id is not None:
        preferred = await uow.session.get(Counsellor, body.preferred_counsellor_id)
        if preferred is None or preferred.agency_id != agency.id or not preferred.active:
            raise Invalid("preferred_counsellor_id", "no active counsellor with this id in this agency")
    seeker: JobSeeker | None = None
    if body.job_seeker is not None and (body.job_seeker.name or body.job_seeker.phone):
        phone = _phone(body.job_seeker.phone)
        # A number given for the queue is consent to be texted about this ticket.
        seeker = JobSeeker(
            agency_id=agency.id,
            name=body.job_seeker.name,
            phone=phone,
            language=body.language,
            preferred_channel="sms" if phone else "none",
            consent_sms=phone is not None,
        )
        uow.session.add(seeker)
        await uow.session.flush()
    snapshot_day = local_day(_tz(agency), now)
    number = await _next_counter(uow, agency.id, snapshot_day, service.ticket_prefix)
    seq = await _next_counter(uow, agency.id, snapshot_day, SEQ_PREFIX)
    ticket = WalkInTicket(
        agency_id=agency.id,
        service_id=service.id,
        job_seeker_id=seeker.id if seeker else None,
        number=f"{service.ticket_prefix}{number:03d}",
        local_day=snapshot_day,
        seq=seq,
        status="waiting",
        priority=body.priority,
        language=body.language,
        needs=list(body.needs),
        mode="in_person",
        channel="walk_in" if caller.role is Role.KIOSK else "front_desk",
        preferred_counsellor_id=body.preferred_counsellor_id,
        arrived_at=now,
        call_count=0,
        created_by=caller.actor,
    )
    uow.session.add(ticket)
    await uow.session.flush()
    audit.record(
        uow,
        actor=caller.actor,
        action="ticket.issued",
        entity=ticket,
        agency_id=agency.id,
        number=ticket.number,
        service_id=service.id,
        priority=ticket.priority,
    )
    snapshot = await load_snapshot(uow.session, agency, now)
    key = str(ticket.id)
    _publish(uow, redis, agency.id, _event("issued", snapshot, id=key, number=ticket.number))
    return TicketView(
        ticket,
        snapshot.positions().get(key),
        snapshot.waits().get(key),
        seeker is not None and seeker.phone is not None,
    )


def _tz(agency: Agency) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(agency.timezone)


# --- call next ------------------------------------------------------------------------------


async def _current_work(uow: UnitOfWork, counsellor: Counsellor, snapshot: Snapshot) -> dict[str, Any] | None:
    """What the counsellor has in hand today (a called/served ticket, an appointment in progress)."""
    ticket = await uow.session.scalar(
        select(WalkInTicket)
        .where(
            WalkInTicket.counsellor_id == counsellor.id,
            WalkInTicket.local_day == snapshot.day,
            WalkInTicket.status.in_(("called", "in_service")),
        )
        .order_by(WalkInTicket.last_called_at.desc())
        .limit(1)
    )
    if ticket is not None:
        return {"kind": "ticket", "id": str(ticket.id), "number": ticket.number, "status": ticket.status}
    day_start, _ = day_bounds(snapshot.tz, snapshot.day)
    appointment = await uow.session.scalar(
        select(Appointment)
        .where(
            Appointment.counsellor_id == counsellor.id,
            Appointment.status == "in_progress",
            Appointment.started_at >= day_start,
        )
        .limit(1)
    )
    if appointment is not None:
        return {
            "kind": "appointment",
            "id": str(appointment.id),
            "label": appointment_label(appointment, snapshot.tz),
            "status": appointment.status,
        }
    return None


async def _expire_exhausted(uow: UnitOfWork, redis: Redis, snapshot: Snapshot, actor: str) -> Snapshot:
    """Tickets back in the queue after ``max_calls_before_no_show`` calls are no-shows."""
    limit = snapshot.policy.max_calls_before_no_show
    for key, row in list(snapshot.tickets.items()):
        if row.call_count < limit:
            continue
        ticket = await uow.session.get(WalkInTicket, row.id, with_for_update=True)
        if ticket is None or ticket.status != "waiting":
            continue
        ticket.status = "no_show"
        audit.record(
            uow,
            actor=actor,
            action="ticket.no_show",
            entity=ticket,
            agency_id=ticket.agency_id,
            number=ticket.number,
            calls=ticket.call_count,
            automatic=True,
        )
        snapshot = snapshot.without(key)
        _publish(uow, redis, ticket.agency_id, _event("no_show", snapshot, id=key, number=ticket.number))
    return snapshot


async def call_next(
    uow: UnitOfWork, redis: Redis, principal: Principal | None, counsellor_id: uuid.UUID, *, now: datetime
) -> WorkView | None:
    """Hand the counsellor their next person, or None when nothing suits them (→ 204).

    Serialized per agency (advisory lock held to commit): load the snapshot, ask the core, then
    claim with ``UPDATE … WHERE status = 'waiting'``. A ticket changed meanwhile by a request that
    does not take the lock (cancel, transfer) fails the conditional update and the core is asked
    again without it — so nobody is ever handed out twice.
    """
    counsellor, caller = await admin.visible_counsellor(uow, principal, counsellor_id, *QUEUE_ROLES)
    agency = await _agency(uow, counsellor.agency_id)
    await lock_queue(uow.session, agency.id)
    await uow.session.refresh(counsellor)  # desk state may have changed while we waited for the lock
    if not counsellor.active:
        raise Conflict("this counsellor is deactivated", code="inactive")
    if not counsellor.on_desk:
        raise Conflict("go on desk before calling the next person", code="off_desk")
    snapshot = await load_snapshot(uow.session, agency, now)
    current = await _current_work(uow, counsellor, snapshot)
    if current is not None:
        raise Conflict(
            "finish (or requeue) the current person before calling the next", code="busy", current=current
        )
    snapshot = await _expire_exhausted(uow, redis, snapshot, caller.actor)
    for _ in range(MAX_CLAIM_RETRIES):
        desk = snapshot.desk(counsellor.id)
        decision = next_work(desk, now, snapshot.state, snapshot.policy) if desk is not None else None
        if decision is None:
            return None
        if decision.kind is WorkKind.APPOINTMENT:
            view = await _claim_appointment(uow, redis, caller, counsellor, snapshot, decision)
        else:
            view = await _claim_ticket(uow, redis, caller, counsellor, agency, snapshot, decision)
        if view is not None:
            return view
        snapshot = snapshot.without(decision.item_id)
    raise Conflict("the queue changed too fast; try again", code="retry")


async def _claim_ticket(
    uow: UnitOfWork,
    redis: Redis,
    caller: Principal,
    counsellor: Counsellor,
    agency: Agency,
    snapshot: Snapshot,
    decision: WorkDecision,
) -> WorkView | None:
    now = snapshot.now
    claimed = (
        await uow.session.execute(
            update(WalkInTicket)
            .where(WalkInTicket.id == uuid.UUID(decision.item_id), WalkInTicket.status == "waiting")
            .values(
                status="called",
                counsellor_id=counsellor.id,
                desk=counsellor.desk_label,
                call_count=WalkInTicket.call_count + 1,
                last_called_at=now,
                called_at=func.coalesce(WalkInTicket.called_at, now),
            )
            .returning(WalkInTicket.id)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    if claimed is None:
        return None
    ticket = await uow.session.get(WalkInTicket, claimed, populate_existing=True)
    assert ticket is not None
    audit.record(
        uow,
        actor=caller.actor,
        action="ticket.called",
        entity=ticket,
        agency_id=ticket.agency_id,
        counsellor_id=counsellor.id,
        desk=ticket.desk,
        reason=decision.reason.value,
        call=ticket.call_count,
    )
    await _notify_called(uow, ticket, agency)
    expected = snapshot.durations.get(str(ticket.service_id), timedelta(minutes=15))
    after = snapshot.without(decision.item_id).busy(str(counsellor.id), now + expected)
    await _notify_soon(uow, after)
    _publish(
        uow,
        redis,
        ticket.agency_id,
        _event(
            "called",
            after,
            kind="ticket",
            id=str(ticket.id),
            number=ticket.number,
            label=ticket.number,
            desk=ticket.desk,
            counsellor_id=str(counsellor.id),
            call=ticket.call_count,
        ),
    )
    return WorkView(decision, counsellor, ticket.service_id, ticket.number, ticket=ticket)


async def _claim_appointment(
    uow: UnitOfWork,
    redis: Redis,
    caller: Principal,
    counsellor: Counsellor,
    snapshot: Snapshot,
    decision: WorkDecision,
) -> WorkView | None:
    now = snapshot.now
    claimed = (
        await uow.session.execute(
            update(Appointment)
            .where(Appointment.id == uuid.UUID(decision.item_id), Appointment.status == "checked_in")
            .values(status="in_progress", started_at=now, updated_at=now)
            .returning(Appointment.id)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    if claimed is None:
        return None
    appointment = await uow.session.get(Appointment, claimed, populate_existing=True)
    assert appointment is not None
    label = appointment_label(appointment, snapshot.tz)
    audit.record(
        uow,
        actor=caller.actor,
        action="appointment.started",
        entity=appointment,
        agency_id=appointment.agency_id,
        counsellor_id=counsellor.id,
        desk=counsellor.desk_label,
        reason=decision.reason.value,
    )
    _publish(
        uow,
        redis,
        appointment.agency_id,
        _event(
            "called",
            snapshot.busy(str(counsellor.id), appointment.ends_at),
            kind="appointment",
            id=str(appointment.id),
            number=None,
            label=label,
            desk=counsellor.desk_label,
            counsellor_id=str(counsellor.id),
            call=1,
        ),
    )
    return WorkView(decision, counsellor, appointment.service_id, label, appointment=appointment)


# --- ticket actions -------------------------------------------------------------------------


async def _ticket(
    uow: UnitOfWork, principal: Principal | None, ticket_id: uuid.UUID, *roles: Role
) -> tuple[WalkInTicket, Principal, Agency]:
    ticket = await uow.session.get(WalkInTicket, ticket_id, with_for_update=True, populate_existing=True)
    if ticket is None:
        raise NotFound(f"no ticket {ticket_id}", code="not_found")
    caller = require_in_agency(principal, ticket.agency_id, *roles)
    return ticket, caller, await _agency(uow, ticket.agency_id)


def _only_own(caller: Principal, ticket: WalkInTicket) -> None:
    if caller.role is Role.COUNSELLOR and ticket.counsellor_id != caller.counsellor_id:
        raise Forbidden("a counsellor acts only on the people it called", code="not_yours")


async def get_ticket(
    uow: UnitOfWork, principal: Principal | None, ticket_id: uuid.UUID, *, now: datetime
) -> TicketView:
    ticket = await uow.session.get(WalkInTicket, ticket_id)
    if ticket is None:
        raise NotFound(f"no ticket {ticket_id}", code="not_found")
    require_in_agency(principal, ticket.agency_id, *QUEUE_ROLES)
    snapshot = await load_snapshot(uow.session, await _agency(uow, ticket.agency_id), now)
    key = str(ticket.id)
    return TicketView(
        ticket, snapshot.positions().get(key), snapshot.waits().get(key), ticket.job_seeker_id is not None
    )


async def recall_ticket(
    uow: UnitOfWork, redis: Redis, principal: Principal | None, ticket_id: uuid.UUID, *, now: datetime
) -> TicketView:
    ticket, caller, agency = await _ticket(uow, principal, ticket_id, *QUEUE_ROLES)
    _only_own(caller, ticket)
    if ticket.status != "called":
        raise _bad_transition(ticket, "recalled")
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
    await _notify_called(uow, ticket, agency)
    _publish(
        uow,
        redis,
        agency.id,
        _event(
            "recalled",
            snapshot,
            kind="ticket",
            id=str(ticket.id),
            number=ticket.number,
            label=ticket.number,
            desk=ticket.desk,
            counsellor_id=str(ticket.counsellor_id),
            call=ticket.call_count,
        ),
    )
    return TicketView(ticket, has_phone=ticket.job_seeker_id is not None)


async def start_ticket(
    uow: UnitOfWork, redis: Redis, principal: Principal | None, ticket_id: uuid.UUID, *, now: datetime
) -> TicketView:
    """The person came to the desk: the counsellor's time is claimed (kind ``service``) for the
    expected duration, so online booking cannot take it; 409 if the counsellor is committed now."""
    ticket, caller, agency = await _ticket(uow, principal, ticket_id, *QUEUE_ROLES)
    _only_own(caller, ticket)
    if ticket.status != "called" or ticket.counsellor_id is None:
        raise _bad_transition(ticket, "started")
    expected = await expected_duration(uow.session, agency.id, ticket.service_id, now)
    counsellor_id = ticket.counsellor_id
    await lock_counsellors(uow.session, [counsellor_id])
    claim = await claim_time(
        uow.session,
        agency_id=agency.id,
        counsellor_id=counsellor_id,
        starts_at=now,
        ends_at=now + expected,
        kind="service",
        now=now,
    )
    if claim is None:
        # Something is booked before the usual end: claim the time up to it, if there is any.
        next_start = await uow.session.scalar(
            select(func.min(Claim.starts_at)).where(
                Claim.counsellor_id == counsellor_id, Claim.ends_at > now, live_claims(now)
            )
        )
        if next_start is not None and next_start > now:
            claim = await claim_time(
                uow.session,
                agency_id=agency.id,
                counsellor_id=counsellor_id,
                starts_at=now,
                ends_at=next_start,
                kind="service",
                now=now,
            )
    if claim is None:
        raise Conflict("the counsellor has another commitment right now", code="counsellor_busy")
    ticket.status = "in_service"
    ticket.started_at = now
    ticket.claim_id = claim.id
    audit.record(
        uow,
        actor=caller.actor,
        action="ticket.started",
        entity=ticket,
        agency_id=agency.id,
        counsellor_id=counsellor_id,
        claim_until=claim.ends_at.isoformat(),
    )
    _publish(
        uow,
        redis,
        agency.id,
        _light_event(
            "started",
            now,
            kind="ticket",
            id=str(ticket.id),
            number=ticket.number,
            desk=ticket.desk,
        ),
    )
    return TicketView(ticket, has_phone=ticket.job_seeker_id is not None)


async def complete_ticket(
    uow: UnitOfWork, redis: Redis, principal: Principal | None, ticket_id: uuid.UUID, *, now: datetime
) -> TicketView:
    """Done: records the service duration (it feeds the expected durations) and frees the rest
    of the claimed time."""
    ticket, caller, agency = await _ticket(uow, principal, ticket_id, *QUEUE_ROLES)
    _only_own(caller, ticket)
    if ticket.status != "in_service" or ticket.started_at is None:
        raise _bad_transition(ticket, "completed")
    ticket.status = "completed"
    ticket.completed_at = now
    seconds = int((now - ticket.started_at).total_seconds())
    if await _release_claim(uow, ticket.claim_id, now):
        ticket.claim_id = None
    audit.record(
        uow,
        actor=caller.actor,
        action="ticket.completed",
        entity=ticket,
        agency_id=agency.id,
        counsellor_id=ticket.counsellor_id,
        service_seconds=seconds,
    )
    _publish(
        uow,
        redis,
        agency.id,
        _light_event(
            "completed",
            now,
            kind="ticket",
            id=str(ticket.id),
            number=ticket.number,
            desk=ticket.desk,
        ),
    )
    return TicketView(ticket, has_phone=ticket.job_seeker_id is not None, service_seconds=seconds)


async def requeue_ticket(
    uow: UnitOfWork, redis: Redis, principal: Principal | None, ticket_id: uuid.UUID, *, now: datetime
) -> TicketView:
    """Nobody answered: back to the queue with its calls counted (offered again after the recall
    interval; a no-show after ``max_calls_before_no_show`` calls)."""
    ticket, caller, agency = await _ticket(uow, principal, ticket_id, *QUEUE_ROLES)
    _only_own(caller, ticket)
    if ticket.status != "called":
        raise _bad_transition(ticket, "put back in the queue")
    ticket.status, ticket.counsellor_id, ticket.desk = "waiting", None, None
    audit.record(
        uow,
        actor=caller.actor,
        action="ticket.requeued",
        entity=ticket,
        agency_id=agency.id,
        calls=ticket.call_count,
    )
    snapshot = await load_snapshot(uow.session, agency, now)
    await _notify_soon(uow, snapshot)
    _publish(uow, redis, agency.id, _event("requeued", snapshot, id=str(ticket.id), number=ticket.number))
    key = str(ticket.id)
    return TicketView(
        ticket, snapshot.positions().get(key), snapshot.waits().get(key), ticket.job_seeker_id is not None
    )


async def no_show_ticket(
    uow: UnitOfWork, redis: Redis, principal: Principal | None, ticket_id: uuid.UUID, *, now: datetime
) -> TicketView:
    ticket, caller, agency = await _ticket(uow, principal, ticket_id, *QUEUE_ROLES)
    _only_own(caller, ticket)
    if ticket.status not in ("called", "waiting"):
        raise _bad_transition(ticket, "marked as a no-show")
    snapshot = await load_snapshot(uow.session, agency, now)
    limit = snapshot.policy.max_calls_before_no_show
    if ticket.call_count < limit:
        raise Conflict(
            f"ticket {ticket.number} was called {ticket.call_count} of {limit} times; recall it first",
            code="too_few_calls",
            calls=ticket.call_count,
            required=limit,
        )
    ticket.status = "no_show"
    audit.record(
        uow,
        actor=caller.actor,
        action="ticket.no_show",
        entity=ticket,
        agency_id=agency.id,
        calls=ticket.call_count,
    )
    after = snapshot.without(str(ticket.id))
    await _notify_soon(uow, after)
    _publish(uow, redis, agency.id, _event("no_show", after, id=str(ticket.id), number=ticket.number))
    return TicketView(ticket, has_phone=ticket.job_seeker_id is not None)


async def cancel_ticket(
    uow: UnitOfWork, redis: Redis, principal: Principal | None, ticket_id: uuid.UUID, *, now: datetime
) -> TicketView:
    ticket, caller, agency = await _ticket(uow, principal, ticket_id, *QUEUE_ROLES)
    _only_own(caller, ticket)
    if ticket.status not in ("waiting", "called"):
        raise _bad_transition(ticket, "cancelled")
    ticket.status = "cancelled"
    audit.record(uow, actor=caller.actor, action="ticket.cancelled", entity=ticket, agency_id=agency.id)
    snapshot = await load_snapshot(uow.session, agency, now)
    await _notify_soon(uow, snapshot)
    _publish(uow, redis, agency.id, _event("cancelled", snapshot, id=str(ticket.id), number=ticket.number))
    return TicketView(ticket, has_phone=ticket.job_seeker_id is not None)


async def transfer_ticket(
    uow: UnitOfWork,
    redis: Redis,
    principal: Principal | None,
    ticket_id: uuid.UUID,
    body: TicketTransfer,
    *,
    now: datetime,
) -> TicketView:
    """Send a ticket to another service and/or counsellor. It keeps its number and its original
    arrival time (so its place), and waits again; a counsellor target becomes its preferred
    counsellor (reserved for them while they are on desk, until the ticket is urgent or starving)."""
    ticket, caller, agency = await _ticket(uow, principal, ticket_id, *QUEUE_ROLES)
    _only_own(caller, ticket)
    if ticket.status not in ("waiting", "called", "in_service"):
        raise _bad_transition(ticket, "transferred")
    changes: dict[str, Any] = {"from_service_id": ticket.service_id}
    if body.service_id is not None:
        service = await uow.session.get(Service, body.service_id)
        if service is None or service.agency_id != agency.id or not service.active:
            raise Invalid("service_id", "no active service with this id in this agency")
        ticket.service_id = service.id
        changes["service_id"] = service.id
    if body.counsellor_id is not None:
        target = await uow.session.get(Counsellor, body.counsellor_id)
        if target is None or target.agency_id != agency.id or not target.active:
            raise Invalid("counsellor_id", "no active counsellor with this id in this agency")
        ticket.preferred_counsellor_id = target.id
        changes["counsellor_id"] = target.id
    if ticket.status == "in_service" and await _release_claim(uow, ticket.claim_id, now):
        ticket.claim_id = None
    ticket.status, ticket.counsellor_id, ticket.desk = "waiting", None, None
    ticket.call_count, ticket.last_called_at, ticket.started_at = 0, None, None
    audit.record(
        uow, actor=caller.actor, action="ticket.transferred", entity=ticket, agency_id=agency.id, **changes
    )
    snapshot = await load_snapshot(uow.session, agency, now)
    await _notify_soon(uow, snapshot)
    _publish(
        uow,
        redis,
        agency.id,
        _event(
            "transferred",
            snapshot,
            id=str(ticket.id),
            number=ticket.number,
            service_id=str(ticket.service_id),
        ),
    )
    key = str(ticket.id)
    return TicketView(
        ticket, snapshot.positions().get(key), snapshot.waits().get(key), ticket.job_seeker_id is not None
    )


# --- counsellor desk ------------------------------------------------------------------------


async def set_desk(
    uow: UnitOfWork,
    redis: Redis,
    principal: Principal | None,
    counsellor_id: uuid.UUID,
    body: DeskUpdate,
    *,
    now: datetime,
) -> Counsellor:
    """On desk (with a desk label, e.g. "Guichet 3") or off desk."""
    counsellor, caller = await admin.visible_counsellor(uow, principal, counsellor_id, *QUEUE_ROLES)
    if not counsellor.active:
        raise Conflict("this counsellor is deactivated", code="inactive")
    label = body.desk_label if body.desk_label is not None else counsellor.desk_label
    if body.on_desk and not label:
        raise Invalid("desk_label", "required to go on desk")
    counsellor.desk_label = label
    if counsellor.on_desk != body.on_desk:
        counsellor.desk_since = now if body.on_desk else None
    counsellor.on_desk = body.on_desk
    audit.record(
        uow,
        actor=caller.actor,
        action="counsellor.desk",
        entity=counsellor,
        agency_id=counsellor.agency_id,
        on_desk=body.on_desk,
        desk=label,
    )
    snapshot = await load_snapshot(uow.session, await _agency(uow, counsellor.agency_id), now)
    _publish(
        uow,
        redis,
        counsellor.agency_id,
        _event(
            "desk",
            snapshot,
            counsellor_id=str(counsellor.id),
            on_desk=body.on_desk,
            desk=label,
        ),
    )
    return counsellor


# --- appointments in the same flow ----------------------------------------------------------


async def check_in(
    uow: UnitOfWork,
    redis: Redis,
    principal: Principal | None,
    manage_token: str | None,
    appointment_id: uuid.UUID,
    *,
    now: datetime,
) -> tuple[Appointment, str]:
    """The appointment holder has arrived. Open on the appointment's local day (agency time
    zone), from midnight until the appointment's end; only a ``confirmed`` appointment."""
    appointment, staff = await appointment_for(uow, appointment_id, principal, manage_token, for_update=True)
    agency = await _agency(uow, appointment.agency_id)
    tz = _tz(agency)
    if appointment.status != "confirmed":
        raise Conflict(
            f"the appointment is {appointment.status}; it cannot be checked in",
            code="bad_transition",
            status_now=appointment.status,
        )
    if local_day(tz, appointment.starts_at) != local_day(tz, now):
        raise Conflict("check-in is open on the day of the appointment only", code="not_today")
    if now >= appointment.ends_at:
        raise Conflict("the appointment is over; book a new one or take a ticket", code="too_late")
    appointment.status, appointment.checked_in_at, appointment.updated_at = "checked_in", now, now
    actor = staff.actor if staff is not None else "job_seeker:manage_token"
    audit.record(uow, actor=actor, action="appointment.checked_in", entity=appointment, agency_id=agency.id)
    label = appointment_label(appointment, tz)
    snapshot = await load_snapshot(uow.session, agency, now)
    _publish(
        uow,
        redis,
        agency.id,
        _event("checked_in", snapshot, kind="appointment", id=str(appointment.id), label=label),
    )
    return appointment, label


async def _staff_appointment(
    uow: UnitOfWork, principal: Principal | None, appointment_id: uuid.UUID
) -> tuple[Appointment, Principal, Agency]:
    appointment, staff = await appointment_for(uow, appointment_id, principal, None, for_update=True)
    if staff is None:  # pragma: no cover - appointment_for without a token always returns staff
        raise NotFound(f"no appointment {appointment_id}", code="not_found")
    caller = require_in_agency(staff, appointment.agency_id, *STAFF_ROLES)
    if caller.role is Role.COUNSELLOR and caller.counsellor_id != appointment.counsellor_id:
        raise Forbidden("a counsellor acts only on its own appointments", code="not_yours")
    return appointment, caller, await _agency(uow, appointment.agency_id)


async def complete_appointment(
    uow: UnitOfWork, redis: Redis, principal: Principal | None, appointment_id: uuid.UUID, *, now: datetime
) -> tuple[Appointment, str]:
    appointment, caller, agency = await _staff_appointment(uow, principal, appointment_id)
    if appointment.status != "in_progress":
        raise Conflict(
            f"the appointment is {appointment.status}; it cannot be completed",
            code="bad_transition",
            status_now=appointment.status,
        )
    appointment.status, appointment.completed_at, appointment.updated_at = "completed", now, now
    if await _release_claim(uow, appointment.claim_id, now):  # finishing early frees time for walk-ins
        appointment.claim_id = None
    seconds = int((now - (appointment.started_at or now)).total_seconds())
    audit.record(
        uow,
        actor=caller.actor,
        action="appointment.completed",
        entity=appointment,
        agency_id=agency.id,
        service_seconds=seconds,
    )
    label = appointment_label(appointment, _tz(agency))
    snapshot = await load_snapshot(uow.session, agency, now)
    _publish(
        uow,
        redis,
        agency.id,
        _event("completed", snapshot, kind="appointment", id=str(appointment.id), label=label),
    )
    return appointment, label


async def no_show_appointment(
    uow: UnitOfWork, redis: Redis, principal: Principal | None, appointment_id: uuid.UUID, *, now: datetime
) -> tuple[Appointment, str]:
    """Nobody came: the rest of the appointment's time goes back to the pool (walk-ins, bookings)."""
    appointment, caller, agency = await _staff_appointment(uow, principal, appointment_id)
    if appointment.status not in ("confirmed", "checked_in", "in_progress"):
        raise Conflict(
            f"the appointment is {appointment.status}; it cannot be a no-show",
            code="bad_transition",
            status_now=appointment.status,
        )
    if now < appointment.starts_at:
        raise Conflict("the appointment has not started yet", code="not_started")
    appointment.status, appointment.updated_at = "no_show", now
    if await _release_claim(uow, appointment.claim_id, now):
        appointment.claim_id = None
    audit.record(
        uow, actor=caller.actor, action="appointment.no_show", entity=appointment, agency_id=agency.id
    )
    label = appointment_label(appointment, _tz(agency))
    snapshot = await load_snapshot(uow.session, agency, now)
    _publish(
        uow,
        redis,
        agency.id,
        _event("no_show", snapshot, kind="appointment", id=str(appointment.id), label=label),
    )
    return appointment, label


# --- reading --------------------------------------------------------------------------------


async def get_queue(
    uow: UnitOfWork, redis: Redis, principal: Principal | None, agency_id: uuid.UUID, *, now: datetime
) -> QueueView:
    """The front desk's view: waiting tickets in call order with estimates, people being called
    or served, today's appointments, counsellors and what they have in hand."""
    require_in_agency(principal, agency_id, *QUEUE_ROLES)
    agency = await admin.get_agency(uow, agency_id, active_only=False)
    snapshot_id = await live.latest_id(redis, agency.id)  # before reading: replay covers the rest
    snapshot = await load_snapshot(uow.session, agency, now)
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
    called_rows = (
        await uow.session.scalars(
            select(WalkInTicket)
            .where(
                WalkInTicket.agency_id == agency.id,
                WalkInTicket.local_day == snapshot.day,
                WalkInTicket.status.in_(("called", "in_service")),
            )
            .order_by(WalkInTicket.last_called_at.desc())
        )
    ).all()
    called = [TicketView(t, has_phone=t.job_seeker_id is not None) for t in called_rows]
    day_start, day_end = day_bounds(snapshot.tz, snapshot.day)
    appointment_rows = (
        await uow.session.scalars(
            select(Appointment)
            .where(
                Appointment.agency_id == agency.id,
                Appointment.starts_at < day_end,
                Appointment.ends_at > day_start,
                Appointment.status.in_(("confirmed", "checked_in", "in_progress")),
            )
            .order_by(Appointment.starts_at, Appointment.id)
        )
    ).all()
    in_hand: dict[uuid.UUID, dict[str, Any]] = {}
    for t in called_rows:
        if t.counsellor_id is not None:
            in_hand.setdefault(
                t.counsellor_id, {"kind": "ticket", "id": str(t.id), "number": t.number, "status": t.status}
            )
    for a in appointment_rows:
        if a.status == "in_progress":
            in_hand.setdefault(
                a.counsellor_id,
                {
                    "kind": "appointment",
                    "id": str(a.id),
                    "label": appointment_label(a, snapshot.tz),
                    "status": a.status,
                },
            )
    counsellors = [(c, in_hand.get(c.id)) for c in snapshot.counsellors.values()]
    counsellors.sort(key=lambda pair: (not pair[0].on_desk, pair[0].desk_label or "", pair[0].name))
    return QueueView(
        snapshot=snapshot,
        snapshot_id=snapshot_id,
        waiting=waiting,
        called=called,
        appointments=[(a, appointment_label(a, snapshot.tz)) for a in appointment_rows],
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
        "calls": await recent_calls(uow.session, snapshot),
        **board_stats(snapshot),
    }


async def public_agency(uow: UnitOfWork, agency_id: uuid.UUID) -> Agency:
    return await admin.get_agency(uow, agency_id)
