"""Request and response bodies (msgspec). Unknown fields are rejected; every check names its field."""

from __future__ import annotations

import re
import uuid
import zoneinfo
from datetime import UTC, date, datetime, time
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import msgspec
import phonenumbers
from msgspec import UNSET, Meta, Struct, UnsetType

ModeName = Literal["in_person", "phone", "video"]
ChannelName = Literal["web", "sms", "voice", "walk_in", "front_desk"]
# The patterns document the text rule in the OpenAPI; ``Body.__post_init__`` enforces it.
NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$"
MULTILINE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$"
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=NO_CONTROL)]
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


@lru_cache(maxsize=1)
def _zone_countries() -> dict[str, str]:
    """IANA zone → ISO 3166 country code, from the tz database's own ``zone.tab``."""
    table = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8")
    rows = (line.split("\t") for line in table.splitlines() if line and not line.startswith("#"))
    return {row[2]: row[0] for row in rows if len(row) >= 3}


# Metropolitan France and the overseas departments share one national numbering plan: "06 12 34
# 56 78" and "0692 12 34 56" (a Réunion mobile) are both valid national numbers anywhere in it.
FRENCH_NATIONAL_PLAN = ("FR", "RE", "GP", "MQ", "GF", "YT", "PM", "BL", "MF")


def phone_region(timezone: str, default: str = "FR") -> str:
    """The region whose national numbering applies at an agency: from its time zone (Indian/
    Reunion → RE, so "0692…" is a Réunion mobile), ``default`` when the zone names no country."""
    return _zone_countries().get(timezone, default)


def e164_phone(raw: str | None, field: str = "job_seeker.phone", *, region: str = "FR") -> str | None:
    """A phone number in E.164; national numbers are read in ``region`` (see :func:`phone_region`)
    and, for a region of the French national plan, in the other regions of that plan.

    Raises ``Invalid`` naming ``field``."""
    from orchestrator.errors import Invalid

    if raw is None:
        return None
    # the agency's region first, then the rest of its national plan (metropolitan France and the
    # overseas departments dial each other's national numbers as they are)
    regions = [region, *(r for r in FRENCH_NATIONAL_PLAN if r != region and region in FRENCH_NATIONAL_PLAN)]
    parsed = False
    for candidate in regions:
        try:
            number = phonenumbers.parse(raw, candidate)
        except phonenumbers.NumberParseException:
            continue
        parsed = True
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    raise Invalid(field, "not a valid phone number" if parsed else "not a phone number")


def parse_hhmm(value: str) -> time:
    return time(int(value[:2]), int(value[3:]))


def _unique(field: str, values: list[Any]) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"{field}: duplicate values")


def _unique_if_set(body: Any, *fields: str) -> None:
    for field in fields:
        if (values := getattr(body, field)) is not UNSET:
            _unique(field, values)


# --- the one rule for text and time at the edge -----------------------------------------------

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
CONTROL_CHARACTERS = "must not contain control characters"
OUT_OF_RANGE = f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC)"
# C0, DEL, C1, and the bidirectional embedding/override/isolate controls (they reorder what a
# counsellor or an SMS reader sees); the marks LRM/RLM stay allowed for right-to-left names
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def check_text(field: str, value: str, *, multiline: bool = False) -> str:
    """Free text from outside: no control characters (newlines and tabs only in multi-line text).

    PostgreSQL cannot store NUL; the others corrupt logs, SMS bodies and calendar files."""
    if (_CONTROL_BUT_LINES if multiline else _CONTROL).search(value):
        raise ValueError(f"{field}: {CONTROL_CHARACTERS}")
    return value


def check_moment(field: str, value: datetime) -> datetime:
    """An aware instant from outside, in UTC, inside [EARLIEST, LATEST): nothing downstream can
    overflow, whatever the offset (9999-12-31T23:00-05:00 is past year 9999 in UTC)."""
    if value.tzinfo is None:
        raise ValueError(f"{field}: needs a UTC offset")
    try:
        moment = value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{field}: {OUT_OF_RANGE}") from None
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"{field}: {OUT_OF_RANGE}")
    return moment


