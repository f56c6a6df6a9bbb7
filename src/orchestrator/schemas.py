"""Request and response bodies (msgspec). Unknown fields are rejected; every check names its field."""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import UTC, datetime, time
from functools import lru_cache
from typing import Annotated, Any, Literal, TypeVar

import msgspec
import phonenumbers
from msgspec import UNSET, Meta, Struct, UnsetType

ModeName = Literal["in_person", "phone", "video"]
ChannelName = Literal["web", "sms", "voice", "walk_in", "front_desk"]
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL characters
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=NO_NUL)]
Tag = Annotated[str, Meta(min_length=1, max_length=80, pattern=r"^[a-z0-9_\-]+$")]
Language = Annotated[str, Meta(min_length=2, max_length=16, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")]
Email = Annotated[str, Meta(max_length=320, pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$")]
HHMM = Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
AwareDatetime = Annotated[datetime, Meta(tz=True)]
Minutes = Annotated[int, Meta(ge=0, le=24 * 60)]


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_timezone(name: str) -> None:
    if name not in _zones():
        raise ValueError(f"timezone: unknown IANA time zone {name!r}")


def e164_phone(raw: str | None, field: str = "job_seeker.phone") -> str | None:
    """A phone number in E.164 (French numbers may be written nationally), or ``Invalid``."""
    from orchestrator.errors import Invalid

    if raw is None:
        return None
    try:
        number = phonenumbers.parse(raw, "FR")
    except phonenumbers.NumberParseException as exc:
        raise Invalid(field, "not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise Invalid(field, "not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_hhmm(value: str) -> time:
    return time(int(value[:2]), int(value[3:]))


def _unique(field: str, values: list[Any]) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"{field}: duplicate values")


def _unique_if_set(body: Any, *fields: str) -> None:
    for field in fields:
        if (values := getattr(body, field)) is not UNSET:
            _unique(field, values)


class Body(Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every request body."""


# --- agencies -------------------------------------------------------------------------------

OpeningHours = dict[Annotated[str, Meta(pattern=r"^[0-6]$")], list[tuple[HHMM, HHMM]]]


def _check_opening_hours(hours: OpeningHours) -> None:
    for day, windows in hours.items():
        for start, end in windows:
            if start >= end:
                raise ValueError(f"opening_hours.{day}: start {start} must be before end {end}")


class AgencyCreate(Body):
    name: Name
    timezone: str
    address: Annotated[str, Meta(max_length=500, pattern=NO_NUL)] | None = None
    opening_hours: OpeningHours = {}
    walk_in_enabled: bool = True

    def __post_init__(self) -> None:
        check_timezone(self.timezone)
        _check_opening_hours(self.opening_hours)


class AgencyUpdate(Body):
    name: Name | UnsetType = UNSET
    timezone: str | UnsetType = UNSET
    address: Annotated[str, Meta(max_length=500, pattern=NO_NUL)] | UnsetType | None = UNSET
    opening_hours: OpeningHours | UnsetType = UNSET
    walk_in_enabled: bool | UnsetType = UNSET

    def __post_init__(self) -> None:
        if isinstance(self.timezone, str):
            check_timezone(self.timezone)
        if not isinstance(self.opening_hours, UnsetType):
            _check_opening_hours(self.opening_hours)


class AgencyRead(Struct):
    id: uuid.UUID
    name: str
    timezone: str
    address: str | None
    opening_hours: dict[str, Any]
    walk_in_enabled: bool
    active: bool


# --- counsellors ----------------------------------------------------------------------------


class CounsellorCreate(Body):
    name: Name
    email: Email
    skills: Annotated[list[Tag], Meta(max_length=50)] = []
    languages: Annotated[list[Language], Meta(max_length=20)] = []
    modes: Annotated[list[ModeName], Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["in_person"]
    )

    def __post_init__(self) -> None:
        for field in ("skills", "languages", "modes"):
            _unique(field, getattr(self, field))


class CounsellorUpdate(Body):
    name: Name | UnsetType = UNSET
    email: Email | UnsetType = UNSET
    skills: Annotated[list[Tag], Meta(max_length=50)] | UnsetType = UNSET
    languages: Annotated[list[Language], Meta(max_length=20)] | UnsetType = UNSET
    modes: Annotated[list[ModeName], Meta(min_length=1)] | UnsetType = UNSET
    active: bool | UnsetType = UNSET

    def __post_init__(self) -> None:
        _unique_if_set(self, "skills", "languages", "modes")


class CounsellorRead(Struct):
    id: uuid.UUID
    agency_id: uuid.UUID
    name: str
    email: str
    skills: list[str]
    languages: list[str]
    modes: list[str]
    active: bool
    on_desk: bool
    desk_label: str | None


# --- services (motifs) ----------------------------------------------------------------------


class ServiceCreate(Body):
    name: Name
    duration_minutes: Annotated[int, Meta(ge=5, le=480)]
    modes: Annotated[list[ModeName], Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["in_person"]
    )
    skill: Tag | None = None
    min_notice_minutes: Annotated[int, Meta(ge=0, le=60 * 24 * 60)] = 60
    max_horizon_days: Annotated[int, Meta(ge=1, le=366)] = 60
    buffer_minutes: Annotated[int, Meta(ge=0, le=240)] | None = None
    buffer_before_minutes: Annotated[int, Meta(ge=0, le=240)] = 0
    buffer_after_minutes: Annotated[int, Meta(ge=0, le=240)] = 0
    bookable_by: Literal["public", "staff"] = "public"
    ticket_prefix: Annotated[str, Meta(pattern=r"^[A-Z]{1,2}$")] = "A"
    target_wait_minutes: Annotated[int, Meta(ge=1, le=24 * 60)] = 30

    def __post_init__(self) -> None:
        _unique("modes", self.modes)
        if self.buffer_minutes is not None:  # shorthand: the same buffer after each appointment
            self.buffer_after_minutes = self.buffer_minutes


class ServiceUpdate(Body):
    name: Name | UnsetType = UNSET
    duration_minutes: Annotated[int, Meta(ge=5, le=480)] | UnsetType = UNSET
    modes: Annotated[list[ModeName], Meta(min_length=1)] | UnsetType = UNSET
    skill: Tag | UnsetType | None = UNSET
    min_notice_minutes: Annotated[int, Meta(ge=0, le=60 * 24 * 60)] | UnsetType = UNSET
    max_horizon_days: Annotated[int, Meta(ge=1, le=366)] | UnsetType = UNSET
    buffer_before_minutes: Annotated[int, Meta(ge=0, le=240)] | UnsetType = UNSET
    buffer_after_minutes: Annotated[int, Meta(ge=0, le=240)] | UnsetType = UNSET
    bookable_by: Literal["public", "staff"] | UnsetType = UNSET
    ticket_prefix: Annotated[str, Meta(pattern=r"^[A-Z]{1,2}$")] | UnsetType = UNSET
    target_wait_minutes: Annotated[int, Meta(ge=1, le=24 * 60)] | UnsetType = UNSET
    active: bool | UnsetType = UNSET

    def __post_init__(self) -> None:
        _unique_if_set(self, "modes")


class ServiceRead(Struct):
    id: uuid.UUID
    agency_id: uuid.UUID
    name: str
    duration_minutes: int
    modes: list[str]
    skill: str | None
    min_notice_minutes: int
    max_horizon_days: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    bookable_by: str
    ticket_prefix: str
    target_wait_minutes: int
    active: bool


# --- weekly rules and absences --------------------------------------------------------------


class RuleCreate(Body):
    weekday: Annotated[int, Meta(ge=0, le=6)]
    start: HHMM
    end: HHMM
    modes: Annotated[list[ModeName], Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["in_person"]
    )
    quota: Literal["walk_in", "callback", "booking"] | None = None

    def __post_init__(self) -> None:
        _unique("modes", self.modes)
        if self.start >= self.end:
            raise ValueError(f"end: {self.end} must be after start {self.start}")


class RuleUpdate(Body):
    weekday: Annotated[int, Meta(ge=0, le=6)] | UnsetType = UNSET
    start: HHMM | UnsetType = UNSET
    end: HHMM | UnsetType = UNSET
    modes: Annotated[list[ModeName], Meta(min_length=1)] | UnsetType = UNSET
    quota: Literal["walk_in", "callback", "booking"] | UnsetType | None = UNSET

    def __post_init__(self) -> None:
        _unique_if_set(self, "modes")


class RuleRead(Struct):
    id: uuid.UUID
    counsellor_id: uuid.UUID
    weekday: int
    start: str
    end: str
    modes: list[str]
    quota: str | None


def _to_utc(field: str, value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00-05:00 is past year 9999 in UTC
        raise ValueError(f"{field}: out of range") from None


class AbsenceCreate(Body):
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: Annotated[str, Meta(max_length=200, pattern=NO_NUL)] | None = None

    def __post_init__(self) -> None:
        self.starts_at, self.ends_at = _to_utc("starts_at", self.starts_at), _to_utc("ends_at", self.ends_at)
        if self.starts_at >= self.ends_at:
            raise ValueError("ends_at: must be after starts_at")


class AbsenceRead(Struct):
    id: uuid.UUID
    counsellor_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    reason: str | None


S = TypeVar("S", bound=Struct)


def to_struct(kind: type[S], row: Any, **overrides: Any) -> S:
    """Build a read struct from an ORM row by field name."""
    values = {f: overrides[f] if f in overrides else getattr(row, f) for f in kind.__struct_fields__}
    return msgspec.convert(values, kind, from_attributes=True)


# --- booking --------------------------------------------------------------------------------

Phone = Annotated[str, Meta(min_length=3, max_length=32)]
Priority = Annotated[int, Meta(ge=0, le=2)]


class Needs(Body):
    priority: Priority = 0
    accessibility: Annotated[list[Tag], Meta(max_length=10)] = []
    interpreter_language: Language | None = None
    preferred_mode: ModeName | None = None
    preferred_windows: Annotated[list[tuple[AwareDatetime, AwareDatetime]], Meta(max_length=10)] = []


class JobSeekerIn(Body):
    name: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    phone: Phone | None = None
    email: Email | None = None
    language: Language | None = None
    preferred_channel: Literal["sms", "email", "none"] = "none"
    consent_sms: bool = False
    consent_email: bool = False
    needs: Needs | None = None


class HoldCreate(Body):
    agency_id: uuid.UUID
    service_id: uuid.UUID
    starts_at: AwareDatetime
    mode: ModeName
    counsellor_id: uuid.UUID | None = None


class HoldRead(Struct):
    id: uuid.UUID
    agency_id: uuid.UUID
    service_id: uuid.UUID
    counsellor_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    mode: str
    expires_at: datetime


class AppointmentCreate(Body):
    agency_id: uuid.UUID
    service_id: uuid.UUID
    starts_at: AwareDatetime
    mode: ModeName
    job_seeker: JobSeekerIn
    counsellor_id: uuid.UUID | None = None
    hold_id: uuid.UUID | None = None
    channel: ChannelName | None = None  # staff only: where the request came from


class Reschedule(Body):
    starts_at: AwareDatetime
    counsellor_id: uuid.UUID | None = None
    mode: ModeName | None = None


class Cancel(Body):
    reason: Annotated[str, Meta(max_length=200)] | None = None


class AppointmentRead(Struct, omit_defaults=True):
    id: uuid.UUID
    agency_id: uuid.UUID
    service_id: uuid.UUID
    counsellor_id: uuid.UUID
    job_seeker_id: uuid.UUID
    status: str
    starts_at: datetime
    ends_at: datetime
    mode: str
    channel: str
    assignment_reason: str | None
    created_by: str
    checked_in_at: datetime | None = None
    cancelled_at: datetime | None = None
    manage_token: str | None = None


class SlotRead(Struct):
    starts_at: datetime
    ends_at: datetime
    counsellor_id: uuid.UUID
    mode: str
    reason: str
