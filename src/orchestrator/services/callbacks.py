"""Callback use cases: ask to be called back (web, SMS, voice, staff), plan, call, record the outcome.

A request is placed by the pure core (:func:`orchestrator.scheduling.callbacks.plan_callbacks`)
on the same ledgers as booking and the queue, and becomes a ``callback`` claim under the same
exclusion constraint: a web booking and a callback racing for the same minutes have exactly one
winner (``claim_time``), and the loser request stays ``requested`` for the next plan.

Planning runs when a request arrives (in its transaction), when time frees up (a cancellation or
a no-show enqueues ``plan_callbacks`` for the agency) and every minute (the cron catches the rest:
retries coming due, absences). The person is told by SMS when to expect the call, and again if it
moves. One active request per number and agency: asking again updates the first.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select

from orchestrator import outbox
from orchestrator.auth import Role, require_in_agency, staff_of
from orchestrator.db import UnitOfWork
from orchestrator.deps import VoiceDialer
from orchestrator.errors import Conflict, Invalid, NotFound, Unauthorized
from orchestrator.models import Agency, CallbackRequest, Claim, Counsellor, JobSeeker, Service
from orchestrator.repositories.calendars import claim_time, release_claim
from orchestrator.repositories.ledgers import ledger_params, load_ledger_records
from orchestrator.scheduling.callbacks import CallbackAsk, Placement, plan_callbacks
from orchestrator.scheduling.ledger import build_ledgers, ledger_range
from orchestrator.scheduling.transitions import CALLBACK, CallbackStatus
from orchestrator.scheduling.types import Interval
from orchestrator.schemas import e164_phone, phone_region
from orchestrator.services import audit
from orchestrator.services.appointments import hash_token, latest_seeker, new_manage_token
from orchestrator.services.commands import (
    Actor,
    Channel,
    ManageTokenHolder,
    PhoneOwner,
    Public,
    Staff,
    is_system,
    principal_of,
)
from orchestrator.services.messages import language_of, reply, when
from orchestrator.services.notifications import MARK_UNREACHABLE

ACTIVE = (CallbackStatus.REQUESTED, CallbackStatus.SCHEDULED, CallbackStatus.IN_PROGRESS)
OUTCOMES = ("reached", "no_answer", "voicemail", "wrong_number")
STAFF_ROLES = (Role.ADMIN, Role.MANAGER, Role.FRONT_DESK, Role.COUNSELLOR)


@dataclass(frozen=True, slots=True)
class CallbackPolicy:
    """The service level and the retries (defaults; an agency may override them in its
    ``queue_policy``: ``callback_priority_hours``, ``callback_attempts``, ``callback_retry_minutes``)."""

    duration: timedelta = timedelta(minutes=15)
    priority_within: timedelta = timedelta(hours=4)  # someone with needs or priority
    standard_until: time = time(18, 0)  # the next working day, at this local time
    attempts: int = 3
    retry_after: timedelta = timedelta(hours=2)

    @classmethod
    def of(cls, agency: Agency) -> CallbackPolicy:
        doc = agency.queue_policy or {}
        default = cls()
        return cls(
            priority_within=timedelta(hours=float(doc.get("callback_priority_hours", 4))),
            attempts=int(doc.get("callback_attempts", default.attempts)),
            retry_after=timedelta(minutes=float(doc.get("callback_retry_minutes", 120))),
        )

    def deadline(self, now: datetime, tz: str, *, urgent: bool) -> datetime:
        """By when the call must have happened: soon for the urgent, else the next working day."""
        if urgent:
            return now + self.priority_within
        local = now.astimezone(ZoneInfo(tz)).date() + timedelta(days=1)
        while local.weekday() >= 5:  # the next working day (Monday after a Friday)
            local += timedelta(days=1)
        return datetime.combine(local, self.standard_until, tzinfo=ZoneInfo(tz)).astimezone(UTC)


# --- commands ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestCallback:
    actor: Actor
    channel: Channel
    agency_id: uuid.UUID
    phone: str  # as typed
    service_id: uuid.UUID | None = None
    language: str | None = None
    reason: str | None = None
    needs: tuple[str, ...] = ()
    windows: tuple[tuple[datetime, datetime], ...] = ()
    name: str | None = None
    priority: int = 0


@dataclass(frozen=True, slots=True)
class GetCallback:
    actor: Actor
    channel: Channel
    callback_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class CancelCallback:
    actor: Actor
    channel: Channel
    callback_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class ListCallbacks:
    actor: Actor
    agency_id: uuid.UUID
    status: str | None = None
    counsellor_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class StartCallback:
    actor: Actor
    channel: Channel
    callback_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    actor: Actor
    channel: Channel
    callback_id: uuid.UUID
    outcome: str  # one of OUTCOMES
    note: str | None = None


@dataclass
class Requested:
    request: CallbackRequest
    manage_token: str | None  # only when a new request was created
    created: bool = field(default=True)


# --- asking -------------------------------------------------------------------------------------


async def request_callback(uow: UnitOfWork, cmd: RequestCallback, *, now: datetime) -> Requested:
    """Ask to be called back; a second request for the same number and agency updates the first.
    The request is planned at once when a counsellor can take it."""
    agency = await uow.session.get(Agency, cmd.agency_id)
    if agency is None or not agency.active:
        raise NotFound(f"no agency {cmd.agency_id}", code="not_found")
    staff = staff_of(principal_of(cmd.actor), agency.id)
    if isinstance(cmd.actor, Staff) and staff is None:
        raise NotFound(f"no agency {cmd.agency_id}", code="not_found")
    phone = e164_phone(cmd.phone, "phone", region=phone_region(agency.timezone))
    assert phone is not None
    service = await _service(uow, agency, cmd.service_id)
    windows = _windows(cmd.windows, now)
    policy = CallbackPolicy.of(agency)
    urgent = bool(cmd.needs) or cmd.priority > 0
    existing = await uow.session.scalar(
        select(CallbackRequest)
        .where(
            CallbackRequest.agency_id == agency.id,
            CallbackRequest.phone == phone,
            CallbackRequest.status.in_(ACTIVE),
        )
        .with_for_update()
    )
    fields = {
        "service_id": service.id,
        "language": cmd.language,
        "reason": cmd.reason,
        "needs": list(cmd.needs),
        "windows": [[a.isoformat(), b.isoformat()] for a, b in windows],
        "priority": cmd.priority,
        "deadline_at": policy.deadline(now, agency.timezone, urgent=urgent),
        "updated_at": now,
    }
    if existing is not None:
        for key, value in fields.items():
            setattr(existing, key, value)
        if existing.status == CallbackStatus.SCHEDULED and not _fits(existing, windows):
            await _unschedule(uow, existing)  # its time no longer suits: planned again
        audit.record(
            uow, actor=cmd.actor.audit_name, action="callback.updated", entity=existing, agency_id=agency.id
        )
        await plan_agency(uow, agency, now=now)
        return Requested(existing, None, created=False)
    seeker = await _job_seeker(uow, agency, phone, cmd)
    token, token_hash = new_manage_token()
    request = CallbackRequest(
        id=uuid.uuid4(),
        agency_id=agency.id,
        job_seeker_id=seeker.id,
        phone=phone,
        channel=cmd.channel.value,
        status=CallbackStatus.REQUESTED,
        manage_token_hash=token_hash,
        attempts=0,
        **fields,
    )
    uow.session.add(request)
    await uow.session.flush()
    audit.record(
        uow, actor=cmd.actor.audit_name, action="callback.requested", entity=request, agency_id=agency.id
    )
    await plan_agency(uow, agency, now=now)
    return Requested(request, token)


async def _service(uow: UnitOfWork, agency: Agency, service_id: uuid.UUID | None) -> Service:
    query = select(Service).where(Service.agency_id == agency.id, Service.active)
    if service_id is not None:
        found = await uow.session.scalar(query.where(Service.id == service_id))
        if found is None:
            raise Invalid("service_id", "no active service with this id in this agency")
        return found
    first = await uow.session.scalar(query.order_by(Service.created_at, Service.name).limit(1))
    if first is None:
        raise Conflict("this agency has no service to call back about", code="no_service")
    return first


def _windows(raw: tuple[tuple[datetime, datetime], ...], now: datetime) -> list[tuple[datetime, datetime]]:
    for index, (start, end) in enumerate(raw):
        if not start < end:
            raise Invalid(f"windows[{index}]", "starts_at must be before ends_at")
        if end <= now:
            raise Invalid(f"windows[{index}]", "this window is already over")
    return sorted(raw)


def _fits(request: CallbackRequest, windows: list[tuple[datetime, datetime]]) -> bool:
    start = request.scheduled_at
    if start is None or not windows:
        return True
    return any(a <= start and start < b for a, b in windows)


async def _job_seeker(uow: UnitOfWork, agency: Agency, phone: str, cmd: RequestCallback) -> JobSeeker:
    """The latest record of this number in the agency, or a minimal new one."""
    known = await latest_seeker(uow, agency.id, phone)
    if known is not None:
        return known
    seeker = JobSeeker(
        id=uuid.uuid4(),
        agency_id=agency.id,
        name=cmd.name,
        phone=phone,
        language=cmd.language,
        preferred_channel="sms",
        consent_sms=True,
    )
    uow.session.add(seeker)
    await uow.session.flush()  # before the request that references it (no ORM relationship orders them)
    return seeker


# --- reading and cancelling -------------------------------------------------------------------


async def callback_for(
    uow: UnitOfWork, callback_id: uuid.UUID, actor: Actor, *, for_update: bool = False
) -> CallbackRequest:
    """The request if ``actor`` may see it: its agency's staff, its manage token, its number, the
    system. Anything else is a 404 (existence is never revealed); anonymous is a 401."""
    if isinstance(actor, Public) or (isinstance(actor, ManageTokenHolder) and not actor.token):
        raise Unauthorized(
            "a staff bearer token or the X-Manage-Token header is required", code="unauthorized"
        )
    request = await uow.session.get(CallbackRequest, callback_id, with_for_update=for_update)
    if request is None:
        raise NotFound(f"no callback {callback_id}", code="not_found")
    allowed = (
        (isinstance(actor, Staff) and staff_of(actor.principal, request.agency_id) is not None)
        or (
            isinstance(actor, ManageTokenHolder)
            and hmac.compare_digest(request.manage_token_hash or "", hash_token(actor.token))
        )
        or (isinstance(actor, PhoneOwner) and request.phone == actor.phone)
        or is_system(actor)
    )
    if not allowed:
        raise NotFound(f"no callback {callback_id}", code="not_found")
    return request


async def get_callback(uow: UnitOfWork, cmd: GetCallback) -> CallbackRequest:
    return await callback_for(uow, cmd.callback_id, cmd.actor)


async def cancel_callback(uow: UnitOfWork, cmd: CancelCallback, *, now: datetime) -> CallbackRequest:
    """Cancel (twice is harmless): its claim is released at once."""
    request = await callback_for(uow, cmd.callback_id, cmd.actor, for_update=True)
    if request.status == CallbackStatus.CANCELLED:
        return request
    move = CALLBACK.move("cancel", request.status)
    await _release(uow, request)
    request.status, request.updated_at = move.target, now
    audit.record(
        uow,
        actor=cmd.actor.audit_name,
        action="callback.cancelled",
        entity=request,
        agency_id=request.agency_id,
    )
    return request


async def list_callbacks(uow: UnitOfWork, cmd: ListCallbacks) -> list[CallbackRequest]:
    require_in_agency(principal_of(cmd.actor), cmd.agency_id, *STAFF_ROLES)
    query = select(CallbackRequest).where(CallbackRequest.agency_id == cmd.agency_id)
    if cmd.status:
        query = query.where(CallbackRequest.status == cmd.status)
    if cmd.counsellor_id:
        query = query.where(CallbackRequest.counsellor_id == cmd.counsellor_id)
    rows = await uow.session.scalars(
        query.order_by(CallbackRequest.scheduled_at.nulls_last(), CallbackRequest.deadline_at).limit(500)
    )
    return list(rows)


async def _release(uow: UnitOfWork, request: CallbackRequest) -> None:
    if request.claim_id is not None:
        await uow.session.execute(delete(Claim).where(Claim.id == request.claim_id))
    request.claim_id = None


async def _unschedule(uow: UnitOfWork, request: CallbackRequest) -> None:
    await _release(uow, request)
    request.status = CALLBACK.move("replan", request.status).target
    request.counsellor_id = request.scheduled_at = request.placement_reason = None


# --- planning -----------------------------------------------------------------------------------


def plan_soon(uow: UnitOfWork, agency_id: uuid.UUID) -> None:
    """After a change that frees or takes counsellors' time (a cancellation, a no-show, an
    absence): plan the agency's callbacks again, in a job after commit (one at a time)."""
    uow.enqueue("plan_callbacks", str(agency_id), job_id=f"plan_callbacks:{agency_id}")


