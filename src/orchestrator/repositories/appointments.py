"""An appointment with what acting on it needs, read in one query; the writes that change it.

:func:`load_appointment` returns the appointment, its job seeker, agency and service as ORM
objects *not in the session* (built from one plain row): changing one writes nothing by itself.
A use case writes its changes explicitly, in one statement (:func:`writes.write_together`):
:func:`changed` sets attributes on the object and returns the matching
:class:`~orchestrator.repositories.writes.RowChange`, so the object answered to the client and
the row written are the same values.
"""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, Uuid, bindparam, delete, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper

from orchestrator.models import Agency, Appointment, Claim, JobSeeker, Notification, Service
from orchestrator.repositories.writes import Prebuilt, RowChange

REMINDER = "appointment.reminder"

APPOINTMENTS = cast(Table, Appointment.__table__)


class AppointmentRows(NamedTuple):
    """An appointment and its job seeker, agency and service (detached ORM objects)."""

    appointment: Appointment
    seeker: JobSeeker
    agency: Agency
    service: Service


def _mapper(model: type[Any]) -> Mapper[Any]:
    mapper: Mapper[Any] = inspect(model)
    return mapper


_PARTS: tuple[tuple[str, type[Any]], ...] = (
    ("appointment", Appointment),
    ("seeker", JobSeeker),
    ("agency", Agency),
    ("service", Service),
)
# attribute name and result key of every column of each part
_COLUMNS = {
    part: [(attr.key, f"{part}__{attr.columns[0].key}") for attr in _mapper(model).column_attrs]
    for part, model in _PARTS
}


def _read() -> Any:
    tables = {part: cast(Table, model.__table__) for part, model in _PARTS}
    a, s, g, v = (tables[part] for part, _ in _PARTS)
    return (
        select(
            *(column.label(f"{part}__{column.key}") for part, table in tables.items() for column in table.c)
        )
        .select_from(
            a.join(s, s.c.id == a.c.job_seeker_id)
            .join(g, g.c.id == a.c.agency_id)
            .join(v, v.c.id == a.c.service_id)
        )
        .where(a.c.id == bindparam("appointment", type_=Uuid()))
    )


_READ = _read()
_READ_LOCKED = _READ.with_for_update(of=APPOINTMENTS)


async def load_appointment(
    session: AsyncSession, appointment_id: uuid.UUID, *, for_update: bool = False
) -> AppointmentRows | None:
    """The appointment and its job seeker, agency and service, in one query (``for_update``:
    the appointment row locked until the transaction ends); None if there is no such id."""
    statement = _READ_LOCKED if for_update else _READ
    row = (await session.execute(statement, {"appointment": appointment_id})).first()
    if row is None:
        return None
    values = row._mapping
    parts: list[Any] = [
        model(**{attr: values[key] for attr, key in _COLUMNS[part]}) for part, model in _PARTS
    ]
    return AppointmentRows(*parts)


def changed(appointment: Appointment, **values: Any) -> RowChange:
    """Set ``values`` on ``appointment`` (a detached object) and return the row change that
    writes them."""
    for key, value in values.items():
        setattr(appointment, key, value)
    return RowChange(APPOINTMENTS, appointment.id, values)


_DELETE_CLAIM = delete(Claim).where(Claim.id == bindparam("gone_claim", type_=Uuid()))
_WITHDRAW_REMINDERS = (
    update(Notification)
    .where(
        Notification.appointment_id == bindparam("withdrawn_for", type_=Uuid()),
        Notification.kind == REMINDER,
        Notification.status == "pending",
    )
    .values(status="cancelled", last_error="appointment changed")
)


def claim_deleted(claim_id: uuid.UUID) -> Prebuilt:
    """Delete the claim (a cancelled appointment's time is free at once)."""
    return Prebuilt(_DELETE_CLAIM, {"gone_claim": claim_id})


def reminders_withdrawn(appointment_id: uuid.UUID) -> Prebuilt:
    """The appointment's pending reminders will not be sent (it moved, or is cancelled)."""
    return Prebuilt(_WITHDRAW_REMINDERS, {"withdrawn_for": appointment_id})
