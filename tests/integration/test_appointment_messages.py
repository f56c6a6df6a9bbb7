"""What an appointment and a queue send, and when: confirmation with the manage link, reminders
replaced on a move and withdrawn on a cancellation, and "soon" texts that follow the clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select

from orchestrator import tasks
from orchestrator.models import Notification
from tests.helpers import make_agency, make_counsellor, make_rule, make_service
from tests.integration.test_walkin_queue import _outbox, _set_policy, call_next, issue, open_agency

SEEKER = {"name": "Awa", "phone": "06 12 34 56 78", "preferred_channel": "sms", "language": "fr"}


async def _world(client):  # type: ignore[no-untyped-def]
    agency = await make_agency(client, name="Agence Lyon")
    counsellor = await make_counsellor(client, agency["id"])
    for day in range(5):
        await make_rule(client, counsellor["id"], weekday=day, start="08:00", end="17:00")
    return agency, await make_service(client, agency["id"])


async def _messages(sessions, appointment_id: str) -> list[Notification]:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        rows = await session.scalars(
            select(Notification)
            .where(Notification.appointment_id == uuid.UUID(appointment_id))
            .order_by(Notification.created_at, Notification.kind, Notification.next_attempt_at)
        )
        return list(rows)


async def test_confirmation_link_and_reminders_follow_the_appointment(client, sessions):
    agency, service = await _world(client)
    r = await client.post(
        "/api/v1/appointments",
        json={
            "agency_id": agency["id"],
            "service_id": service["id"],
            "starts_at": "2026-03-10T14:00:00+01:00",
            "mode": "in_person",
            "job_seeker": SEEKER,
        },
    )
    assert r.status_code == 201, r.text
    booked = r.json()
    rows = await _messages(sessions, booked["id"])
    confirmed = next(n for n in rows if n.kind == "appointment.confirmed")
    assert confirmed.body == (
        "Agence Lyon: RDV confirmé mardi 10 mars à 14h00, à l'agence. "
        f"Pour l'annuler ou le déplacer: http://127.0.0.1:8000/m/{booked['manage_token']}"
    )
    assert (confirmed.encoding, confirmed.segments) == ("GSM-7", 1)
    reminders = sorted(n.next_attempt_at for n in rows if n.kind == "appointment.reminder")
    assert reminders == [datetime(2026, 3, 8, 13, 0, tzinfo=UTC), datetime(2026, 3, 10, 11, 0, tzinfo=UTC)]

    manage = {"X-Manage-Token": booked["manage_token"]}
    r = await client.post(
        f"/api/v1/appointments/{booked['id']}/reschedule",
        json={"starts_at": "2026-03-12T08:00:00+01:00"},
        headers=manage,
    )
    assert r.status_code == 200, r.text
    rows = await _messages(sessions, booked["id"])
    by_status = sorted(
        (n.kind, n.status, n.next_attempt_at) for n in rows if n.kind == "appointment.reminder"
    )
    assert by_status == [
        ("appointment.reminder", "cancelled", datetime(2026, 3, 8, 13, 0, tzinfo=UTC)),
        ("appointment.reminder", "cancelled", datetime(2026, 3, 10, 11, 0, tzinfo=UTC)),
        # 48 h before 8:00 is fine; 2 h before (6:00) is quiet, 8:00 leaves no time: the evening before
        ("appointment.reminder", "pending", datetime(2026, 3, 10, 7, 0, tzinfo=UTC)),
        ("appointment.reminder", "pending", datetime(2026, 3, 11, 18, 30, tzinfo=UTC)),
    ]
    moved = next(n for n in rows if n.kind == "appointment.rescheduled")
    assert moved.body == "Agence Lyon: votre RDV est déplacé au jeudi 12 mars à 8h00, à l'agence."

    r = await client.post(f"/api/v1/appointments/{booked['id']}/cancel", headers=manage)
    assert r.status_code == 200, r.text
    rows = await _messages(sessions, booked["id"])
    assert not [n for n in rows if n.kind == "appointment.reminder" and n.status == "pending"]
    assert [n.body for n in rows if n.kind == "appointment.cancelled"] == [
        "Agence Lyon: votre RDV du jeudi 12 mars à 8h00 est annulé."
    ]


async def test_english_speakers_get_english_texts(client, sessions):
    agency, service = await _world(client)
    r = await client.post(
        "/api/v1/appointments",
        json={
            "agency_id": agency["id"],
            "service_id": service["id"],
            "starts_at": "2026-03-10T09:30:00+01:00",
            "mode": "phone",
            "job_seeker": {**SEEKER, "language": "en"},
        },
    )
    assert r.status_code == 201, r.text
    rows = await _messages(sessions, r.json()["id"])
    confirmed = next(n for n in rows if n.kind == "appointment.confirmed")
    assert confirmed.body.startswith("Agence Lyon: appointment confirmed Tuesday 10 March at 9:30, by phone.")


async def test_soon_texts_follow_the_clock_not_only_the_queue(client, sessions, clock):
    setup = await open_agency(client, desks=1)
    await _set_policy(sessions, setup["id"], {"notify_positions_ahead": 0, "notify_minutes_ahead": 10})
    await issue(client, setup["id"], setup["service"]["id"])  # A001, no phone
    await issue(client, setup["id"], setup["service"]["id"], job_seeker={"phone": "06 12 34 56 70"})
    await call_next(client, setup["counsellors"][0])  # A001 is served for about 30 minutes
    ctx = {"sessions": sessions, "clock": clock, "publisher": None, "enqueuer": None}
    await tasks.check_soon(ctx)
    assert ("ticket.soon", "A002") not in await _outbox(sessions, setup["id"])  # still ~30 min away
    clock.advance(minutes=25)  # nobody was called meanwhile: only time passed
    await tasks.check_soon(ctx)
    assert ("ticket.soon", "A002") in await _outbox(sessions, setup["id"])
    async with sessions() as session:
        soon = (await session.scalars(select(Notification).where(Notification.kind == "ticket.soon"))).one()
    assert soon.body.startswith("Agence") and "votre tour approche (environ 5 min)" in soon.body
    assert soon.expires_at is not None and soon.expires_at > clock()


async def test_the_manage_link_shows_the_appointment_and_cancels_it(client, sessions):
    agency, service = await _world(client)
    r = await client.post(
        "/api/v1/appointments",
        json={
            "agency_id": agency["id"],
            "service_id": service["id"],
            "starts_at": "2026-03-10T14:00:00+01:00",
            "mode": "in_person",
            "job_seeker": SEEKER,
        },
    )
    token = r.json()["manage_token"]
    page = await client.get(f"/m/{token}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "mardi 10 mars à 14h00" in page.text and "Annuler ce rendez-vous" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    done = await client.post(f"/m/{token}/cancel")
    assert done.status_code == 303 and done.headers["location"] == f"/m/{token}"
    assert "Ce rendez-vous est annulé." in (await client.get(f"/m/{token}")).text
    unknown = await client.get("/m/not-a-real-token")
    assert unknown.status_code == 404 and "aucun rendez-vous" in unknown.text
    again = await client.post("/m/not-a-real-token/cancel")
    assert again.status_code == 303  # nothing happens; the page then says the link is unknown