SETTLED_SOON = timedelta(minutes=15)  # a callback due this soon is not moved any more


async def plan_agency(uow: UnitOfWork, agency: Agency, *, now: datetime) -> int:
    """Place the agency's waiting requests on its counsellors' free phone time, and move the
    planned ones whose time no longer fits or who can be called much earlier (one ledger query
    without their own claims, the core's plan, one ``claim_time`` per change). Returns how many
    requests were placed or moved."""
    open_requests = list(
        await uow.session.scalars(
            select(CallbackRequest)
            .where(
                CallbackRequest.agency_id == agency.id,
                CallbackRequest.deadline_at > now,
                (CallbackRequest.status == CallbackStatus.REQUESTED)
                | (
                    (CallbackRequest.status == CallbackStatus.SCHEDULED)
                    & (CallbackRequest.scheduled_at > now + SETTLED_SOON)
                ),
            )
            .with_for_update(skip_locked=True)
        )
    )
    if not open_requests:
        return 0
    horizon = max(r.deadline_at for r in open_requests if r.deadline_at is not None)
    span = ledger_range(Interval(now, horizon), agency.timezone)
    rows = await load_ledger_records(
        uow.session,
        ledger_params(
            agency_id=agency.id,
            span=span,
            now=now,
            exclude_claims=[r.claim_id for r in open_requests if r.claim_id is not None],
        ),
    )
    ledgers = build_ledgers(rows.records(), agency.timezone, span.first_day, span.last_day)
    skills = await service_skills(uow, {r.service_id for r in open_requests if r.service_id})
    policy = CallbackPolicy.of(agency)
    by_id = {str(r.id): r for r in open_requests}
    changed = 0
    for plan in plan_callbacks([callback_ask(r, skills, policy) for r in open_requests], ledgers, now):
        request = by_id[plan.request_id]
        if isinstance(plan, Placement) and plan.reason != "kept":
            changed += await _place(uow, agency, request, plan, now)
        elif not isinstance(plan, Placement) and request.status == CallbackStatus.SCHEDULED:
            await _unschedule(uow, request)  # its time is gone and nothing else fits: it waits
    return changed


