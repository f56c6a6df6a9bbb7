"""ORM tables. Every timestamp is ``timestamptz``; ids are random UUIDs (not guessable, not sequential).

The ``claims`` table holds every live claim on a counsellor's time, whatever created it
(appointment, hold, callback, imported busy block, walk-in service in progress). Its exclusion
constraint is the one guarantee against double booking.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, ExcludeConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TZ = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: TZ, dict[str, Any]: JSONB, list[str]: ARRAY(Text)}


def _uuid() -> uuid.UUID:
    return uuid.uuid4()


def _pk() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, default=_uuid)


def _created() -> Mapped[datetime]:
    return mapped_column(TZ, server_default=func.now(), nullable=False)


def _agency_fk() -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"), index=True)


class Agency(Base):
    __tablename__ = "agencies"
    id: Mapped[uuid.UUID] = _pk()
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(Text)
    # {"0": [["08:30", "12:30"], ["13:30", "17:00"]], ...} local wall-clock, weekday 0 = Monday
    opening_hours: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    closed_dates: Mapped[list[date]] = mapped_column(ARRAY(Date), server_default=text("'{}'"))
    walk_in_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    # queue policy parameters (data, not code); empty means the core defaults
    queue_policy: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    # the number people text (E.164): inbound SMS to it belong to this agency
    sms_number: Mapped[str | None] = mapped_column(String(20), unique=True)
    sms_inbound_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    sms_daily_budget: Mapped[int] = mapped_column(Integer, server_default=text("500"))
    # the managers' address for staff alerts (calendar sync failures, conflicts); never shown publicly
    alert_email: Mapped[str | None] = mapped_column(String(320))
    # an external calendar not synced for this long withholds its counsellor's online slots (0: never)
    calendar_stale_minutes: Mapped[int] = mapped_column(Integer, server_default=text("360"))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = _created()


class Counsellor(Base):
    __tablename__ = "counsellors"
    id: Mapped[uuid.UUID] = _pk()
    agency_id: Mapped[uuid.UUID] = _agency_fk()
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164: rung first by click-to-call
    # the capability in their calendar feed URL (``/calendar/{token}.ics``), stored hashed
    calendar_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    skills: Mapped[list[str]] = mapped_column(server_default=text("'{}'"))
    languages: Mapped[list[str]] = mapped_column(server_default=text("'{}'"))
    modes: Mapped[list[str]] = mapped_column(server_default=text("'{}'"))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    on_desk: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    desk_label: Mapped[str | None] = mapped_column(String(40))
    desk_since: Mapped[datetime | None] = mapped_column(TZ)
    created_at: Mapped[datetime] = _created()


class Service(Base):
    """A "motif": what the job seeker comes for."""

    __tablename__ = "services"
    __table_args__ = (
        CheckConstraint("duration_minutes > 0", name="duration_positive"),
        CheckConstraint("bookable_by IN ('public', 'staff')", name="bookable_by_known"),
    )
    id: Mapped[uuid.UUID] = _pk()
    agency_id: Mapped[uuid.UUID] = _agency_fk()
    name: Mapped[str] = mapped_column(String(200))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    modes: Mapped[list[str]] = mapped_column(server_default=text("'{}'"))
    skill: Mapped[str | None] = mapped_column(String(80))
    min_notice_minutes: Mapped[int] = mapped_column(Integer, server_default=text("60"))
    max_horizon_days: Mapped[int] = mapped_column(Integer, server_default=text("60"))
    buffer_before_minutes: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    buffer_after_minutes: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    bookable_by: Mapped[str] = mapped_column(String(16), server_default=text("'public'"))
    ticket_prefix: Mapped[str] = mapped_column(String(4), server_default=text("'A'"))
    target_wait_minutes: Mapped[int] = mapped_column(Integer, server_default=text("30"))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = _created()


class AvailabilityRule(Base):
    """Weekly local wall-clock working window of a counsellor."""

    __tablename__ = "availability_rules"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("start_time < end_time", name="start_before_end"),
    )
    id: Mapped[uuid.UUID] = _pk()
    counsellor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("counsellors.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(Integer)
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    modes: Mapped[list[str]] = mapped_column(server_default=text("'{}'"))
    # optional channel quota, e.g. "walk_in" (desk duty) or "callback" (phone callbacks)
    quota: Mapped[str | None] = mapped_column(String(32))
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = _created()


class Absence(Base):
    __tablename__ = "absences"
    __table_args__ = (CheckConstraint("starts_at < ends_at", name="start_before_end"),)
    id: Mapped[uuid.UUID] = _pk()
    counsellor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("counsellors.id", ondelete="CASCADE"), index=True
    )
    starts_at: Mapped[datetime] = mapped_column(TZ)
    ends_at: Mapped[datetime] = mapped_column(TZ)
    reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created()


class ExternalCalendar(Base):
    """A counsellor's own calendar, published as an ICS URL, imported as busy time."""

    __tablename__ = "external_calendars"
    id: Mapped[uuid.UUID] = _pk()
    agency_id: Mapped[uuid.UUID] = _agency_fk()
    counsellor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("counsellors.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    etag: Mapped[str | None] = mapped_column(String(200))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    last_attempt_at: Mapped[datetime | None] = mapped_column(TZ)
    last_success_at: Mapped[datetime | None] = mapped_column(TZ)
    last_error: Mapped[str | None] = mapped_column(String(300))
    busy_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = _created()


class BusyBlock(Base):
    """Busy time imported from an external calendar: blocks booking, outside the no-overlap
    constraint (an outside meeting may collide with an appointment: a conflict, not a refusal)."""

    __tablename__ = "busy_blocks"
    __table_args__ = (
        CheckConstraint("starts_at < ends_at", name="start_before_end"),
        Index("ix_busy_blocks_counsellor_range", "counsellor_id", "starts_at", "ends_at"),
    )
    id: Mapped[uuid.UUID] = _pk()
    counsellor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("counsellors.id", ondelete="CASCADE"))
    calendar_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("external_calendars.id", ondelete="CASCADE"), index=True
    )
    starts_at: Mapped[datetime] = mapped_column(TZ)
    ends_at: Mapped[datetime] = mapped_column(TZ)


