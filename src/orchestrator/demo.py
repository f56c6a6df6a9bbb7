"""A realistic demo agency: counsellors with skills, languages and weekly rules, services, appointments."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.auth import Principal, Role
from orchestrator.db import unit_of_work
from orchestrator.models import Agency
from orchestrator.services import admin

DEMO_AGENCY = "Agence France Travail Lyon Part-Dieu (démo)"
SEEDER = Principal(subject="seed-demo", role=Role.ADMIN)

COUNSELLORS: list[dict[str, Any]] = [
    {"name": "Camille Martin", "email": "camille.martin@demo.example", "skills": ["insertion", "jeunes"],
     "languages": ["fr", "en"], "modes": ["in_person", "phone", "video"]},
    {"name": "Karim Benali", "email": "karim.benali@demo.example", "skills": ["insertion", "indemnisation"],
     "languages": ["fr", "ar"], "modes": ["in_person", "phone"]},
    {"name": "Lucía Fernández", "email": "lucia.fernandez@demo.example", "skills": ["creation_entreprise"],
     "languages": ["fr", "es", "pt"], "modes": ["in_person", "video"]},
    {"name": "Thomas Girard", "email": "thomas.girard@demo.example", "skills": ["handicap", "insertion"],
     "languages": ["fr"], "modes": ["in_person", "phone"]},
    {"name": "Aïcha Diallo", "email": "aicha.diallo@demo.example", "skills": ["indemnisation", "jeunes"],
     "languages": ["fr", "en", "wo"], "modes": ["in_person", "phone", "video"]},
    {"name": "Paul Lefèvre", "email": "paul.lefevre@demo.example", "skills": ["insertion"],
     "languages": ["fr", "de"], "modes": ["phone", "video"]},
]

SERVICES: list[dict[str, Any]] = [
    {"name": "Premier entretien", "duration_minutes": 45, "modes": ["in_person", "video"], "skill": "insertion",
     "min_notice_minutes": 120, "max_horizon_days": 45, "buffer_after_minutes": 15, "ticket_prefix": "P"},
    {"name": "Entretien de suivi", "duration_minutes": 30, "modes": ["in_person", "phone", "video"],
     "skill": "insertion", "min_notice_minutes": 60, "max_horizon_days": 60, "ticket_prefix": "S"},
    {"name": "Questions sur l'indemnisation", "duration_minutes": 20, "modes": ["in_person", "phone"],
     "skill": "indemnisation", "min_notice_minutes": 30, "max_horizon_days": 30, "ticket_prefix": "I",
     "target_wait_minutes": 20},
    {"name": "Projet de création d'entreprise", "duration_minutes": 60, "modes": ["in_person", "video"],
     "skill": "creation_entreprise", "min_notice_minutes": 1440, "max_horizon_days": 60, "ticket_prefix": "C"},
    {"name": "Accompagnement handicap", "duration_minutes": 60, "modes": ["in_person", "phone"],
     "skill": "handicap", "min_notice_minutes": 240, "max_horizon_days": 60, "ticket_prefix": "H",
     "bookable_by": "staff"},
]



async def seed_demo(sessions: async_sessionmaker[AsyncSession]) -> uuid.UUID:
    """Create the demo agency once; return its id (existing or new)."""
    async with unit_of_work(sessions) as uow:
        existing = await uow.session.scalar(select(Agency.id).where(Agency.name == DEMO_AGENCY))
        if existing is not None:
            return existing
        agency = await admin.create_agency(uow, SEEDER, {
            "name": DEMO_AGENCY, "timezone": "Europe/Paris", "address": "Place Charles Béraudier, 69003 Lyon",
            "opening_hours": {str(d): [["08:30", "12:30"], ["13:30", "17:00"]] for d in range(5)},
            "walk_in_enabled": True,
        })
        for service in SERVICES:
            await admin.create_service(uow, SEEDER, agency.id, dict(service))
        for index, spec in enumerate(COUNSELLORS):
            counsellor = await admin.create_counsellor(uow, SEEDER, agency.id, dict(spec))
            for weekday in range(5):
                desk_duty = weekday == index % 5
                await admin.create_rule(uow, SEEDER, counsellor.id, {
                    "weekday": weekday, "start": "09:00", "end": "12:30", "modes": spec["modes"],
                    "quota": "walk_in" if desk_duty else None,
                })
                await admin.create_rule(uow, SEEDER, counsellor.id, {
                    "weekday": weekday, "start": "13:30", "end": "17:00", "modes": spec["modes"], "quota": None,
                })
        return agency.id
