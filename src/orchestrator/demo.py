"""A realistic demo agency: counsellors with skills, languages and weekly rules, services, appointments."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.auth import Principal, Role
from orchestrator.db import UnitOfWork, unit_of_work
from orchestrator.deps import Messaging
from orchestrator.errors import Conflict
from orchestrator.models import Agency
from orchestrator.services import admin, booking
from orchestrator.services.commands import Channel, JobSeekerDetails, Staff

DEMO_AGENCY = "Agence France Travail Lyon Part-Dieu (démo)"
DEMO_SMS_NUMBER = "+33700000000"  # the local Twilio's sender: texts to it reach the demo agency
SEEDER = Principal(subject="seed-demo", role=Role.ADMIN)

COUNSELLORS: list[dict[str, Any]] = [
    {
        "name": "Camille Martin",
        "email": "camille.martin@demo.example",
        "skills": ["insertion", "jeunes"],
        "languages": ["fr", "en"],
        "modes": ["in_person", "phone", "video"],
    },
    {
        "name": "Karim Benali",
        "email": "karim.benali@demo.example",
        "skills": ["insertion", "indemnisation"],
        "languages": ["fr", "ar"],
        "modes": ["in_person", "phone"],
    },
    {
        "name": "Lucía Fernández",
        "email": "lucia.fernandez@demo.example",
        "skills": ["creation_entreprise"],
        "languages": ["fr", "es", "pt"],
        "modes": ["in_person", "video"],
    },
    {
        "name": "Thomas Girard",
        "email": "thomas.girard@demo.example",
        "skills": ["handicap", "insertion"],
        "languages": ["fr"],
        "modes": ["in_person", "phone"],
    },
    {
        "name": "Aïcha Diallo",
        "email": "aicha.diallo@demo.example",
        "skills": ["indemnisation", "jeunes"],
        "languages": ["fr", "en", "wo"],
        "modes": ["in_person", "phone", "video"],
    },
    {
        "name": "Paul Lefèvre",
        "email": "paul.lefevre@demo.example",
        "skills": ["insertion"],
        "languages": ["fr", "de"],
        "modes": ["phone", "video"],
    },
]

SERVICES: list[dict[str, Any]] = [
    {
        "name": "Premier entretien",
        "duration_minutes": 45,
        "modes": ["in_person", "video"],
        "skill": "insertion",
        "min_notice_minutes": 120,
        "max_horizon_days": 45,
        "buffer_after_minutes": 15,
        "ticket_prefix": "P",
    },
    {
        "name": "Entretien de suivi",
        "duration_minutes": 30,
        "modes": ["in_person", "phone", "video"],
        "skill": "insertion",
        "min_notice_minutes": 60,
        "max_horizon_days": 60,
        "ticket_prefix": "S",
    },
    {
        "name": "Questions sur l'indemnisation",
        "duration_minutes": 20,
        "modes": ["in_person", "phone"],
        "skill": "indemnisation",
        "min_notice_minutes": 30,
        "max_horizon_days": 30,
        "ticket_prefix": "I",
        "target_wait_minutes": 20,
    },
    {
        "name": "Projet de création d'entreprise",
        "duration_minutes": 60,
        "modes": ["in_person", "video"],
        "skill": "creation_entreprise",
        "min_notice_minutes": 1440,
        "max_horizon_days": 60,
        "ticket_prefix": "C",
    },
    {
        "name": "Accompagnement handicap",
        "duration_minutes": 60,
        "modes": ["in_person", "phone"],
        "skill": "handicap",
        "min_notice_minutes": 240,
        "max_horizon_days": 60,
        "ticket_prefix": "H",
        "bookable_by": "staff",
    },
]


DEMO_PEOPLE = [
    JobSeekerDetails(name="Nadia B.", phone="+33612345601", language="fr", preferred_channel="sms"),
    JobSeekerDetails(name="Youssef K.", phone="+33612345602", language="ar", preferred_channel="sms"),
    JobSeekerDetails(name="Maria S.", email="maria@demo.example", language="pt", preferred_channel="email"),
    JobSeekerDetails(name="Kevin L.", language="fr"),
    JobSeekerDetails(
        name="Fatou D.",
        phone="+33612345605",
        language="fr",
        preferred_channel="sms",
        priority=1,
        accessibility=("wheelchair",),
    ),
]
DEMO_CHANNELS = (Channel.WEB, Channel.SMS, Channel.VOICE, Channel.FRONT_DESK)


async def _book_some(uow: UnitOfWork, agency_id: uuid.UUID, now: datetime, per_service: int = 4) -> int:
    """Book a spread of appointments over the coming week through the real booking path."""
    booked = 0
    for service in await admin.list_services(uow, SEEDER, agency_id):
        query = booking.FindSlots(
            Staff(SEEDER), Channel.SYSTEM, agency_id, service.id, start=now, end=now + timedelta(days=7)
        )
        slots = await booking.find_slots(uow, query, now=now, max_days=62)
        for index, slot in enumerate(slots[:: max(1, len(slots) // per_service)][:per_service]):
            command = booking.BookAppointment(
                actor=Staff(SEEDER),
                channel=DEMO_CHANNELS[index % len(DEMO_CHANNELS)],
                agency_id=agency_id,
                service_id=service.id,
                starts_at=slot.start,
                mode=slot.mode.value,
                job_seeker=DEMO_PEOPLE[(booked + index) % len(DEMO_PEOPLE)],
            )
            try:
                await booking.book_appointment(uow, command, now=now)
            except Conflict:
                continue
            booked += 1
    return booked


async def seed_demo(
    sessions: async_sessionmaker[AsyncSession],
    now: datetime | None = None,
    messaging: Messaging | None = None,
) -> uuid.UUID:
    """Create the demo agency once; return its id (existing or new). ``messaging`` writes the
    demo bookings' texts (their manage links use its public URL)."""
    async with unit_of_work(sessions, messaging=messaging) as uow:
        existing = await uow.session.scalar(select(Agency.id).where(Agency.name == DEMO_AGENCY))
        if existing is not None:
            return existing
        agency = await admin.create_agency(
            uow,
            SEEDER,
            {
                "name": DEMO_AGENCY,
                "timezone": "Europe/Paris",
                "address": "Place Charles Béraudier, 69003 Lyon",
                "opening_hours": {str(d): [["08:30", "12:30"], ["13:30", "17:00"]] for d in range(5)},
                "walk_in_enabled": True,
                "sms_number": DEMO_SMS_NUMBER,
            },
        )
        for service in SERVICES:
            await admin.create_service(uow, SEEDER, agency.id, dict(service))
        for index, spec in enumerate(COUNSELLORS):
            counsellor = await admin.create_counsellor(uow, SEEDER, agency.id, dict(spec))
            for weekday in range(5):
                desk_duty = weekday == index % 5
                await admin.create_rule(
                    uow,
                    SEEDER,
                    counsellor.id,
                    {
                        "weekday": weekday,
                        "start": "09:00",
                        "end": "12:30",
                        "modes": spec["modes"],
                        "quota": "walk_in" if desk_duty else None,
                    },
                )
                await admin.create_rule(
                    uow,
                    SEEDER,
                    counsellor.id,
                    {
                        "weekday": weekday,
                        "start": "13:30",
                        "end": "17:00",
                        "modes": spec["modes"],
                        "quota": None,
                    },
                )
        await _book_some(uow, agency.id, now or datetime.now(UTC))
        return agency.id