def edge_violation(message: str) -> str | None:
    """The plain message if a validation error broke the text/time rule (a 422, not a 400)."""
    if repr(NO_CONTROL)[1:-1] in message or repr(MULTILINE)[1:-1] in message:
        return CONTROL_CHARACTERS  # msgspec's own pattern check ran first
    for plain in (CONTROL_CHARACTERS, OUT_OF_RANGE, "needs a UTC offset"):
        if plain in message:
            return plain
    return None


def _at_the_edge(field: str, value: Any, multiline: bool) -> Any:
    if isinstance(value, str):
        return check_text(field, value, multiline=multiline)
    if isinstance(value, datetime):
        return check_moment(field, value)
    if isinstance(value, list | tuple):
        checked = [_at_the_edge(field, item, multiline) for item in value]
        unchanged = all(a is b for a, b in zip(checked, value, strict=True))
        return value if unchanged else type(value)(checked)
    if isinstance(value, dict):
        for key, item in value.items():
            _at_the_edge(field, key, False)
            _at_the_edge(field, item, multiline)
    return value


class Body(Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every request body. Every string and date-time in it, nested lists included,
    passes the one rule for text and time (:func:`check_text`, :func:`check_moment`) before the
    body's own cross-field :meth:`check` runs. Fields named in ``multiline`` may hold newlines."""

    multiline: ClassVar[frozenset[str]] = frozenset()

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            checked = _at_the_edge(name, value, name in self.multiline)
            if checked is not value:
                setattr(self, name, checked)
        self.check()

    def check(self) -> None:
        """Cross-field rules of this body; raise ``ValueError("<field>: <message>")``."""


# --- agencies -------------------------------------------------------------------------------

OpeningHours = dict[Annotated[str, Meta(pattern=r"^[0-6]$")], list[tuple[HHMM, HHMM]]]


def _check_opening_hours(hours: OpeningHours) -> None:
    for day, windows in hours.items():
        for start, end in windows:
            if start >= end:
                raise ValueError(f"opening_hours.{day}: start {start} must be before end {end}")


ClosedDates = Annotated[list[date], Meta(max_length=400)]


class QueuePolicyIn(Body):
    """The walk-in queue policy a manager may tune (every key optional; see the README)."""

    appointment_early_minutes: Annotated[int, Meta(ge=0, le=240)] | UnsetType = UNSET
    default_target_wait_minutes: Annotated[int, Meta(ge=1, le=24 * 60)] | UnsetType = UNSET
    gap_slack_minutes: Annotated[int, Meta(ge=0, le=120)] | UnsetType = UNSET
    recall_min_interval_minutes: Annotated[int, Meta(ge=0, le=120)] | UnsetType = UNSET
    starvation_factor: Annotated[float, Meta(gt=0, le=10)] | UnsetType = UNSET
    max_calls_before_no_show: Annotated[int, Meta(ge=1, le=10)] | UnsetType = UNSET
    language_is_soft: bool | UnsetType = UNSET
    honour_preferred_counsellor: bool | UnsetType = UNSET
    notify_positions_ahead: Annotated[int, Meta(ge=0, le=50)] | UnsetType = UNSET
    notify_minutes_ahead: Annotated[int, Meta(ge=0, le=240)] | UnsetType = UNSET
    # a booked person not checked in this long after the start is a no-show; their time goes to
    # the next walk-in or callback (0: only the desk marks no-shows)
    no_show_grace_minutes: Annotated[int, Meta(ge=0, le=120)] | UnsetType = UNSET
    # the capacity plan: serve 80 % of walk-ins within this wait; follow what is seen this far
    # ahead; let booking take the walk-in time measured no-shows give back (off by default)
    plan_walk_in_target_minutes: Annotated[int, Meta(ge=1, le=240)] | UnsetType = UNSET
    plan_release_horizon_minutes: Annotated[int, Meta(ge=0, le=24 * 60)] | UnsetType = UNSET
    plan_overbook_on_no_shows: bool | UnsetType = UNSET


SmsNumber = Annotated[
    str, Meta(pattern=r"^(\+[1-9][0-9]{6,14}|[0-9]{3,8})$", description="E.164 number or short code")
]
SmsBudget = Annotated[int, Meta(ge=0, le=10_000_000)]
StaleMinutes = Annotated[int, Meta(ge=0, le=43_200, description="0: never withhold slots")]


class AgencyCreate(Body):
    multiline = frozenset({"address"})
    name: Name
    timezone: str
    address: Annotated[str, Meta(max_length=500, pattern=MULTILINE)] | None = None
    opening_hours: OpeningHours = {}
    closed_dates: ClosedDates = []
    walk_in_enabled: bool = True
    sms_number: SmsNumber | None = None
    sms_inbound_enabled: bool = True
    sms_daily_budget: SmsBudget = 500
    alert_email: Email | None = None  # staff alerts (write-only: never shown on the public agency)
    calendar_stale_minutes: StaleMinutes = 360

    def check(self) -> None:
        check_timezone(self.timezone)
        _check_opening_hours(self.opening_hours)
        _unique("closed_dates", self.closed_dates)


class AgencyUpdate(Body):
    multiline = frozenset({"address"})
    name: Name | UnsetType = UNSET
    timezone: str | UnsetType = UNSET
    address: Annotated[str, Meta(max_length=500, pattern=MULTILINE)] | UnsetType | None = UNSET
    opening_hours: OpeningHours | UnsetType = UNSET
    closed_dates: ClosedDates | UnsetType = UNSET
    walk_in_enabled: bool | UnsetType = UNSET
    queue_policy: QueuePolicyIn | UnsetType = UNSET
    sms_number: SmsNumber | UnsetType | None = UNSET
    sms_inbound_enabled: bool | UnsetType = UNSET
    sms_daily_budget: SmsBudget | UnsetType = UNSET
    alert_email: Email | UnsetType | None = UNSET
    calendar_stale_minutes: StaleMinutes | UnsetType = UNSET

    def check(self) -> None:
        if isinstance(self.timezone, str):
            check_timezone(self.timezone)
        if not isinstance(self.opening_hours, UnsetType):
            _check_opening_hours(self.opening_hours)
        _unique_if_set(self, "closed_dates")


class AgencyRead(Struct):
    id: uuid.UUID
    name: str
    timezone: str
    address: str | None
    opening_hours: dict[str, Any]
    closed_dates: list[date]
    walk_in_enabled: bool
    active: bool
    queue_policy: dict[str, Any]  # every key with the value in force (defaults included)
    sms_number: str | None = None  # the number job seekers text (E.164 or a short code)
    sms_inbound_enabled: bool = True  # False: one-way sender (texts carry a link instead)
    sms_daily_budget: int = 500  # segments a local day; more wait for the next morning
    calendar_stale_minutes: int = 360  # an import this old withholds its counsellor's online slots


# --- counsellors ----------------------------------------------------------------------------


E164 = Annotated[str, Meta(pattern=r"^\+[1-9][0-9]{6,14}$", description="E.164, e.g. +33612345678")]


class CounsellorCreate(Body):
    name: Name
    email: Email
    phone: E164 | None = None  # click-to-call rings it first
    skills: Annotated[list[Tag], Meta(max_length=50)] = []
    languages: Annotated[list[Language], Meta(max_length=20)] = []
    modes: Annotated[list[ModeName], Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["in_person"]
    )

    def check(self) -> None:
        for field in ("skills", "languages", "modes"):
            _unique(field, getattr(self, field))


class CounsellorUpdate(Body):
    name: Name | UnsetType = UNSET
    email: Email | UnsetType = UNSET
    phone: E164 | UnsetType | None = UNSET
    skills: Annotated[list[Tag], Meta(max_length=50)] | UnsetType = UNSET
    languages: Annotated[list[Language], Meta(max_length=20)] | UnsetType = UNSET
    modes: Annotated[list[ModeName], Meta(min_length=1)] | UnsetType = UNSET
    active: bool | UnsetType = UNSET

    def check(self) -> None:
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
    phone: str | None = None


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

    def check(self) -> None:
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

    def check(self) -> None:
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

    def check(self) -> None:
        _unique("modes", self.modes)
        if self.start >= self.end:
            raise ValueError(f"end: {self.end} must be after start {self.start}")


class RuleUpdate(Body):
    weekday: Annotated[int, Meta(ge=0, le=6)] | UnsetType = UNSET
    start: HHMM | UnsetType = UNSET
    end: HHMM | UnsetType = UNSET
    modes: Annotated[list[ModeName], Meta(min_length=1)] | UnsetType = UNSET
    quota: Literal["walk_in", "callback", "booking"] | UnsetType | None = UNSET

    def check(self) -> None:
        _unique_if_set(self, "modes")


class RuleRead(Struct):
    id: uuid.UUID
    counsellor_id: uuid.UUID
    weekday: int
    start: str
    end: str
    modes: list[str]
    quota: str | None


class AbsenceCreate(Body):
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: Annotated[str, Meta(max_length=200, pattern=MULTILINE)] | None = None
    multiline = frozenset({"reason"})

    def check(self) -> None:
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

Phone = Annotated[str, Meta(min_length=3, max_length=32, pattern=NO_CONTROL)]
Priority = Annotated[int, Meta(ge=0, le=2)]


class Needs(Body):
    priority: Priority = 0
    accessibility: Annotated[list[Tag], Meta(max_length=10)] = []
    interpreter_language: Language | None = None
    preferred_mode: ModeName | None = None
    preferred_windows: Annotated[list[tuple[AwareDatetime, AwareDatetime]], Meta(max_length=10)] = []


class JobSeekerIn(Body):
    name: Name | None = None
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
    reason: Annotated[str, Meta(max_length=200, pattern=MULTILINE)] | None = None
    multiline = frozenset({"reason"})


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


# --- callbacks -----------------------------------------------------------------------------------


class CallbackWindow(Body):
    starts_at: AwareDatetime
    ends_at: AwareDatetime

    def check(self) -> None:
        if self.starts_at >= self.ends_at:
            raise ValueError("ends_at: must be after starts_at")


class CallbackCreate(Body):
    multiline = frozenset({"reason"})
    agency_id: uuid.UUID
    phone: Phone
    service_id: uuid.UUID | None = None
    language: Language | None = None
    reason: Annotated[str, Meta(max_length=500, pattern=MULTILINE)] | None = None
    needs: Annotated[list[Tag], Meta(max_length=10)] = []
    windows: Annotated[list[CallbackWindow], Meta(max_length=10)] = []
    name: Name | None = None


class CallbackOutcome(Body):
    multiline = frozenset({"note"})
    outcome: Annotated[str, Meta(pattern="^(reached|no_answer|voicemail|wrong_number)$")]
    note: Annotated[str, Meta(max_length=1000, pattern=MULTILINE)] | None = None


class CallbackRead(Struct, omit_defaults=True):
    id: uuid.UUID
    agency_id: uuid.UUID
    status: str
    channel: str
    service_id: uuid.UUID | None
    expected_at: datetime | None  # when the call is planned (null: not placed yet)
    deadline_at: datetime | None
    attempts: int
    counsellor_id: uuid.UUID | None = None
    placement_reason: str | None = None
    outcome: str | None = None
    phone: str | None = None  # staff only
    call_status: str | None = None  # click-to-call (staff only)
    manage_token: str | None = None  # once, when created
