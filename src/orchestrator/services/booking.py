"""Web booking use cases: availability, holds, booking, cancel, reschedule.

Each call loads a snapshot, asks the pure core, then claims the time in PostgreSQL under a
per-counsellor lock; the exclusion constraint on ``claims`` is the guarantee against overlaps.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, Uuid, and_, bindparam, select, update

from orchestrator import outbox
from orchestrator.auth import Principal, staff_of
from orchestrator.db import UnitOfWork
from orchestrator.errors import Conflict, Invalid, NotFound
from orchestrator.models import Agency, Appointment, Claim, Hold, JobSeeker, Service
from orchestrator.repositories.appointments import changed, claim_deleted
from orchestrator.repositories.calendars import claim_time, service_spec
from orchestrator.repositories.ledgers import LedgerRows, ledger_params, load_ledger_records
from orchestrator.repositories.writes import (
    GUARD_ID,
    NewRow,
    Prebuilt,
    RowChange,
    Write,
    row_of,
    write_together,
)
from orchestrator.scheduling.availability import (
    ServiceSpec,
    Slot,
    SlotRequest,
    free_slots,
    open_slots,
    pick_slot,
    rank_slots,
)
from orchestrator.scheduling.errors import SlotUnavailable
from orchestrator.scheduling.ledger import (
    Ledger,
    LedgerRange,
    build_ledgers,
    ledger_day_window,
    ledger_range,
)
from orchestrator.scheduling.transitions import APPOINTMENT, AppointmentStatus
from orchestrator.scheduling.types import Interval, Mode
from orchestrator.schemas import e164_phone, phone_region
from orchestrator.services import audit, callbacks
from orchestrator.services.appointment_messages import appointment_messages, notify
from orchestrator.services.appointments import appointment_for, new_manage_token
from orchestrator.services.arrivals import announce
from orchestrator.services.commands import Actor, Channel, JobSeekerDetails, is_system, principal_of

CLAIM_ATTEMPTS = 8  # a lost race is retried on a fresh snapshot (another counsellor may be free)
ALTERNATIVES = 5
ALTERNATIVE_DAYS = 3  # how far after the asked time a 409 looks for other slots
# SlotUnavailable codes that mean "this time is not bookable as asked" (422) rather than "taken" (409)
INVALID_CODES = {
    "not_on_grid": "starts_at",
    "outside_notice": "starts_at",
    "beyond_horizon": "starts_at",
    "mode_not_offered": "mode",
    "counsellor_not_eligible": "counsellor_id",
}


# --- commands (what any channel builds) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FindSlots:
    actor: Actor
    channel: Channel
    agency_id: uuid.UUID
    service_id: uuid.UUID
    start: datetime
    end: datetime
    mode: str | None = None
    language: str | None = None
    limit: int | None = None
    preferred: tuple[tuple[datetime, datetime], ...] = ()


@dataclass(frozen=True, slots=True)
class PlaceHold:
    actor: Actor
    channel: Channel
    agency_id: uuid.UUID
    service_id: uuid.UUID
    starts_at: datetime
    mode: str
    counsellor_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class BookAppointment:
    actor: Actor
    channel: Channel
    agency_id: uuid.UUID
    service_id: uuid.UUID
    starts_at: datetime
    mode: str
    job_seeker: JobSeekerDetails
    counsellor_id: uuid.UUID | None = None
    hold_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class GetAppointment:
    actor: Actor
    channel: Channel
    appointment_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class CancelAppointment:
    actor: Actor
    channel: Channel
    appointment_id: uuid.UUID
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RescheduleAppointment:
    actor: Actor
    channel: Channel
    appointment_id: uuid.UUID
    starts_at: datetime
    counsellor_id: uuid.UUID | None = None
    mode: str | None = None


@dataclass(frozen=True)
class Booking:
    agency: Agency
    service: Service
    spec: ServiceSpec
    staff: Principal | None  # the caller when it is staff of this agency

    @property
    def tz(self) -> str:
        return self.agency.timezone


async def _booking(uow: UnitOfWork, actor: Actor, agency_id: uuid.UUID, service_id: uuid.UUID) -> Booking:
    """The active agency and its service, read in one query (404 if either is not there)."""
    found = (
        await uow.session.execute(_AGENCY_AND_SERVICE, {"agency": agency_id, "service": service_id})
    ).first()
    if found is None:
        raise NotFound(f"no agency {agency_id}", code="not_found")
    return _bookable(actor, found.Agency, found.Service, service_id)


def _bookable(actor: Actor, agency: Agency, service: Service | None, service_id: uuid.UUID) -> Booking:
    """What ``actor`` may book of ``service`` in ``agency`` (404 if the agency or the service is
    inactive, or the service is for staff only)."""
    if not agency.active:
        raise NotFound(f"no agency {agency.id}", code="not_found")
    staff = staff_of(principal_of(actor), agency.id)
    if (
        service is None
        or not service.active
        or (service.bookable_by == "staff" and staff is None and not is_system(actor))
    ):
        raise NotFound(f"no service {service_id} in agency {agency.id}", code="not_found")
    return Booking(agency, service, service_spec(service), staff)


_AGENCY_AND_SERVICE = (
    select(Agency, Service)
    .outerjoin(Service, and_(Service.id == bindparam("service"), Service.agency_id == Agency.id))
    .where(Agency.id == bindparam("agency"))
)


# --- availability ---------------------------------------------------------------------------


async def _ledgers(
    uow: UnitOfWork,
    ctx: Booking,
    window: Interval,
    now: datetime,
    *,
    counsellor_ids: Sequence[uuid.UUID] | None = None,
    exclude_claims: Sequence[uuid.UUID] = (),
    with_plan: bool = True,
) -> Loaded:
    """The ledgers of the counsellors who could give the service, around ``window`` (one query);
    ``with_plan=False``: the time the capacity plan keeps for walk-ins and callbacks is bookable."""
    span = ledger_range(window, ctx.tz)
    rows = await load_ledger_records(
        uow.session,
        ledger_params(
            agency_id=ctx.agency.id,
            span=span,
            now=now,
            skill=ctx.service.skill,
            counsellor_ids=counsellor_ids,
            exclude_claims=exclude_claims,
            withhold_stale=ctx.staff is None,  # staff see every counsellor and decide
            with_plan=with_plan,
        ),
    )
    return Loaded(span, rows, ctx.tz)


@dataclass
class Loaded:
    """Ledgers read for a window: the rows as read (their digest keys the availability cache)
    and the core's ledgers, built from them once, when first needed."""

    span: LedgerRange
    rows: LedgerRows
    tz: str
    _ledgers: list[Ledger] | None = None

    def ledgers(self) -> list[Ledger]:
        if self._ledgers is None:
            self._ledgers = build_ledgers(
                self.rows.records(), self.tz, self.span.first_day, self.span.last_day
            )
        return self._ledgers

    def days(self) -> Interval:
        """The whole local days the ledgers cover (the starts they can decide)."""
        return ledger_day_window(self.span, self.tz)


