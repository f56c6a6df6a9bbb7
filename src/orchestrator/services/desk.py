"""The counsellor's desk: call the next person, go on or off desk.

One allocator for everyone who is physically at the agency: :func:`call_next` asks the pure
core (:func:`orchestrator.scheduling.queue.next_work`) what a counsellor should take — a
checked-in appointment of theirs or a walk-in ticket — and claims it.

Why two counsellors never get the same person, and one counsellor never gets two, without an
agency-wide lock (see :func:`call_next` for the steps):

- the counsellor's advisory lock (:func:`orchestrator.repositories.lock_counsellors`, held to
  commit) serializes the calls of *one* counsellor: a double click waits, then sees the person
  the first click handed out and gets 409 ``busy``. The "busy?" check reads state loaded after
  taking the lock, so it sees every committed call of that counsellor;
- a ticket is claimed by :func:`orchestrator.repositories.queue_claims.claim_first_waiting`: the first of this
  counsellor's ranked candidates whose row is still ``waiting`` and not locked by anyone, locked
  ``FOR NO KEY UPDATE SKIP LOCKED`` and updated in the same statement. Two concurrent callers
  can never lock the same row, and a row that changed meanwhile fails the status re-check, so
  each ticket is handed out once; callers working on the same head of the queue skip each
  other's rows instead of waiting for each other's commits;
- an appointment is offered only to its own counsellor (already serialized), and is started by a
  conditional ``UPDATE … WHERE status = 'checked_in'``.

What the former agency-wide lock also covered, and what covers it now:

- automatic no-shows (:func:`_expire_exhausted`): rows locked ``SKIP LOCKED`` and re-checked,
  so each is expired once, by whichever caller gets it;
- "soon" SMS: recorded by the queue refresh after commit (:mod:`orchestrator.services.queue_refresh`),
  once per outbox dedupe key (unique), inserted in key order
  (:func:`orchestrator.services.queue_common.notify_soon`);
- cancel, transfer, requeue, no-show against a call: they lock the ticket row first
  (:mod:`orchestrator.services.tickets`), so a claim skips the row while they hold it, and they
  wait for a claim's commit and then see ``called``;
- going off desk during a call: :func:`set_desk` takes the same counsellor lock.

Lock order, so nothing waits in a cycle: counsellor lock first; then rows taken ``SKIP LOCKED``
(never waited for); then the outbox keys in sorted order. Ticket actions take their ticket row
and then, to start a service, the counsellor lock — call next never waits for a ticket row.

A snapshot may be a few milliseconds stale (other desks commit while we decide): that only
costs a skipped candidate. A ticket that another transaction holds without taking it (a
transfer in flight) is skipped too: if it was the only one left, this call returns 204 and the
next press gets it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, Uuid, bindparam, exists, select, update

from orchestrator.auth import Principal
from orchestrator.db import UnitOfWork
from orchestrator.errors import Conflict, Invalid, NotFound
from orchestrator.models import Agency, Appointment, CallbackRequest, Counsellor
from orchestrator.repositories.calendars import claim_time, lock_counsellors
from orchestrator.repositories.queue import appointment_label
from orchestrator.repositories.queue_claims import (
    LockedTicket,
    claim_appointment,
    claim_first_waiting,
    lock_waiting,
)
from orchestrator.scheduling.callbacks import call_early
from orchestrator.scheduling.queue import DeskCounsellor, Reason, WorkDecision, WorkKind, next_works
from orchestrator.scheduling.transitions import (
    APPOINTMENT,
    CALLBACK,
    TICKET,
    AppointmentStatus,
    CallbackStatus,
    TicketStatus,
)
from orchestrator.services import admin, audit
from orchestrator.services.callbacks import CallbackPolicy, callback_ask, service_skills
from orchestrator.services.commands import Actor, Channel, principal_of
from orchestrator.services.queue_common import (
    QUEUE_ROLES,
    call_event,
    event,
    notify_called,
    publish_change,
)
from orchestrator.services.queue_snapshot import Snapshot, load_snapshot

# Candidates claimed in one statement: the first round tries the counsellor's top two, each
# further round (all of them were taken by concurrent callers) the next ones, twice as many.
# Each round ranks the queue once (``next_works``) and claims in one statement:
# without contention the first round wins; 2+4+…+64 = 126 candidates cover any realistic race.
FIRST_CANDIDATES = 2
MAX_CLAIM_ROUNDS = 6
CALLBACK_EARLY = timedelta(minutes=5)  # a callback may be started this long before its time


@dataclass
class WorkView:
    decision: WorkDecision
    counsellor: Counsellor
    service_id: uuid.UUID
    label: str
    ticket: LockedTicket | None = None
    appointment: Appointment | None = None
    callback: CallbackRequest | None = None


async def _locked_counsellor(
    uow: UnitOfWork, principal: Principal | None, counsellor_id: uuid.UUID
) -> tuple[Counsellor, Agency, Principal]:
    """Take the counsellor's lock (to commit), then load them with their agency (one query) and
    authorize: their row is read after the lock, so it is never older than a concurrent request
    of theirs. (The key comes from the path; a refused caller holds it only until its rollback.)"""
    await lock_counsellors(uow.session, [counsellor_id])
    found = (await uow.session.execute(_COUNSELLOR_AND_AGENCY, {"counsellor": counsellor_id})).first()
    return _authorized(principal, counsellor_id, found)


def _authorized(
    principal: Principal | None, counsellor_id: uuid.UUID, found: Any
) -> tuple[Counsellor, Agency, Principal]:
    if found is None:
        raise NotFound(f"no counsellor {counsellor_id}", code="not_found")
    counsellor, agency = found[0], found[1]
    return counsellor, agency, admin.authorize_counsellor(principal, counsellor, *QUEUE_ROLES)


_COUNSELLOR_AND_AGENCY = (
    select(Counsellor, Agency)
    .join(Agency, Agency.id == Counsellor.agency_id)
    .where(Counsellor.id == bindparam("counsellor"))
    .execution_options(populate_existing=True)
)


@dataclass(frozen=True, slots=True)
class _Desk:
    counsellor: Counsellor
    agency: Agency
    caller: Principal
    callback_in_hand: uuid.UUID | None  # a callback in progress: the counsellor is busy
    callback_started: uuid.UUID | None  # their scheduled callback whose time has come, started


async def _locked_desk(
    uow: UnitOfWork, principal: Principal | None, counsellor_id: uuid.UUID, now: datetime
) -> _Desk:
    """Call next's :func:`_locked_counsellor`, whose query also answers "a callback in hand?" and
    starts the counsellor's due callback if not (``SKIP LOCKED``: two desks never start it
    twice). A refusal that follows (off desk, busy) rolls the start back with everything else."""
    await lock_counsellors(uow.session, [counsellor_id])
    params = {"counsellor": counsellor_id, "now": now, "due": now + CALLBACK_EARLY}
    found = (await uow.session.execute(_DESK, params)).first()
    counsellor, agency, caller = _authorized(principal, counsellor_id, found)
    assert found is not None
    return _Desk(counsellor, agency, caller, found.in_hand, found.started)


def _desk_statement() -> Any:
    """The counsellor and agency of :data:`_COUNSELLOR_AND_AGENCY`, with the callback in hand and
    the due callback started (a data-modifying clause of the same statement). No parameter is
    named like a column of ``callback_requests``: SQLAlchemy would add it to the UPDATE's SET."""
    callbacks = cast(Table, CallbackRequest.__table__)
    c = callbacks.c
    counsellor = bindparam("counsellor", type_=Uuid())
    now = bindparam("now", type_=c.started_at.type)
    in_hand = (
        select(c.id).where(c.counsellor_id == counsellor, c.status == CallbackStatus.IN_PROGRESS).limit(1)
    ).cte("in_hand")
    due = (
        select(c.id)
        .where(
            c.counsellor_id == counsellor,
            c.status == CallbackStatus.SCHEDULED,
            c.scheduled_at <= bindparam("due", type_=c.scheduled_at.type),
            ~exists(select(in_hand.c.id)),
        )
        .order_by(c.scheduled_at)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    started = (
        update(callbacks)
        .where(c.id == due)
        .values(status=CallbackStatus.IN_PROGRESS, started_at=now, updated_at=now, attempts=c.attempts + 1)
        .returning(c.id)
    ).cte("started")
    return _COUNSELLOR_AND_AGENCY.add_columns(
        select(in_hand.c.id).scalar_subquery().label("in_hand"),
        select(started.c.id).scalar_subquery().label("started"),
    ).add_cte(started)


_DESK = _desk_statement()


async def _expire_exhausted(uow: UnitOfWork, snapshot: Snapshot, actor: str) -> Snapshot:
    """Tickets back in the queue after ``max_calls_before_no_show`` calls are no-shows.

    The core never offers them, so this is housekeeping: the rows are locked ``SKIP LOCKED``
    and re-checked, so concurrent callers expire each one once and never wait for each other.
    """
    limit = snapshot.policy.max_calls_before_no_show
    exhausted = [row.id for row in snapshot.tickets.values() if row.call_count >= limit]
    if not exhausted:
        return snapshot
    expired = await lock_waiting(uow.session, exhausted)
    move = TICKET.move("no_show", TicketStatus.WAITING)  # lock_waiting returns waiting tickets only
    for ticket in expired:
        ticket.status = move.target
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
        snapshot = snapshot.without(str(ticket.id))
    # counters once, from the final snapshot (exhausted tickets never count as waiting anyway)
    for ticket in expired:
        key = str(ticket.id)
        publish_change(uow, ticket.agency_id, event(move.live_event, snapshot, id=key, number=ticket.number))
    return snapshot


@dataclass(frozen=True, slots=True)
class CallNext:
    actor: Actor
    channel: Channel
    counsellor_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class SetDesk:
    actor: Actor
    channel: Channel
    counsellor_id: uuid.UUID
    on_desk: bool
    desk_label: str | None = None


async def call_next(uow: UnitOfWork, cmd: CallNext, *, now: datetime) -> WorkView | None:
    """Hand the counsellor their next person, or None when nothing suits them (→ 204).

    1. Lock the counsellor (advisory, to commit), then read their desk state.
    2. Load the snapshot; 409 ``busy`` if they still have someone in hand.
    3. Ask the core for their top candidates and claim the first one nobody else holds (one
       statement, ``SKIP LOCKED``); if all were taken meanwhile, the next ones, and so on.

    See the module docstring for why nobody is handed out twice.
    """
    locked = await _locked_desk(uow, principal_of(cmd.actor), cmd.counsellor_id, now)
    counsellor, agency, caller = locked.counsellor, locked.agency, locked.caller
    if not counsellor.active:
        raise Conflict("this counsellor is deactivated", code="inactive")
    if not counsellor.on_desk:
        raise Conflict("go on desk before calling the next person", code="off_desk")
    snapshot = await load_snapshot(uow.session, agency, now)
    current = snapshot.current_work(counsellor.id)
    if current is not None:
        raise Conflict(
            "finish (or requeue) the current person before calling the next", code="busy", current=current
        )
    if locked.callback_in_hand is not None:
        raise Conflict(
            "record the outcome of the current callback first",
            code="busy",
            current=str(locked.callback_in_hand),
        )
    if locked.callback_started is not None:
        return await _due_callback(uow, counsellor, caller, locked.callback_started)
    snapshot = await _expire_exhausted(uow, snapshot, caller.actor)
    desk = snapshot.desk(counsellor.id)
    if desk is None:
        return None
    count = FIRST_CANDIDATES
    for _ in range(MAX_CLAIM_ROUNDS):
        # the counsellor's next choices in the core's order (the queue ranked once); a due
        # appointment comes first and alone
        candidates = next_works(desk, snapshot.now, snapshot.state, snapshot.policy, count)
        if not candidates:  # nothing due, no walk-in suits them: a waiting callback, now
            return await _early_callback(uow, caller, counsellor, agency, desk, now)
        first = candidates[0]
        if first.kind is WorkKind.APPOINTMENT:
            view = await _start_appointment(uow, caller, counsellor, snapshot, first)
            if view is not None:
                return view
        else:
            ticket = await claim_first_waiting(
                uow.session,
                [uuid.UUID(c.item_id) for c in candidates],
                counsellor_id=counsellor.id,
                desk=counsellor.desk_label,
                now=now,
            )
            if ticket is not None:
                decision = next(c for c in candidates if c.item_id == str(ticket.id))
                return await _called(uow, caller, counsellor, agency, snapshot, decision, ticket)
            count *= 2
        snapshot = snapshot.without(*(c.item_id for c in candidates))  # all taken meanwhile
    raise Conflict("the queue changed too fast; try again", code="retry")


async def _due_callback(
    uow: UnitOfWork, counsellor: Counsellor, caller: Principal, found: uuid.UUID
) -> WorkView:
    """The counsellor's callback whose reserved time has come, started by :func:`_locked_desk`'s
    query: its time was claimed for it, so it goes before the queue like an appointment."""
    request = await uow.session.get(CallbackRequest, found, populate_existing=True)
    assert request is not None and request.service_id is not None
    audit.record(
        uow,
        actor=caller.actor,
        action="callback.started",
        entity=request,
        agency_id=request.agency_id,
        counsellor_id=counsellor.id,
    )
    decision = WorkDecision(
        WorkKind.CALLBACK,
        str(request.id),
        Reason.CALLBACK_DUE,
        detail=(("scheduled_at", request.scheduled_at.isoformat() if request.scheduled_at else ""),),
    )
    label = f"Rappel {request.phone or ''}".strip()
    return WorkView(decision, counsellor, request.service_id, label, callback=request)


async def _early_callback(
    uow: UnitOfWork,
    caller: Principal,
    counsellor: Counsellor,
    agency: Agency,
    desk: DeskCounsellor,
    now: datetime,
) -> WorkView | None:
    """An idle counsellor who works by phone calls a waiting callback now (``call_early``): its
    claim moves to them, from now; the person is called sooner than planned."""
    if "phone" not in counsellor.modes:
        return None
    waiting = list(
        await uow.session.scalars(
            select(CallbackRequest)
            .where(
                CallbackRequest.agency_id == agency.id,
                CallbackRequest.status.in_((CallbackStatus.REQUESTED, CallbackStatus.SCHEDULED)),
                CallbackRequest.deadline_at > now,
                CallbackRequest.service_id.is_not(None),
            )
            .with_for_update(skip_locked=True)
        )
    )
    if not waiting:
        return None
    policy = CallbackPolicy.of(agency)
    skills = await service_skills(uow, {r.service_id for r in waiting if r.service_id})
    pick = call_early(
        [callback_ask(r, skills, policy) for r in waiting],
        skills=frozenset(counsellor.skills),
        languages=frozenset(counsellor.languages),
        now=now,
        free_until=desk.next_commitment(now),
    )
    if pick is None:
        return None
    request = next(r for r in waiting if str(r.id) == pick.id)
    claim_id = await claim_time(
        uow.session,
        agency_id=agency.id,
        counsellor_id=counsellor.id,
        starts_at=now,
        ends_at=now + pick.duration,
        kind="callback",
        now=now,
        replacing=request.claim_id,
    )
    if claim_id is None:
        return None  # the time was taken meanwhile: nothing to hand out now
    planned = request.scheduled_at
    request.status = CALLBACK.move("call_early", request.status).target
    request.counsellor_id, request.claim_id, request.scheduled_at = counsellor.id, claim_id, now
    request.started_at, request.updated_at, request.attempts = now, now, request.attempts + 1
    request.placement_reason = "called_early"
    audit.record(
        uow,
        actor=caller.actor,
        action="callback.started",
        entity=request,
        agency_id=agency.id,
        counsellor_id=counsellor.id,
        reason="called_early",
        planned_at=planned.isoformat() if planned else None,
    )
    assert request.service_id is not None
    decision = WorkDecision(
        WorkKind.CALLBACK,
        str(request.id),
        Reason.CALLBACK_EARLY,
        detail=(("planned_at", planned.isoformat() if planned else ""),),
    )
    return WorkView(
        decision, counsellor, request.service_id, f"Rappel {request.phone or ''}".strip(), callback=request
    )


async def _called(
    uow: UnitOfWork,
    caller: Principal,
    counsellor: Counsellor,
    agency: Agency,
    snapshot: Snapshot,
    decision: WorkDecision,
    ticket: LockedTicket,
) -> WorkView:
    """Record a claimed ticket: audit, "you are called" SMS, live event (the "soon" SMS and the
    typical wait follow from the refresh it asks for)."""
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
    await notify_called(uow, ticket, agency)
    publish_change(
        uow,
        ticket.agency_id,
        call_event(
            TICKET.move("call", TicketStatus.WAITING).live_event,
            snapshot.without(decision.item_id),
            ticket,
            counsellor.id,
        ),
    )
    return WorkView(decision, counsellor, ticket.service_id, ticket.number, ticket=ticket)


async def _start_appointment(
    uow: UnitOfWork,
    caller: Principal,
    counsellor: Counsellor,
    snapshot: Snapshot,
    decision: WorkDecision,
) -> WorkView | None:
    now = snapshot.now
    appointment = await claim_appointment(uow.session, uuid.UUID(decision.item_id), now)
    if appointment is None:
        return None
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
    publish_change(
        uow,
        appointment.agency_id,
        event(
            APPOINTMENT.move("start", AppointmentStatus.CHECKED_IN).live_event,
            snapshot,  # its counters (waiting, desks open) do not change with this start
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


async def set_desk(uow: UnitOfWork, body: SetDesk, *, now: datetime) -> Counsellor:
    """On desk (with a desk label, e.g. "Guichet 3") or off desk.

    Takes the counsellor's lock like :func:`call_next`, so going off desk never interleaves with
    a call next of the same counsellor (which would hand someone to a closed desk)."""
    counsellor, agency, caller = await _locked_counsellor(uow, principal_of(body.actor), body.counsellor_id)
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
    snapshot = await load_snapshot(uow.session, agency, now)
    publish_change(
        uow,
        counsellor.agency_id,
        event(
            "desk",
            snapshot,
            counsellor_id=str(counsellor.id),
            on_desk=body.on_desk,
            desk=label,
        ),
    )
    return counsellor
