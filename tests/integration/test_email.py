"""E-mail: invitations a calendar app accepts, through a real SMTP server (aiosmtpd), parsed with
icalendar and with vobject (an independent iCalendar parser); the outbox's once-only delivery,
retries and refusals over SMTP; the per-appointment ``.ics``; nothing a user types escapes its
property."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import icalendar
import pytest
import vobject
from sqlalchemy import select, update

from orchestrator import outbox
from orchestrator.channels.local_smtp import LocalSmtp
from orchestrator.channels.smtp import SmtpSender
from orchestrator.db import make_engine, make_sessionmaker, unit_of_work
from orchestrator.deps import Messaging, SentSms
from orchestrator.models import Agency, Notification
from orchestrator.repositories.writes import write_together
from orchestrator.services.notifications import Outbox, send_notifications, sweep_outbox
from orchestrator.settings import Settings
from tests.helpers import (
    ADMIN,
    assert_problem,
    bearer,
    live_agency_slots,
    make_counsellor,
    make_rule,
    make_service,
)

ICS_PARTS = ("text/calendar", "application/ics")


def _calendar_parts(message: EmailMessage) -> list[tuple[str, str, str | None]]:
    """(content type, text, method parameter) of each iCalendar part of ``message``."""
    found = []
    for part in message.walk():
        if part.get_content_type() in ICS_PARTS:
            content = part.get_content()  # type: ignore[attr-defined]
            text = content.decode() if isinstance(content, bytes) else content
            found.append((part.get_content_type(), text, part.get_param("method")))
    return found


def _both_parsers(ics: str) -> dict[str, Any]:
    """The one VEVENT of ``ics`` as read by icalendar and by vobject; they must agree."""
    ours = icalendar.Calendar.from_ical(ics)
    (event,) = ours.walk("VEVENT")
    theirs = vobject.readOne(ics)
    (other,) = theirs.vevent_list
    seen = {
        "method": str(ours["METHOD"]),
        "uid": str(event["UID"]),
        "sequence": int(event["SEQUENCE"]),
        "status": str(event["STATUS"]),
        "start": event.decoded("DTSTART"),
        "end": event.decoded("DTEND"),
        "summary": str(event["SUMMARY"]),
        "location": str(event.get("LOCATION", "")),
        "organizer": str(event.get("ORGANIZER", "")),
        "attendee": str(event.get("ATTENDEE", "")),
    }
    assert theirs.method.value == seen["method"]
    assert other.uid.value == seen["uid"] and int(other.sequence.value) == seen["sequence"]
    assert other.status.value == seen["status"]
    assert other.dtstart.value == seen["start"] and other.dtend.value == seen["end"]
    assert other.summary.value == seen["summary"]
    assert getattr(getattr(other, "location", None), "value", "") == seen["location"]
    return seen


# --- the whole loop: `orchestrator run` → its worker → SMTP → the person's inbox --------------


async def test_a_person_who_prefers_email_gets_an_invitation_then_its_update_and_cancellation(live_server):
    smtp: LocalSmtp = live_server.smtp
    person = f"maria.{uuid.uuid4().hex[:8]}@example.org"
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        agency, service, slots = await live_agency_slots(
            http, name="Agence Lyon", modes=["in_person"], address="3 rue de la Gare, Lyon", limit=2
        )
        r = await http.post(
            "/api/v1/appointments",
            json={
                "agency_id": agency["id"],
                "service_id": service["id"],
                "starts_at": slots[0]["starts_at"],
                "mode": "in_person",
                "job_seeker": {
                    "name": "Maria",
                    "email": person,
                    "preferred_channel": "email",
                    "language": "en",
                },
            },
        )
        assert r.status_code == 201, r.text
        booked = r.json()
        uid = f"appointment-{booked['id']}@orchestrator"

        (invitation,) = await asyncio.to_thread(smtp.wait_for, person, 1, 30)
        assert invitation["Subject"].startswith("Agence Lyon: appointment confirmed on ")
        assert invitation["From"] == "rdv@agence.example"
        assert invitation["Message-ID"].endswith("@agence.example>")
        text = invitation.get_body(("plain",))
        html = invitation.get_body(("html",))
        assert text is not None and html is not None
        assert f"/m/{booked['manage_token']}" in text.get_content()
        assert "Where: 3 rue de la Gare, Lyon" in text.get_content()
        assert f'href="{live_server.base_url}/m/{booked["manage_token"]}"' in html.get_content()
        parts = _calendar_parts(invitation)
        assert [(kind, method) for kind, _, method in parts] == [
            ("text/calendar", "REQUEST"),
            ("application/ics", None),
        ]
        assert parts[0][1] == parts[1][1]  # inline and attached: the same invitation
        first = _both_parsers(parts[0][1])
        assert first | {"start": None, "end": None} == {
            "method": "REQUEST",
            "uid": uid,
            "sequence": 0,
            "status": "CONFIRMED",
            "start": None,
            "end": None,
            "summary": "Agence Lyon — Suivi",
            "location": "3 rue de la Gare, Lyon",
            "organizer": "mailto:rdv@agence.example",
            "attendee": f"mailto:{person}",
        }
        assert first["start"] == datetime.fromisoformat(slots[0]["starts_at"])
        assert str(first["start"].tzinfo) == "Europe/Paris"  # local time with the agency's VTIMEZONE

        manage = {"X-Manage-Token": booked["manage_token"]}
        r = await http.post(
            f"/api/v1/appointments/{booked['id']}/reschedule",
            json={"starts_at": slots[1]["starts_at"]},
            headers=manage,
        )
        assert r.status_code == 200, r.text
        moved = (await asyncio.to_thread(smtp.wait_for, person, 2, 30))[1]
        update_ = _both_parsers(_calendar_parts(moved)[0][1])
        assert (update_["method"], update_["uid"], update_["sequence"]) == ("REQUEST", uid, 1)
        assert update_["start"] == datetime.fromisoformat(slots[1]["starts_at"])

        # the download is the same event, for the manage-token holder (a link: ?token=)
        download = await http.get(
            f"/api/v1/appointments/{booked['id']}.ics", params={"token": booked["manage_token"]}
        )
        assert download.status_code == 200 and download.headers["content-type"].startswith("text/calendar")
        assert _both_parsers(download.text) | {"method": None} == update_ | {
            "method": None,
            "attendee": "",
            "organizer": "",
        }

        r = await http.post(f"/api/v1/appointments/{booked['id']}/cancel", headers=manage)
        assert r.status_code == 200, r.text
        cancelled = (await asyncio.to_thread(smtp.wait_for, person, 3, 30))[2]
        assert cancelled["Subject"].startswith("Agence Lyon: appointment on ")
        last = _both_parsers(_calendar_parts(cancelled)[0][1])
        assert (last["method"], last["uid"], last["sequence"], last["status"]) == (
            "CANCEL",
            uid,
            2,
            "CANCELLED",
        )
        # each message went once, to the person only
        assert [rcpt for _, rcpt in smtp.envelopes if person in rcpt] == [[person]] * 3


# --- in one transaction (the test's): DST, injection, the download's access ------------------


async def _email_booking(
    client: Any, starts_at: str, **agency_fields: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    r = await client.post(
        "/api/v1/agencies",
        json={"name": "Agence Lyon", "timezone": "Europe/Paris", **agency_fields},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    agency = r.json()
    counsellor = await make_counsellor(client, agency["id"], modes=["in_person"])
    for day in range(7):
        await make_rule(
            client, counsellor["id"], weekday=day, start="08:00", end="18:00", modes=["in_person"]
        )
    service = await make_service(client, agency["id"], name="Suivi", modes=["in_person"])
    r = await client.post(
        "/api/v1/appointments",
        json={
            "agency_id": agency["id"],
            "service_id": service["id"],
            "starts_at": starts_at,
            "mode": "in_person",
            "job_seeker": {"name": "Maria", "email": "maria@example.org", "preferred_channel": "email"},
        },
    )
    assert r.status_code == 201, r.text
    return agency, r.json()


async def _invitations(sessions: Any, appointment_id: str) -> list[dict[str, Any]]:
    async with sessions() as session:
        rows = await session.scalars(
            select(Notification)
            .where(Notification.appointment_id == uuid.UUID(appointment_id), Notification.channel == "email")
            .where(Notification.kind != "appointment.reminder")
            .order_by(Notification.created_at, Notification.dedupe_key)
        )
        return [_both_parsers(row.payload["ics"]) for row in rows]


async def test_invitations_keep_local_time_across_the_change_to_summer_time(client, sessions):
    # Friday 27 March 2026, 9:00 in Paris is 8:00 UTC; Monday 30 March, 9:00 is 7:00 UTC (CEST)
    _, booked = await _email_booking(client, "2026-03-27T09:00:00+01:00")
    manage = {"X-Manage-Token": booked["manage_token"]}
    r = await client.post(
        f"/api/v1/appointments/{booked['id']}/reschedule",
        json={"starts_at": "2026-03-30T09:00:00+02:00"},
        headers=manage,
    )
    assert r.status_code == 200, r.text
    first, moved = await _invitations(sessions, booked["id"])
    assert (first["start"].hour, first["start"].astimezone(UTC).hour, first["sequence"]) == (9, 8, 0)
    assert (moved["start"].hour, moved["start"].astimezone(UTC).hour, moved["sequence"]) == (9, 7, 1)
    assert first["uid"] == moved["uid"]


async def test_what_staff_type_stays_inside_its_property(client, sessions):
    hostile = "1 rue X\nEND:VEVENT\nBEGIN:VEVENT\nUID:evil\nDTSTART:20260101T000000Z\nX-INJECT:1"
    _, booked = await _email_booking(client, "2026-03-10T09:00:00+01:00", address=hostile)
    (invitation,) = await _invitations(sessions, booked["id"])  # both parsers: one VEVENT only
    assert invitation["location"] == hostile
    assert invitation["uid"] == f"appointment-{booked['id']}@orchestrator"


async def test_the_appointment_file_is_for_its_holder_and_the_agency_staff(client):
    agency, booked = await _email_booking(client, "2026-03-10T09:00:00+01:00")
    path = f"/api/v1/appointments/{booked['id']}.ics"
    assert_problem(await client.get(path), 401, 404)
    assert_problem(await client.get(path, params={"token": "forged"}), 401, 404)
    assert_problem(await client.get(path, headers=bearer("manager", str(uuid.uuid4()))), 403, 404)
    staff = await client.get(path, headers=bearer("front_desk", agency["id"]))
    assert staff.status_code == 200
    mine = await client.get(path, headers={"X-Manage-Token": booked["manage_token"]})
    assert mine.content == staff.content and b"METHOD:PUBLISH" in mine.content
    assert mine.headers["referrer-policy"] == "no-referrer"
    assert (
        await client.get(f"/api/v1/appointments/{booked['id']}/calendar.ics", headers=ADMIN)
    ).content == mine.content
    assert_problem(await client.get(f"/api/v1/appointments/{uuid.uuid4()}.ics", headers=ADMIN), 404)
    assert_problem(await client.get("/api/v1/appointments/not-a-uuid.ics", headers=ADMIN), 400, 404)


# --- the outbox over SMTP: once, retried, refused --------------------------------------------


@pytest.fixture
async def mailbox(committed_url, servers, smtp_server) -> AsyncIterator[tuple[Outbox, LocalSmtp]]:  # type: ignore[no-untyped-def]
    handler, port = smtp_server
    settings = Settings(
        database_url=committed_url,
        redis_url=servers.redis_url,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_tls="none",
        smtp_from="rdv@agence.example",
        outbox_grace_seconds=0,
        outbox_stale_seconds=60,
    )
    engine = make_engine(committed_url, pool_size=5)
    box = Outbox(engine, _NoSms(), Messaging.from_settings(settings), mailer=SmtpSender(settings))
    try:
        yield box, handler
    finally:
        handler.faults.clear()
        await engine.dispose()


class _NoSms:
    async def send(self, to: str, body: str, *, status_callback: str | None) -> SentSms:
        raise AssertionError("no SMS in these tests")

    async def find_sent(self, to: str, body: str, since: datetime) -> SentSms | None:
        raise AssertionError("no SMS in these tests")


async def _queue_email(box: Outbox, to: str, **fields: Any) -> uuid.UUID:
    sessions = make_sessionmaker(box.engine)
    async with unit_of_work(sessions) as uow:
        agency = Agency(id=uuid.uuid4(), name="Agence", timezone="Europe/Paris")
        uow.session.add(agency)
        await uow.session.flush()
        row = outbox.message(
            agency_id=agency.id,
            kind="appointment.confirmed",
            channel="email",
            recipient=to,
            dedupe_key=f"test:{uuid.uuid4()}",
            body="Votre rendez-vous est confirmé.",
            payload={"subject": "Rendez-vous", "html": "<p>Votre rendez-vous est confirmé.</p>"},
            **fields,
        )
        await write_together(uow.session, [row.row])
    return row.id


async def _row(box: Outbox, row_id: uuid.UUID) -> Notification:
    async with make_sessionmaker(box.engine)() as session:
        found = await session.get(Notification, row_id)
        assert found is not None
        return found


async def test_an_email_is_sent_once_even_when_its_job_runs_twice(mailbox):
    box, smtp = mailbox
    to = f"once.{uuid.uuid4().hex[:8]}@example.org"
    row_id = await _queue_email(box, to)
    now = datetime.now(UTC)
    first, second = await asyncio.gather(
        send_notifications(box, [str(row_id)], now=now), send_notifications(box, [str(row_id)], now=now)
    )
    assert sorted([first[str(row_id)], second[str(row_id)]]) == ["not_due", "sent"]
    (message,) = [m for m in smtp.messages if m["To"] == to]
    row = await _row(box, row_id)
    assert (row.status, row.provider_sid, row.attempts) == ("sent", message["Message-ID"], 1)
    assert message["Message-ID"] == f"<{row_id}@agence.example>"
    assert message.get_body(("plain",)).get_content().strip() == "Votre rendez-vous est confirmé."  # type: ignore[union-attr]


async def test_a_busy_mail_server_is_retried_and_a_refused_mailbox_is_final(mailbox):
    box, smtp = mailbox
    later = f"later.{uuid.uuid4().hex[:8]}@example.org"
    row_id = await _queue_email(box, later)
    now = datetime.now(UTC)
    smtp.faults.append("451 4.3.0 try again later")
    outcome = await send_notifications(box, [str(row_id)], now=now)
    assert outcome[str(row_id)] == "pending:451"
    row = await _row(box, row_id)
    assert (row.status, row.error_code) == ("pending", 451) and row.next_attempt_at == now + timedelta(
        seconds=5
    )
    assert (await send_notifications(box, [str(row_id)], now=now + timedelta(seconds=5)))[
        str(row_id)
    ] == "sent"
    assert len([m for m in smtp.messages if m["To"] == later]) == 1

    gone = f"gone.{uuid.uuid4().hex[:8]}@example.org"
    smtp.refused.add(gone)
    row_id = await _queue_email(box, gone)
    now = datetime.now(UTC)
    assert (await send_notifications(box, [str(row_id)], now=now))[str(row_id)] == "failed:550"
    assert (await _row(box, row_id)).status == "failed"


async def test_an_email_left_sending_by_a_crash_is_resent_with_the_same_message_id(mailbox):
    box, smtp = mailbox
    to = f"crash.{uuid.uuid4().hex[:8]}@example.org"
    row_id = await _queue_email(box, to)
    now = datetime.now(UTC)
    async with make_sessionmaker(box.engine)() as session:  # a worker claimed it, then died
        await session.execute(
            update(Notification)
            .where(Notification.id == row_id)
            .values(status="sending", claimed_at=now - timedelta(minutes=5), attempts=1)
        )
        await session.commit()
    swept = await sweep_outbox(box, now=now)
    assert swept["settled"] >= 1
    assert (await send_notifications(box, [str(row_id)], now=now))[str(row_id)] == "sent"
    (message,) = [m for m in smtp.messages if m["To"] == to]
    assert message["Message-ID"] == f"<{row_id}@agence.example>"


async def test_no_log_line_carries_an_address(mailbox, caplog):
    box, _ = mailbox
    to = f"private.{uuid.uuid4().hex[:8]}@example.org"
    row_id = await _queue_email(box, to)
    with caplog.at_level("DEBUG"):
        outcome = await send_notifications(box, [str(row_id)], now=datetime.now(UTC))
    assert outcome[str(row_id)] == "sent"
    assert to not in caplog.text and "example.org" not in caplog.text