class OpenSlotsCache:
    """The core's open slots (``open_slots``: before notice, limit and preferences) by what was
    asked *and the ledgers they were computed from*: a digest of every value the loader read is
    part of the key, so an answer can only be reused while every claim, absence and rule it
    depends on is unchanged.
    Nothing to invalidate and no stale answer after a commit; a repeated search costs the one
    loading query and a dictionary lookup instead of the computation. Per process, LRU."""

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._entries: OrderedDict[Hashable, list[Slot]] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], list[Slot]]) -> list[Slot]:
        slots = self._entries.get(key)
        if slots is not None:
            self.hits += 1
            self._entries.move_to_end(key)
            return slots
        self.misses += 1
        slots = self._entries[key] = compute()
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return slots


OPEN_SLOTS = OpenSlotsCache()


async def find_slots(uow: UnitOfWork, cmd: FindSlots, *, now: datetime, max_days: int) -> list[Slot]:
    """Free slots of the agency for a service in ``[start, end)``, one per start time; slots
    inside a ``preferred`` window come first; ``limit`` keeps the best N."""
    if cmd.end <= cmd.start:
        raise Invalid("to", "must be after from")
    if cmd.end - cmd.start > timedelta(days=max_days):
        raise Invalid("to", f"the range may span at most {max_days} days")
    ctx = await _booking(uow, cmd.actor, cmd.agency_id, cmd.service_id)
    window = Interval(cmd.start, cmd.end)
    loaded = await _ledgers(uow, ctx, window, now)
    request = SlotRequest(
        mode=Mode(cmd.mode) if cmd.mode else None,
        language=cmd.language,
        limit=cmd.limit,
        preferred_windows=tuple(Interval(a, b) for a, b in cmd.preferred),
    )
    asked = replace(request, limit=None, preferred_windows=())
    slots = OPEN_SLOTS.get(
        (ctx.spec, ctx.tz, window, asked, loaded.rows.digest()),
        lambda: open_slots(ctx.spec, loaded.ledgers(), window, asked, tz=ctx.tz),
    )
    return rank_slots(ctx.spec, slots, now, request)


