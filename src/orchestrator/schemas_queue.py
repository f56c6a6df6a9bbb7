"""Request and response bodies of the walk-in queue (msgspec). Unknown fields are rejected."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from msgspec import Meta, Struct

from orchestrator.schemas import NO_CONTROL, Body, Language, Name, Phone, Tag

DeskLabel = Annotated[str, Meta(min_length=1, max_length=40, pattern=NO_CONTROL)]


class TicketSeekerIn(Body):
    name: Name | None = None
    phone: Phone | None = None


class TicketCreate(Body):
    service_id: uuid.UUID
    language: Language | None = None
    priority: Annotated[int, Meta(ge=0, le=2)] = 0
    needs: Annotated[list[Tag], Meta(max_length=10)] = []
    preferred_counsellor_id: uuid.UUID | None = None
    job_seeker: TicketSeekerIn | None = None
    # staff only: issue while the agency is closed (someone still waiting at closing time)
    outside_hours: bool = False

    def check(self) -> None:
        if len(set(self.needs)) != len(self.needs):
            raise ValueError("needs: duplicate values")


class TicketTransfer(Body):
    service_id: uuid.UUID | None = None
    counsellor_id: uuid.UUID | None = None

    def check(self) -> None:
        if self.service_id is None and self.counsellor_id is None:
            raise ValueError("service_id: give service_id and/or counsellor_id")


class DeskUpdate(Body):
    on_desk: bool
    desk_label: DeskLabel | None = None


class TicketRead(Struct):
    id: uuid.UUID
    agency_id: uuid.UUID
    number: str
    status: str
    service_id: uuid.UUID
    priority: int
    language: str | None
    needs: list[str]
    local_day: date
    arrived_at: datetime
    call_count: int
    counsellor_id: uuid.UUID | None
    preferred_counsellor_id: uuid.UUID | None
    desk: str | None
    called_at: datetime | None
    last_called_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    has_phone: bool = False
    position: int | None = None
    estimated_wait_minutes: int | None = None
    service_seconds: int | None = None


class AppointmentQueueRead(Struct):
    id: uuid.UUID
    agency_id: uuid.UUID
    status: str
    counsellor_id: uuid.UUID
    service_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    checked_in_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    label: str


class SkippedRead(Struct):
    ticket_id: uuid.UUID
    reason: str


class WorkRead(Struct):
    """What ``POST /counsellors/{id}/next`` handed out."""

    kind: str  # "appointment" | "ticket" | "callback"
    id: uuid.UUID
    reason: str
    counsellor_id: uuid.UUID
    desk: str | None
    service_id: uuid.UUID
    label: str
    number: str | None = None
    call_count: int | None = None
    starts_at: datetime | None = None
    detail: dict[str, str] = {}
    skipped: list[SkippedRead] = []
    phone: str | None = None  # a callback: the number to call


class DeskRead(Struct):
    id: uuid.UUID
    name: str
    on_desk: bool
    desk_label: str | None
    desk_since: datetime | None
    current: dict[str, Any] | None = None


class QueueRead(Struct):
    agency_id: uuid.UUID
    now: datetime
    local_day: date
    snapshot_id: str
    waiting_count: int
    typical_wait_minutes: int | None
    waiting: list[TicketRead]
    called: list[TicketRead]
    appointments: list[AppointmentQueueRead]
    counsellors: list[DeskRead]
