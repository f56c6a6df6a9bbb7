"""What every use case takes: a frozen command with an explicit ``channel`` and an ``Actor``.

A channel (HTTP, SMS, voice, a job) turns its own input into a command; services never see a
request schema nor guess where a request came from. Actors say who acts, with what proof:

- :class:`Staff`: a verified bearer token (staff roles, and kiosks);
- :class:`ManageTokenHolder`: a job seeker proving an appointment with its manage token;
- :class:`PhoneOwner`: a job seeker whose phone number a signed provider webhook vouches for;
- :class:`Public`: an anonymous caller of a public endpoint (web booking, callback request);
- :class:`System`: the service itself (a job, a sweeper, the capacity plan).

Each actor has an ``audit_name`` that never carries personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from orchestrator.auth import Principal, Role


class Channel(StrEnum):
    WEB = "web"
    SMS = "sms"
    VOICE = "voice"
    WALK_IN = "walk_in"
    FRONT_DESK = "front_desk"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Staff:
    principal: Principal

    @property
    def audit_name(self) -> str:
        return self.principal.actor


@dataclass(frozen=True, slots=True)
class ManageTokenHolder:
    token: str

    @property
    def audit_name(self) -> str:
        return "job_seeker:manage_token"


@dataclass(frozen=True, slots=True)
class PhoneOwner:
    phone: str  # E.164, vouched for by a signed webhook

    @property
    def audit_name(self) -> str:
        return "job_seeker:phone"


@dataclass(frozen=True, slots=True)
class Public:
    @property
    def audit_name(self) -> str:
        return "public"


@dataclass(frozen=True, slots=True)
class System:
    job: str  # e.g. "send_notification", "plan_capacity"

    @property
    def audit_name(self) -> str:
        return f"system:{self.job}"


Actor = Staff | ManageTokenHolder | PhoneOwner | Public | System


def principal_of(actor: Actor) -> Principal | None:
    """The principal whose role and agency are checked for ``actor``: the bearer's, or for the
    system one with every right (audited as ``admin:system:<job>``); None for job seekers."""
    if isinstance(actor, Staff):
        return actor.principal
    if isinstance(actor, System):
        return Principal(subject=f"system:{actor.job}", role=Role.ADMIN)
    return None


def is_system(actor: Actor) -> bool:
    return isinstance(actor, System)


@dataclass(frozen=True, slots=True)
class JobSeekerDetails:
    """Who a booking is for, as any channel collected it (plain values; the phone as typed)."""

    name: str | None = None
    phone: str | None = None
    email: str | None = None
    language: str | None = None
    preferred_channel: str = "none"  # sms, email, none
    consent_sms: bool = False
    consent_email: bool = False
    priority: int = 0
    accessibility: tuple[str, ...] = ()
    interpreter_language: str | None = None
    preferred_mode: str | None = None
    preferred_windows: tuple[tuple[datetime, datetime], ...] = ()