async def _alternatives(
    uow: UnitOfWork,
    ctx: Booking,
    start: datetime,
    now: datetime,
    request: SlotRequest,
    day: Loaded | None,
) -> list[dict[str, str]]:
    """The free slots nearest to the one asked for (same mode), for a 409 body: on the asked
    day, from ``day``'s ledgers when they hold every counsellor (else one load of that day); from
    the days around only when that day has fewer than ``ALTERNATIVES`` free."""
    anyone = replace(request, counsellor_id=None, limit=None)

    def others(ledgers: list[Ledger], window: Interval) -> list[Slot]:
        return [s for s in free_slots(ctx.spec, ledgers, window, now, anyone, tz=ctx.tz) if s.start != start]

    if day is None:  # a named counsellor's ledger alone was loaded: the day's, for everyone
        day = await _ledgers(uow, ctx, Interval(start, start + ctx.spec.duration), now)
    slots = others(day.ledgers(), day.days())
    if len(slots) < ALTERNATIVES:
        around = Interval(max(now, start - timedelta(days=1)), start + timedelta(days=ALTERNATIVE_DAYS))
        slots = others((await _ledgers(uow, ctx, around, now)).ledgers(), around)
    nearest = sorted(slots, key=lambda s: (abs(s.start - start), s.start))[:ALTERNATIVES]
    return [_slot_json(s) for s in sorted(nearest, key=lambda s: s.start)]


def _slot_json(slot: Slot) -> dict[str, str]:
    return {
        "starts_at": slot.start.isoformat(),
        "ends_at": slot.end.isoformat(),
        "counsellor_id": slot.counsellor_id,
        "mode": slot.mode.value,
    }


async def _secure(
    uow: UnitOfWork,
    ctx: Booking,
    *,
    start: datetime,
    mode: str,
    request: SlotRequest,
    now: datetime,
    kind: str,
    expires_at: datetime | None = None,
    replacing: uuid.UUID | None = None,
    priority: bool = False,
    rows_for: Callable[[Slot], Sequence[NewRow]] | None = None,
) -> tuple[Slot, uuid.UUID]:
    """Pick the slot at exactly ``start`` with the core, then claim it in the database
    (releasing ``replacing`` in the same step when moving an appointment). ``priority``: a person
    with priority needs booked by staff may take time the plan keeps for walk-ins and callbacks
    (priority on every channel: they reach a counsellor sooner). ``rows_for(slot)``: rows written
    in the same statement as the claim, only if it is made (``GUARD_ID`` is the claim's id)."""
    exclude_claims = (replacing,) if replacing else ()
    window = Interval(start, start + ctx.spec.duration)
    named = [uuid.UUID(request.counsellor_id)] if request.counsellor_id else None
    day: Loaded | None = None
    for _ in range(CLAIM_ATTEMPTS):
        loaded = await _ledgers(
            uow, ctx, window, now, counsellor_ids=named, exclude_claims=exclude_claims, with_plan=not priority
        )
        if named is None:  # every counsellor of the asked day: the 409's alternatives come from here
            day = loaded
        try:
            slot = pick_slot(ctx.spec, loaded.ledgers(), start, Mode(mode), now, request, tz=ctx.tz)
        except SlotUnavailable as exc:
            if exc.code in INVALID_CODES:
                field = INVALID_CODES[exc.code]
                if field == "counsellor_id" and request.counsellor_id is None:
                    field = "mode"  # nobody at all offers this service in this mode
                raise Invalid(field, exc.detail, reason=exc.code) from exc
            break
        counsellor_id = uuid.UUID(slot.counsellor_id)
        claim_id = await claim_time(
            uow.session,
            agency_id=ctx.agency.id,
            counsellor_id=counsellor_id,
            starts_at=slot.start - ctx.spec.buffer_before,
            ends_at=slot.end + ctx.spec.buffer_after,
            kind=kind,
            now=now,
            expires_at=expires_at,
            replacing=replacing,
            rows=rows_for(slot) if rows_for else (),
        )
        if claim_id is not None:
            return slot, claim_id
        if named is not None:  # that counsellor's time was just taken: another look cannot change it
            break
    raise Conflict(
        "this time is not available",
        code="slot_unavailable",
        alternatives=await _alternatives(uow, ctx, start, now, request, day),
    )