class CapacityPlan(Base):
    """An agency's capacity plan of one local day, as shown to staff (hours, numbers, reasons)."""

    __tablename__ = "capacity_plans"
    agency_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(TZ)
    plan: Mapped[dict[str, Any]] = mapped_column()


class PlanReservation(Base):
    """Free time of a counsellor the plan keeps for walk-ins or callbacks (read by the ledger
    loader, which relabels those parts of the working blocks)."""

    __tablename__ = "plan_reservations"
    __table_args__ = (
        CheckConstraint("starts_at < ends_at", name="start_before_end"),
        CheckConstraint("pool IN ('walk_in', 'callback')", name="pool_known"),
        Index("ix_plan_reservations_counsellor_range", "counsellor_id", "starts_at", "ends_at"),
        Index("ix_plan_reservations_agency_day", "agency_id", "day"),
    )
    id: Mapped[uuid.UUID] = _pk()
    agency_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    counsellor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("counsellors.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(TZ)
    ends_at: Mapped[datetime] = mapped_column(TZ)
    pool: Mapped[str] = mapped_column(String(16))


class JobSeeker(Base):
    __tablename__ = "job_seekers"
    id: Mapped[uuid.UUID] = _pk()
    agency_id: Mapped[uuid.UUID] = _agency_fk()
    name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)  # E.164
    email: Mapped[str | None] = mapped_column(String(320))
    language: Mapped[str | None] = mapped_column(String(16))
    preferred_channel: Mapped[str] = mapped_column(String(16), server_default=text("'none'"))
    preferred_mode: Mapped[str | None] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    accessibility: Mapped[list[str]] = mapped_column(server_default=text("'{}'"))
    interpreter_language: Mapped[str | None] = mapped_column(String(16))
    consent_sms: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    consent_email: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    opted_out_sms: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    referent_counsellor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("counsellors.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = _created()


class Claim(Base):
    """A committed claim on a counsellor's time. Never two overlapping for one counsellor."""

    __tablename__ = "claims"
    __table_args__ = (
        CheckConstraint("starts_at < ends_at", name="start_before_end"),
        CheckConstraint("kind IN ('appointment', 'hold', 'callback', 'busy', 'service')", name="kind_known"),
        ExcludeConstraint(
            ("counsellor_id", "="),
            (func.tstzrange(text("starts_at"), text("ends_at")), "&&"),
            name="claims_no_overlap",
            using="gist",
        ),
        Index("ix_claims_counsellor_range", "counsellor_id", "starts_at", "ends_at"),
    )
    id: Mapped[uuid.UUID] = _pk()
    agency_id: Mapped[uuid.UUID] = _agency_fk()
    counsellor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("counsellors.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(TZ)
    ends_at: Mapped[datetime] = mapped_column(TZ)
    kind: Mapped[str] = mapped_column(String(16))
    # holds lapse on their own: an expired hold is ignored and deleted by the next claim on that time
    expires_at: Mapped[datetime | None] = mapped_column(TZ)
    created_at: Mapped[datetime] = _created()


class Hold(Base):
    __tablename__ = "holds"
    id: Mapped[uuid.UUID] = _pk()
    agency_id: Mapped[uuid.UUID] = _agency_fk()
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    counsellor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("counsellors.id", ondelete="CASCADE"))
    claim_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("claims.id", ondelete="SET NULL"))
    starts_at: Mapped[datetime] = mapped_column(TZ)
    ends_at: Mapped[datetime] = mapped_column(TZ)
    mode: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime] = mapped_column(TZ)
    consumed_at: Mapped[datetime | None] = mapped_column(TZ)
    created_at: Mapped[datetime] = _created()


class Appointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint("starts_at < ends_at", name="start_before_end"),
        CheckConstraint(
            "status IN ('confirmed', 'checked_in', 'in_progress', 'completed', 'cancelled', 'no_show')",
            name="status_known",
        ),
        Index("ix_appointments_agency_starts", "agency_id", "starts_at"),
    )
    id: Mapped[uuid.UUID] = _pk()
    agency_id: Mapped[uuid.UUID] = _agency_fk()
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id"))
    counsellor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("counsellors.id"), index=True)
    job_seeker_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("job_seekers.id"), index=True)
    claim_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("claims.id", ondelete="SET NULL"), unique=True
    )
    starts_at: Mapped[datetime] = mapped_column(TZ)
    ends_at: Mapped[datetime] = mapped_column(TZ)
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), server_default=text("'confirmed'"))
    channel: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(120))
    assignment_reason: Mapped[str | None] = mapped_column(String(40))
    manage_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    sequence: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    checked_in_at: Mapped[datetime | None] = mapped_column(TZ)
    started_at: Mapped[datetime | None] = mapped_column(TZ)
    completed_at: Mapped[datetime | None] = mapped_column(TZ)
    cancelled_at: Mapped[datetime | None] = mapped_column(TZ)
    cancel_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class TicketCounter(Base):
    """Human ticket numbers: one counter per agency, local day and service prefix."""

    __tablename__ = "ticket_counters"
    agency_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE"), primary_key=True
    )
    local_day: Mapped[date] = mapped_column(Date, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(4), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class WalkInTicket(Base):
    __tablename__ = "walk_in_tickets"
    __table_args__ = (
        UniqueConstraint("agency_id", "local_day", "number", name="uq_walk_in_tickets_number"),
        CheckConstraint(
            "status IN ('waiting', 'called', 'in_service', 'completed', 'no_show', 'cancelled')",
            name="status_known",
        ),
        Index("ix_walk_in_tickets_agency_status", "agency_id", "status"),
    )
    id: Mapped[uuid.UUID] = _pk()
    agency_id: Mapped[uuid.UUID] = _agency_fk()
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id"))
    job_seeker_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("job_seekers.id"))
    number: Mapped[str] = mapped_column(String(12))
    local_day: Mapped[date] = mapped_column(Date)
    seq: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), server_default=text("'waiting'"))
    priority: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    language: Mapped[str | None] = mapped_column(String(16))
    needs: Mapped[list[str]] = mapped_column(server_default=text("'{}'"))
    mode: Mapped[str] = mapped_column(String(16), server_default=text("'in_person'"))
    channel: Mapped[str] = mapped_column(String(16))
    counsellor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("counsellors.id"))
    preferred_counsellor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("counsellors.id"))
    desk: Mapped[str | None] = mapped_column(String(40))
    claim_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("claims.id", ondelete="SET NULL"))
    arrived_at: Mapped[datetime] = mapped_column(TZ)
    call_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    called_at: Mapped[datetime | None] = mapped_column(TZ)
    last_called_at: Mapped[datetime | None] = mapped_column(TZ)
    started_at: Mapped[datetime | None] = mapped_column(TZ)
    completed_at: Mapped[datetime | None] = mapped_column(TZ)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = _created()