async def service_skills(uow: UnitOfWork, service_ids: set[uuid.UUID]) -> dict[uuid.UUID, str | None]:
    if not service_ids:
        return {}
    rows = await uow.session.execute(select(Service.id, Service.skill).where(Service.id.in_(service_ids)))
    return {sid: skill for sid, skill in rows}


def callback_ask(
    request: CallbackRequest, skills: dict[uuid.UUID, str | None], policy: CallbackPolicy
) -> CallbackAsk:
    assert request.deadline_at is not None
    return CallbackAsk(
        id=str(request.id),
        created_at=request.created_at,
        deadline=request.deadline_at,
        duration=policy.duration,
        windows=tuple(
            Interval(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in request.windows
        ),
        skill=skills.get(request.service_id) if request.service_id else None,
        language=request.language,
        priority=request.priority + (1 if request.needs else 0),
        not_before=request.not_before,
        current=(str(request.counsellor_id), request.scheduled_at)
        if request.status == CallbackStatus.SCHEDULED and request.counsellor_id and request.scheduled_at
        else None,
    )


async def _place(
    uow: UnitOfWork, agency: Agency, request: CallbackRequest, plan: Placement, now: datetime
) -> int:
    """Claim the placement's time (replacing the request's old claim when it moves); a lost race
    leaves the request as it was, for the next plan."""
    moving = request.status == CallbackStatus.SCHEDULED
    claim_id = await claim_time(
        uow.session,
        agency_id=agency.id,
        counsellor_id=uuid.UUID(plan.counsellor_id),
        starts_at=plan.start,
        ends_at=plan.end,
        kind="callback",
        now=now,
        replacing=request.claim_id if moving else None,
    )
    if claim_id is None:
        return 0
    if not moving:
        request.status = CALLBACK.move("schedule", request.status).target
    request.counsellor_id, request.claim_id = uuid.UUID(plan.counsellor_id), claim_id
    request.scheduled_at, request.placement_reason, request.updated_at = plan.start, plan.reason, now
    audit.record(
        uow,
        actor="system:plan_callbacks",
        action="callback.moved" if moving else "callback.scheduled",
        entity=request,
        agency_id=agency.id,
        counsellor_id=request.counsellor_id,
        scheduled_at=plan.start.isoformat(),
        reason=plan.reason,
    )
    await _tell(uow, agency, request, "callback_moved" if moving else "callback_expected")
    return 1


async def _tell(uow: UnitOfWork, agency: Agency, request: CallbackRequest, key: str) -> None:
    """Text the person (unless they opted out): when to expect the call, or to ask again."""
    if not request.phone:
        return
    lang = language_of(request.language)
    moment = request.scheduled_at or request.updated_at
    body = reply(key, lang, agency=agency.name, when=when(moment, agency.timezone, lang))
    await outbox.record(
        uow,
        outbox.message(
            agency_id=agency.id,
            kind=f"callback.{key}",
            channel="sms",
            recipient=request.phone,
            dedupe_key=f"callback:{request.id}:{key}:{request.attempts}:{moment.isoformat()}",
            body=body,
            expires_at=request.scheduled_at if key in ("callback_expected", "callback_moved") else None,
        ),
    )


# --- making the call ------------------------------------------------------------------------------


async def start_callback(uow: UnitOfWork, cmd: StartCallback, *, now: datetime) -> CallbackRequest:
    """The counsellor starts calling (409 when the request is not scheduled)."""
    request = await _staff_request(uow, cmd.actor, cmd.callback_id)
    move = CALLBACK.move("dial", request.status)
    request.status, request.started_at, request.updated_at = move.target, now, now
    request.attempts += 1
    audit.record(
        uow,
        actor=cmd.actor.audit_name,
        action="callback.started",
        entity=request,
        agency_id=request.agency_id,
    )
    return request


async def record_outcome(uow: UnitOfWork, cmd: RecordOutcome, *, now: datetime) -> CallbackRequest:
    """``reached`` completes; ``no_answer`` / ``voicemail`` try again later (after the agency's
    spacing, while attempts are left; then an SMS invites the person to ask again);
    ``wrong_number`` fails and marks the number unreachable by SMS."""
    if cmd.outcome not in OUTCOMES:
        raise Invalid("outcome", f"one of {', '.join(OUTCOMES)}")
    request = await _staff_request(uow, cmd.actor, cmd.callback_id)
    agency = await uow.session.get(Agency, request.agency_id)
    assert agency is not None
    policy = CallbackPolicy.of(agency)
    request.outcome, request.note, request.updated_at = cmd.outcome, cmd.note, now
    if cmd.outcome == "reached":
        request.status = CALLBACK.move("complete", request.status).target
        request.completed_at = now
    elif cmd.outcome in ("no_answer", "voicemail") and request.attempts < policy.attempts:
        request.status = CALLBACK.move("retry", request.status).target
        request.not_before = now + policy.retry_after
        request.counsellor_id = request.scheduled_at = None
        if (
            request.deadline_at is not None
            and request.deadline_at < now + policy.retry_after + policy.duration
        ):
            request.deadline_at = policy.deadline(now, agency.timezone, urgent=False)
    else:
        request.status = CALLBACK.move("fail", request.status).target
        request.completed_at = now
        if cmd.outcome == "wrong_number" and request.phone:
            await _mark_unreachable(uow, request.phone, now)
        else:
            await _tell(uow, agency, request, "callback_missed")
    await _release_unused(uow, request, now)
    audit.record(
        uow,
        actor=cmd.actor.audit_name,
        action=f"callback.{cmd.outcome}",
        entity=request,
        agency_id=request.agency_id,
        attempts=request.attempts,
    )
    return request


async def _release_unused(uow: UnitOfWork, request: CallbackRequest, now: datetime) -> None:
    """Give back what is left of the call's claim (the call is over)."""
    if await release_claim(uow.session, request.claim_id, now):
        request.claim_id = None


async def _mark_unreachable(uow: UnitOfWork, phone: str, now: datetime) -> None:
    await uow.session.execute(MARK_UNREACHABLE, {"phone": phone, "now": now, "code": 0})


async def _staff_request(uow: UnitOfWork, actor: Actor, callback_id: uuid.UUID) -> CallbackRequest:
    request = await uow.session.get(CallbackRequest, callback_id, with_for_update=True)
    if request is None:
        raise NotFound(f"no callback {callback_id}", code="not_found")
    require_in_agency(principal_of(actor), request.agency_id, *STAFF_ROLES)
    return request


# --- click-to-call --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DialCallback:
    actor: Actor
    channel: Channel
    callback_id: uuid.UUID


async def dial_callback(uow: UnitOfWork, cmd: DialCallback, *, now: datetime) -> CallbackRequest:
    """Ask the app to ring the counsellor's phone and bridge them to the person (a ``dial``
    job after commit). Starts the call if it was only scheduled; 409 without a counsellor phone."""
    request = await _staff_request(uow, cmd.actor, cmd.callback_id)
    if request.status == CallbackStatus.SCHEDULED:
        request.status = CALLBACK.move("dial", request.status).target
        request.started_at = now
        request.attempts += 1
    CALLBACK.move("complete", request.status)  # 409 unless the call is in progress
    counsellor = await uow.session.get(Counsellor, request.counsellor_id) if request.counsellor_id else None
    if counsellor is None or not counsellor.phone:
        raise Conflict("the counsellor has no phone number to ring first", code="no_counsellor_phone")
    request.call_sid, request.call_status, request.updated_at = None, "dialling", now
    audit.record(
        uow, actor=cmd.actor.audit_name, action="callback.dial", entity=request, agency_id=request.agency_id
    )
    uow.enqueue("dial_callback", str(request.id), job_id=f"dial:{request.id}:{request.attempts}")
    return request


async def place_call(
    uow: UnitOfWork, dialer: VoiceDialer, callback_id: uuid.UUID, *, base_url: str
) -> str | None:
    """The ``dial`` job: ring the counsellor; once they answer, TwiML ``Dial`` bridges them to the
    person, showing the agency's number. A call already placed is not placed again."""
    request = await uow.session.get(CallbackRequest, callback_id, with_for_update=True)
    if request is None or request.call_sid or request.call_status != "dialling" or not request.phone:
        return None
    counsellor = await uow.session.get(Counsellor, request.counsellor_id) if request.counsellor_id else None
    agency = await uow.session.get(Agency, request.agency_id)
    if counsellor is None or not counsellor.phone or agency is None:
        return None
    caller_id = agency.sms_number if agency.sms_number and agency.sms_number.startswith("+") else None
    request.call_sid = await dialer.bridge(
        counsellor.phone,
        request.phone,
        caller_id or counsellor.phone,
        status_callback=f"{base_url}/webhooks/twilio/call-status?c={request.id}",
    )
    return request.call_sid


async def record_call_status(uow: UnitOfWork, callback_id: uuid.UUID, call_sid: str, status: str) -> bool:
    """A signed call status callback (ringing, in-progress, completed, busy, no-answer…)."""
    request = await uow.session.get(CallbackRequest, callback_id, with_for_update=True)
    if request is None or (request.call_sid not in (None, call_sid)):
        return False
    request.call_sid, request.call_status = call_sid, status[:20]
    return True