# --- holds ----------------------------------------------------------------------------------


async def place_hold(uow: UnitOfWork, body: PlaceHold, *, now: datetime, ttl: timedelta) -> Hold:
    """A short claim on a slot so the person can finish booking; it lapses by itself. The
    claim, the hold and its audit row are one statement."""
    ctx = await _booking(uow, body.actor, body.agency_id, body.service_id)
    request = SlotRequest(counsellor_id=str(body.counsellor_id) if body.counsellor_id else None)
    expires_at = now + ttl
    drafts: list[Hold] = []  # the last one drafted is the one whose claim was made

    def rows_for(slot: Slot) -> list[NewRow]:
        hold = Hold(
            id=uuid.uuid4(),
            agency_id=ctx.agency.id,
            service_id=ctx.service.id,
            counsellor_id=uuid.UUID(slot.counsellor_id),
            claim_id=GUARD_ID,
            starts_at=slot.start,
            ends_at=slot.end,
            mode=slot.mode.value,
            channel=body.channel.value,
            expires_at=expires_at,
        )
        drafts.append(hold)
        placed = audit.row(
            actor=body.actor.audit_name,
            action="hold.placed",
            entity=hold,
            agency_id=ctx.agency.id,
            counsellor_id=hold.counsellor_id,
            starts_at=slot.start.isoformat(),
            expires_at=expires_at.isoformat(),
        )
        return [row_of(hold), placed]

    _, claim_id = await _secure(
        uow,
        ctx,
        start=body.starts_at,
        mode=body.mode,
        request=request,
        now=now,
        kind="hold",
        expires_at=expires_at,
        rows_for=rows_for,
    )
    hold = drafts[-1]
    hold.claim_id = claim_id
    return hold


async def _live_hold(uow: UnitOfWork, body: BookAppointment, now: datetime) -> Any:
    """The hold named by the booking (its row, locked) if it is still live; None if it lapsed:
    then it is marked used at once and the booking is made afresh."""
    hold = (await uow.session.execute(_LOCK_HOLD, {"hold": body.hold_id})).first()
    if hold is None or hold.agency_id != body.agency_id:
        raise Invalid("hold_id", "unknown hold")
    if hold.consumed_at is not None:
        raise Conflict("this hold was already used", code="hold_used")
    if (hold.service_id, hold.starts_at, hold.mode) != (body.service_id, body.starts_at, body.mode):
        raise Invalid("hold_id", "the hold is for another service, time or mode")
    if body.counsellor_id is not None and body.counsellor_id != hold.counsellor_id:
        raise Invalid("hold_id", "the hold is for another counsellor")
    if hold.expires_at > now and hold.claim_id is not None:
        return hold
    # apart from the new claim: claiming the time may delete the lapsed hold's claim, and the
    # database then clears the hold's reference (the row cannot change twice in one statement)
    await write_together(uow.session, [_hold_used(hold.id, now)])
    return None


_HOLDS = cast(Table, Hold.__table__)
_LOCK_HOLD = select(_HOLDS).where(_HOLDS.c.id == bindparam("hold", type_=Uuid())).with_for_update()
_HELD_BOOKED = (
    update(Claim)
    .where(Claim.id == bindparam("held_claim", type_=Uuid()))
    .values(kind="appointment", expires_at=None)
)


def _hold_used(hold_id: uuid.UUID, now: datetime) -> RowChange:
    return RowChange(_HOLDS, hold_id, {"consumed_at": now})


# --- appointments ---------------------------------------------------------------------------


def _job_seeker(agency: Agency, data: JobSeekerDetails) -> JobSeeker:
    if data.preferred_channel == "sms" and not data.phone:
        raise Invalid("job_seeker.phone", "required when the preferred channel is sms")
    if data.preferred_channel == "email" and not data.email:
        raise Invalid("job_seeker.email", "required when the preferred channel is email")
    return JobSeeker(
        id=uuid.uuid4(),
        agency_id=agency.id,
        name=data.name,
        phone=e164_phone(data.phone, region=phone_region(agency.timezone)),
        email=data.email,
        language=data.language,
        preferred_channel=data.preferred_channel,
        consent_sms=data.consent_sms or data.preferred_channel == "sms",
        consent_email=data.consent_email or data.preferred_channel == "email",
        preferred_mode=data.preferred_mode,
        priority=data.priority,
        accessibility=list(data.accessibility),
        interpreter_language=data.interpreter_language,
    )