class CallbackRequest(Base):
    """Someone asked to be called back: placed on a counsellor's time as a ``callback`` claim."""

    __tablename__ = "callback_requests"
    __table_args__ = (
        CheckConstraint(
            "status IN ('requested', 'scheduled', 'in_progress', 'completed', 'failed', 'cancelled')",
            name="status_known",
        ),
        # one active request per number and agency: a second one updates the first
        Index(
            "uq_callback_requests_active_phone",
            "agency_id",
            "phone",
            unique=True,
            postgresql_where=text("status IN ('requested', 'scheduled', 'in_progress')"),
        ),
        Index("ix_callback_requests_agency_status", "agency_id", "status"),
    )
    id: Mapped[uuid.UUID] = _pk()
    agency_id: Mapped[uuid.UUID] = _agency_fk()
    job_seeker_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("job_seekers.id"))
    service_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("services.id"))
    status: Mapped[str] = mapped_column(String(16), server_default=text("'requested'"))
    channel: Mapped[str] = mapped_column(String(16))
    window_start: Mapped[datetime | None] = mapped_column(TZ)
    window_end: Mapped[datetime | None] = mapped_column(TZ)
    counsellor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("counsellors.id"))
    claim_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("claims.id", ondelete="SET NULL"))
    scheduled_at: Mapped[datetime | None] = mapped_column(TZ)  # when the call is expected
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    outcome: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = _created()
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164: the number to call
    language: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(500))
    needs: Mapped[list[str]] = mapped_column(ARRAY(String), server_default=text("'{}'"))
    windows: Mapped[list[Any]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))  # [[start, end]]
    priority: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    deadline_at: Mapped[datetime | None] = mapped_column(TZ)
    not_before: Mapped[datetime | None] = mapped_column(TZ)  # after no answer: the next try
    manage_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    placement_reason: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(String(1000))
    started_at: Mapped[datetime | None] = mapped_column(TZ)
    completed_at: Mapped[datetime | None] = mapped_column(TZ)
    updated_at: Mapped[datetime] = _created()
    call_sid: Mapped[str | None] = mapped_column(String(64))  # click-to-call: Twilio's CallSid
    call_status: Mapped[str | None] = mapped_column(String(20))  # dialling, ringing, in-progress…


class Notification(Base):
    """Transactional outbox: written with the change that causes it, sent by a job after commit."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'sending', 'queued', 'sent', 'delivered', 'undelivered', 'failed', "
            "'expired', 'cancelled', 'skipped')",
            name="status_known",
        ),
        Index("ix_notifications_pending", "status", "next_attempt_at"),
        Index("ix_notifications_agency_sent", "agency_id", "sent_at"),
        Index("ix_notifications_recipient_sent", "recipient", "sent_at"),
    )
    id: Mapped[uuid.UUID] = _pk()
    agency_id: Mapped[uuid.UUID] = _agency_fk()
    kind: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(320))
    payload: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = _created()
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("appointments.id"), index=True)
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("walk_in_tickets.id"))
    created_at: Mapped[datetime] = _created()
    sent_at: Mapped[datetime | None] = mapped_column(TZ)
    # what went out: rendered once, when the row is claimed for sending
    body: Mapped[str | None] = mapped_column(Text)
    encoding: Mapped[str | None] = mapped_column(String(8))
    segments: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(TZ)  # never sent after this: expired
    claimed_at: Mapped[datetime | None] = mapped_column(TZ)  # a sender took it (status 'sending')
    delivered_at: Mapped[datetime | None] = mapped_column(TZ)


class PhoneContact(Base):
    """One row per phone number, whatever the agency or job-seeker record: opt-out (STOP),
    unreachable by SMS (a permanent provider error), and the SMS conversation in progress."""

    __tablename__ = "phone_contacts"
    phone: Mapped[str] = mapped_column(String(20), primary_key=True)  # E.164
    language: Mapped[str | None] = mapped_column(String(16))
    opted_out_at: Mapped[datetime | None] = mapped_column(TZ)
    unreachable_at: Mapped[datetime | None] = mapped_column(TZ)
    unreachable_code: Mapped[int | None] = mapped_column(Integer)
    conversation: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    updated_at: Mapped[datetime] = _created()


class InboundEvent(Base):
    """Webhook deduplication (Twilio MessageSid / CallSid)."""

    __tablename__ = "inbound_events"
    __table_args__ = (
        UniqueConstraint("provider", "external_id", name="uq_inbound_events_external"),
        # the inbound per-number limit counts a sender's recent texts
        Index("ix_inbound_events_from", text("(payload ->> 'From')"), "received_at"),
    )
    id: Mapped[uuid.UUID] = _pk()
    provider: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    received_at: Mapped[datetime] = _created()
    processed_at: Mapped[datetime | None] = mapped_column(TZ)
    response: Mapped[str | None] = mapped_column(Text)  # the reply given, given again to a retry


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_entity", "entity_type", "entity_id"),)
    id: Mapped[uuid.UUID] = _pk()
    agency_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"))
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(60))
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[uuid.UUID] = mapped_column()
    data: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    at: Mapped[datetime] = _created()


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("principal", "key", name="uq_idempotency_keys_principal_key"),)
    id: Mapped[uuid.UUID] = _pk()
    principal: Mapped[str] = mapped_column(String(120))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = _created()