def _slot_request(body: BookAppointment, seeker: JobSeeker) -> SlotRequest:
    windows = body.job_seeker.preferred_windows
    return SlotRequest(
        counsellor_id=str(body.counsellor_id) if body.counsellor_id else None,
        language=seeker.interpreter_language or seeker.language,
        preferred_windows=tuple(Interval(a, b) for a, b in windows if a < b),
    )


async def book_appointment(
    uow: UnitOfWork, body: BookAppointment, *, now: datetime
) -> tuple[Appointment, str]:
    """Book a slot (from a live hold, or directly); returns the appointment and its manage token."""
    ctx = await _booking(uow, body.actor, body.agency_id, body.service_id)
    seeker = _job_seeker(ctx.agency, body.job_seeker)
    hold = await _live_hold(uow, body, now) if body.hold_id else None
    token, token_hash = new_manage_token()
    draft = _Draft(uow, ctx, body, seeker, token, token_hash, now)
    if hold is not None:
        # the held time becomes the appointment's, the hold is used, the rest as below: one statement
        await write_together(
            uow.session,
            [
                Prebuilt(_HELD_BOOKED, {"held_claim": hold.claim_id}),
                _hold_used(hold.id, now),
                *draft.rows(hold.counsellor_id, hold.claim_id, "held", hold.starts_at),
            ],
        )
    else:
        # the claim, the person, the appointment, its audit row and its notifications: one statement
        _, claim_id = await _secure(
            uow,
            ctx,
            start=body.starts_at,
            mode=body.mode,
            request=_slot_request(body, seeker),
            now=now,
            kind="appointment",
            priority=ctx.staff is not None and seeker.priority > 0,
            rows_for=lambda slot: draft.rows(
                uuid.UUID(slot.counsellor_id), GUARD_ID, slot.reason, slot.start
            ),
        )
        draft.appointment.claim_id = claim_id
    outbox.send_after_commit(uow, draft.messages)
    return draft.appointment, token


@dataclass
class _Draft:
    """A booking being written: the rows of the appointment for a given counsellor and time (the
    person, the appointment, its audit row and its notifications); the last ones drafted win."""

    uow: UnitOfWork
    ctx: Booking
    body: BookAppointment
    seeker: JobSeeker
    token: str
    token_hash: str
    now: datetime
    appointment: Appointment = field(init=False)
    messages: list[outbox.Outgoing] = field(init=False)

    def rows(
        self, counsellor_id: uuid.UUID, claim_id: uuid.UUID, reason: str, start: datetime
    ) -> list[NewRow]:
        ctx, body = self.ctx, self.body
        self.appointment = appointment = Appointment(
            id=uuid.uuid4(),
            agency_id=ctx.agency.id,
            service_id=ctx.service.id,
            counsellor_id=counsellor_id,
            job_seeker_id=self.seeker.id,
            claim_id=claim_id,
            starts_at=start,
            ends_at=start + ctx.spec.duration,
            mode=body.mode,
            status=AppointmentStatus.CONFIRMED,
            channel=body.channel.value,
            created_by=body.actor.audit_name,
            assignment_reason=reason,
            manage_token_hash=self.token_hash,
            sequence=0,
            created_at=self.now,
            updated_at=self.now,  # the invitation's DTSTAMP
        )
        booked = audit.row(
            actor=appointment.created_by,
            action="appointment.booked",
            entity=appointment,
            agency_id=ctx.agency.id,
            counsellor_id=counsellor_id,
            channel=appointment.channel,
            starts_at=start.isoformat(),
            reason=reason,
        )
        self.messages = appointment_messages(
            self.uow,
            appointment,
            self.seeker,
            ctx.agency,
            "confirmed",
            service=ctx.service.name,
            now=self.now,
            token=self.token,
            by_sms=body.channel is Channel.SMS,
        )
        return [row_of(self.seeker), row_of(appointment), booked, *(m.row for m in self.messages)]


async def get_appointment(uow: UnitOfWork, cmd: GetAppointment) -> Appointment:
    found, _ = await appointment_for(uow, cmd.appointment_id, cmd.actor)
    return found.appointment


def _check_cutoff(appointment: Appointment, privileged: bool, now: datetime, cutoff: timedelta) -> None:
    if not privileged and now > appointment.starts_at - cutoff:
        minutes = int(cutoff.total_seconds() // 60)
        raise Conflict(
            f"changes are closed {minutes} minutes before the appointment; please call the agency",
            code="cutoff_passed",
        )


async def cancel_appointment(
    uow: UnitOfWork, cmd: CancelAppointment, *, now: datetime, cutoff: timedelta
) -> Appointment:
    """Cancel and free the time. Cancelling twice is harmless; staff (and the system) are not
    bound by the cut-off. One read (the appointment locked, with its person, agency and service)
    and one write: the claim, the appointment, the reminders, the audit row, the messages."""
    found, staff = await appointment_for(uow, cmd.appointment_id, cmd.actor, for_update=True)
    appointment = found.appointment
    if appointment.status == AppointmentStatus.CANCELLED:
        return appointment
    before = appointment.status
    move = APPOINTMENT.move("cancel", before)
    _check_cutoff(appointment, staff is not None or is_system(cmd.actor), now, cutoff)
    writes: list[Write] = [claim_deleted(appointment.claim_id)] if appointment.claim_id else []
    writes.append(
        changed(
            appointment,
            status=move.target,
            cancelled_at=now,
            cancel_reason=cmd.reason,
            claim_id=None,
            updated_at=now,
            sequence=appointment.sequence + 1,
        )
    )
    writes.append(
        audit.row(
            actor=cmd.actor.audit_name,
            action="appointment.cancelled",
            entity=appointment,
            agency_id=appointment.agency_id,
        )
    )
    writes += notify(uow, found, "cancelled", now=now, by_sms=cmd.channel is Channel.SMS)
    await write_together(uow.session, writes)
    callbacks.plan_soon(uow, appointment.agency_id)  # the freed time may suit a callback
    if APPOINTMENT.changes_board(move, before):  # a checked-in person leaves the queue
        announce(uow, found.agency, appointment, move.live_event, now)
    return appointment


async def reschedule_appointment(
    uow: UnitOfWork, body: RescheduleAppointment, *, now: datetime, cutoff: timedelta
) -> Appointment:
    """Move an appointment atomically: the new time is claimed before the old one is released,
    in one transaction; on conflict nothing changes. The same counsellor is preferred."""
    found, staff = await appointment_for(uow, body.appointment_id, body.actor, for_update=True)
    appointment = found.appointment
    APPOINTMENT.move("reschedule", appointment.status)
    _check_cutoff(appointment, staff is not None or is_system(body.actor), now, cutoff)
    ctx = _bookable(body.actor, found.agency, found.service, appointment.service_id)
    seeker = found.seeker
    request = SlotRequest(
        counsellor_id=str(body.counsellor_id) if body.counsellor_id else None,
        referent_counsellor_id=str(appointment.counsellor_id),
        language=seeker.interpreter_language or seeker.language,
    )
    # the claim first (it releases the old one, whose reference the database then clears),
    # then the appointment's row, its audit row and its messages in one more statement
    slot, claim_id = await _secure(
        uow,
        ctx,
        start=body.starts_at,
        mode=body.mode or appointment.mode,
        request=request,
        now=now,
        kind="appointment",
        replacing=appointment.claim_id,
    )
    previous = appointment.starts_at
    writes: list[Write] = [
        changed(
            appointment,
            starts_at=slot.start,
            ends_at=slot.end,
            counsellor_id=uuid.UUID(slot.counsellor_id),
            mode=slot.mode.value,
            claim_id=claim_id,
            assignment_reason=slot.reason,
            updated_at=now,
            sequence=appointment.sequence + 1,
        ),
        audit.row(
            actor=body.actor.audit_name,
            action="appointment.rescheduled",
            entity=appointment,
            agency_id=appointment.agency_id,
            previous=previous.isoformat(),
            starts_at=slot.start.isoformat(),
            counsellor_id=appointment.counsellor_id,
        ),
    ]
    writes += notify(uow, found, "rescheduled", now=now, by_sms=body.channel is Channel.SMS)
    await write_together(uow.session, writes)
    return appointment
