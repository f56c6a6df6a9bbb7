"""Callbacks from every channel (API, SMS, the voice line), placed in counsellors' real gaps,
handed out by "call next", with outcomes and retries; never overlapping another claim."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import pytest
from sqlalchemy import func, select, text
from twilio.request_validator import RequestValidator

from orchestrator import tasks
from orchestrator.channels.twilio import LOCAL_AUTH_TOKEN
from orchestrator.models import CallbackRequest, Claim, Notification, PhoneContact
from tests.helpers import ADMIN, assert_problem, bearer, make_agency, make_counsellor, make_rule, make_service
from tests.integration.test_sms_conversation import AGENCY_NUMBER, Phone

BASE = "http://127.0.0.1:8000"
CALLER = "+33677777777"


@pytest.fixture
async def world(client: Any) -> dict[str, Any]:
    agency = await make_agency(client, name="Agence Lyon")
    r = await client.patch(
        f"/api/v1/agencies/{agency['id']}", json={"sms_number": AGENCY_NUMBER}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    counsellor = await make_counsellor(client, agency["id"], modes=["in_person", "phone"])
    for day in range(5):
        await make_rule(client, counsellor["id"], weekday=day, start="09:00", end="12:00")
    service = await make_service(client, agency["id"], name="Inscription")
    return {"agency": agency, "counsellor": counsellor, "service": service}


def _as_counsellor(world: dict[str, Any]) -> dict[str, str]:
    return bearer("counsellor", world["agency"]["id"], world["counsellor"]["id"])


async def _ask(client: Any, world: dict[str, Any], **extra: Any) -> Any:
    body = {"agency_id": world["agency"]["id"], "phone": "06 77 77 77 77", **extra}
    return await client.post("/api/v1/callbacks", json=body)


async def test_a_request_is_placed_at_once_and_the_person_told_when(client, world, sessions):
    r = await _ask(client, world, reason="Question sur mon inscription")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "scheduled" and body["manage_token"]
    assert body["expected_at"] == "2026-03-02T08:00:00Z"  # 9:00 Paris, the first phone time
    assert "phone" not in body and "counsellor_id" not in body  # the public sees neither
    async with sessions() as session:
        claim = (await session.scalars(select(Claim))).one()
        text_sent = (
            await session.scalars(
                select(Notification).where(Notification.kind == "callback.callback_expected")
            )
        ).one()
    assert (claim.kind, claim.starts_at) == ("callback", datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    assert claim.ends_at - claim.starts_at == timedelta(minutes=15)
    assert text_sent.recipient == CALLER
    assert text_sent.body == "Agence Lyon: un conseiller vous appellera le lundi 2 mars à 9h00 environ."


async def test_one_active_request_per_number_a_second_updates_the_first(client, world, sessions):
    first = (await _ask(client, world)).json()
    window = {"starts_at": "2026-03-02T10:00:00+01:00", "ends_at": "2026-03-02T11:00:00+01:00"}
    second = await _ask(client, world, windows=[window])
    assert second.status_code == 201 and second.json()["id"] == first["id"]
    assert "manage_token" not in second.json()  # only the first request gets one
    assert second.json()["expected_at"] == "2026-03-02T09:00:00Z"  # moved into the new window
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(CallbackRequest)) == 1
        assert await session.scalar(select(func.count()).select_from(Claim)) == 1  # the old time freed


async def test_reading_and_cancelling_need_the_token_or_the_agencys_staff(client, world, sessions):
    asked = (await _ask(client, world)).json()
    path = f"/api/v1/callbacks/{asked['id']}"
    assert_problem(await client.get(path), 401)
    assert_problem(await client.get(path, headers={"X-Manage-Token": "wrong"}), 404)
    other = await make_agency(client, name="Autre")
    assert_problem(await client.get(path, headers=bearer("front_desk", other["id"])), 404)
    mine = await client.get(path, headers={"X-Manage-Token": asked["manage_token"]})
    assert mine.status_code == 200 and mine.json()["status"] == "scheduled"
    staff = await client.get(path, headers=bearer("front_desk", world["agency"]["id"]))
    assert staff.json()["phone"] == CALLER
    cancelled = await client.post(path + "/cancel", headers={"X-Manage-Token": asked["manage_token"]})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Claim)) == 0
    listed = await client.get(
        f"/api/v1/agencies/{world['agency']['id']}/callbacks",
        headers=bearer("front_desk", world["agency"]["id"]),
    )
    assert [c["status"] for c in listed.json()] == ["cancelled"]
    assert_problem(
        await client.get(
            f"/api/v1/agencies/{world['agency']['id']}/callbacks", headers=bearer("front_desk", other["id"])
        ),
        404,
    )


async def test_bad_requests_are_clear_errors(client, world):
    assert_problem(await _ask(client, world, phone="not a number"), 400, 422, field="phone")
    bad_window = {"starts_at": "2026-03-02T11:00:00+01:00", "ends_at": "2026-03-02T10:00:00+01:00"}
    assert_problem(await _ask(client, world, windows=[bad_window]), 400, 422, field="windows")
    assert_problem(await _ask(client, world, service_id=str(uuid.uuid4())), 422, field="service_id")
    unknown = await client.post(
        "/api/v1/callbacks", json={"agency_id": str(uuid.uuid4()), "phone": "0677777777"}
    )
    assert_problem(unknown, 404)


async def test_call_next_hands_out_the_due_callback_and_outcomes_retry_then_give_up(
    client, world, sessions, clock
):
    asked = (await _ask(client, world)).json()
    counsellor = world["counsellor"]["id"]
    r = await client.post(
        f"/api/v1/counsellors/{counsellor}/desk", json={"on_desk": True, "desk_label": "3"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    ctx = {"sessions": sessions, "clock": clock, "publisher": None, "enqueuer": None}
    for attempt in (1, 2, 3):
        if attempt > 1:  # the first call comes early: at 8:00 the counsellor has nothing else to do
            clock.now = datetime.fromisoformat(
                (await client.get(f"/api/v1/callbacks/{asked['id']}", headers=ADMIN)).json()["expected_at"]
            )
        work = await client.post(f"/api/v1/counsellors/{counsellor}/next", headers=ADMIN)
        assert work.status_code == 200, work.text
        assert (work.json()["kind"], work.json()["reason"], work.json()["phone"]) == (
            "callback",
            "callback_early" if attempt == 1 else "callback_due",
            CALLER,
        )
        if attempt == 1:  # its claim moved to now: planned for 9:00, called at 8:00
            moved = (await client.get(f"/api/v1/callbacks/{asked['id']}", headers=ADMIN)).json()
            assert (moved["status"], moved["expected_at"]) == ("in_progress", "2026-03-02T07:00:00Z")
            assert dict(work.json()["detail"])["planned_at"] == "2026-03-02T08:00:00+00:00"
        busy = await client.post(f"/api/v1/counsellors/{counsellor}/next", headers=ADMIN)
        assert_problem(busy, 409)
        outcome = await client.post(
            f"/api/v1/callbacks/{asked['id']}/outcome",
            json={"outcome": "no_answer"},
            headers=_as_counsellor(world),
        )
        assert outcome.status_code == 200, outcome.text
        if attempt < 3:
            assert outcome.json()["status"] == "requested"  # tried again later
            await tasks.plan_callbacks(ctx, world["agency"]["id"])
            again = (await client.get(f"/api/v1/callbacks/{asked['id']}", headers=ADMIN)).json()
            assert again["status"] == "scheduled"
            assert datetime.fromisoformat(again["expected_at"]) >= clock() + timedelta(hours=2)  # the spacing
    assert outcome.json()["status"] == "failed" and outcome.json()["attempts"] == 3
    async with sessions() as session:
        kinds = [n.kind for n in (await session.scalars(select(Notification))).all()]
    assert "callback.callback_missed" in kinds  # invited to ask again


async def test_reached_completes_and_wrong_number_marks_it_unreachable(client, world, sessions, clock):
    asked = (await _ask(client, world)).json()
    clock.now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    started = await client.post(f"/api/v1/callbacks/{asked['id']}/start", headers=_as_counsellor(world))
    assert started.status_code == 200 and started.json()["status"] == "in_progress"
    assert_problem(
        await client.post(f"/api/v1/callbacks/{asked['id']}/start", headers=_as_counsellor(world)), 409
    )
    assert_problem(
        await client.post(
            f"/api/v1/callbacks/{asked['id']}/outcome", json={"outcome": "maybe"}, headers=ADMIN
        ),
        400,
        422,
        field="outcome",
    )
    done = await client.post(
        f"/api/v1/callbacks/{asked['id']}/outcome", json={"outcome": "reached", "note": "ok"}, headers=ADMIN
    )
    assert done.json()["status"] == "completed"
    other = (await _ask(client, world, phone="06 11 22 33 44")).json()
    await client.post(f"/api/v1/callbacks/{other['id']}/start", headers=ADMIN)
    wrong = await client.post(
        f"/api/v1/callbacks/{other['id']}/outcome", json={"outcome": "wrong_number"}, headers=ADMIN
    )
    assert wrong.json()["status"] == "failed"
    async with sessions() as session:
        contact = await session.get(PhoneContact, "+33611223344")
    assert contact is not None and contact.unreachable_at is not None


async def test_a_callback_and_a_web_booking_never_share_time(client, world, sessions):
    await _ask(client, world)  # placed 9:00-9:15
    r = await client.post(
        "/api/v1/appointments",
        json={
            "agency_id": world["agency"]["id"],
            "service_id": world["service"]["id"],
            "starts_at": "2026-03-02T09:00:00+01:00",
            "mode": "phone",
            "job_seeker": {"name": "X"},
        },
    )
    assert_problem(r, 409)
    async with sessions() as session:
        overlaps = await session.scalar(
            text(
                "SELECT count(*) FROM claims a JOIN claims b ON a.counsellor_id = b.counsellor_id AND a.id < b.id "
                "AND tstzrange(a.starts_at, a.ends_at) && tstzrange(b.starts_at, b.ends_at)"
            )
        )
    assert overlaps == 0


async def test_time_freed_by_a_cancellation_goes_to_a_waiting_callback(
    client, world, sessions, clock, enqueued
):
    # a one-hour phone day, fully booked: the callback waits
    agency = world["agency"]["id"]
    late = await make_counsellor(client, agency, name="Solo", email="solo@example.org", modes=["phone"])
    await client.post(f"/api/v1/counsellors/{world['counsellor']['id']}/deactivate", headers=ADMIN)
    await make_rule(client, late["id"], weekday=0, start="14:00", end="14:30", modes=["phone"])
    booked = await client.post(
        "/api/v1/appointments",
        json={
            "agency_id": agency,
            "service_id": world["service"]["id"],
            "starts_at": "2026-03-02T14:00:00+01:00",
            "mode": "phone",
            "job_seeker": {"name": "Y"},
        },
    )
    assert booked.status_code == 201, booked.text
    window = {"starts_at": "2026-03-02T13:00:00+01:00", "ends_at": "2026-03-02T15:00:00+01:00"}
    waiting = (await _ask(client, world, windows=[window])).json()
    assert waiting["status"] == "requested" and waiting.get("expected_at") is None
    r = await client.post(f"/api/v1/appointments/{booked.json()['id']}/cancel", headers=ADMIN)
    assert r.status_code == 200
    # the cancellation asked, after its commit, for the agency's callbacks to be planned again
    assert ("plan_callbacks", (agency,), f"plan_callbacks:{agency}") in enqueued.jobs
    await tasks.plan_callbacks(
        {"sessions": sessions, "clock": clock, "publisher": None, "enqueuer": None}, agency
    )
    placed = (await client.get(f"/api/v1/callbacks/{waiting['id']}", headers=ADMIN)).json()
    assert (placed["status"], placed["expected_at"]) == ("scheduled", "2026-03-02T13:00:00Z")


async def test_callback_by_sms_says_when(client, world, sessions):
    reply = await Phone(client, CALLER).text("rappel svp")
    assert reply == "Agence Lyon: un conseiller vous appellera le lundi 2 mars à 9h00 environ."
    async with sessions() as session:
        request = (await session.scalars(select(CallbackRequest))).one()
    assert (request.channel, request.status, request.phone) == ("sms", "scheduled", CALLER)


# --- the voice line -----------------------------------------------------------------------------


class Call:
    def __init__(self, client: Any, sid: str | None = None) -> None:
        self.client, self.sid = client, sid or "CA" + uuid.uuid4().hex
        self.next = f"{BASE}/webhooks/twilio/voice"

    async def post(self, url: str, digits: str | None = None) -> ElementTree.Element:
        params = {"CallSid": self.sid, "From": CALLER, "To": AGENCY_NUMBER, "CallStatus": "in-progress"}
        if digits is not None:
            params["Digits"] = digits
        signature = RequestValidator(LOCAL_AUTH_TOKEN).compute_signature(url, params)
        r = await self.client.post(
            url.removeprefix(BASE), data=params, headers={"X-Twilio-Signature": signature}
        )
        assert r.status_code == 200, r.text
        root = ElementTree.fromstring(r.text)
        gather = root.find("Gather")
        if gather is not None:
            self.next = gather.get("action") or ""
        return root

    async def press(self, digits: str | None) -> ElementTree.Element:
        return await self.post(self.next, digits)


def said(root: ElementTree.Element) -> str:
    return " ".join(e.text or "" for e in root.iter("Say"))


async def test_press_1_for_a_callback_in_the_afternoon(client, world, sessions):
    call = Call(client)
    menu = await call.post(call.next)
    assert "Pour être rappelé par un conseiller, tapez 1" in said(menu)
    gather = menu.find("Gather")
    assert gather is not None and gather.get("language") == "fr-FR" and gather.get("numDigits") == "1"
    assert "Le matin, tapez 1" in said(await call.press("1"))
    done = await call.press("3")  # any time
    assert "Un conseiller vous rappellera le lundi 2 mars à 9h00 environ" in said(done)
    assert done.find("Hangup") is not None
    async with sessions() as session:
        request = (await session.scalars(select(CallbackRequest))).one()
    assert (request.channel, request.phone, request.status) == ("voice", CALLER, "scheduled")


async def test_hear_and_cancel_the_next_appointment_in_english(client, world, sessions):
    r = await client.post(
        "/api/v1/appointments",
        json={
            "agency_id": world["agency"]["id"],
            "service_id": world["service"]["id"],
            "starts_at": "2026-03-03T10:00:00+01:00",
            "mode": "phone",
            "job_seeker": {"name": "Z", "phone": CALLER},
        },
    )
    assert r.status_code == 201, r.text
    call = Call(client)
    await call.post(call.next)
    english = await call.press("9")
    assert "To be called back by an adviser, press 1" in said(english)
    assert english.find("Gather").get("language") == "en-GB"  # type: ignore[union-attr]
    assert "Your next appointment is on Tuesday 3 March at 10:00, by phone" in said(await call.press("2"))
    assert "To cancel your appointment of Tuesday 3 March at 10:00, press 1" in said(await call.press("3"))
    assert "is cancelled" in said(await call.press("1"))
    status = (await client.get(f"/api/v1/appointments/{r.json()['id']}", headers=ADMIN)).json()["status"]
    assert status == "cancelled"


async def test_silence_or_nonsense_repeats_once_then_ends_politely(client, world):
    call = Call(client)
    await call.post(call.next)
    again = await call.press(None)  # silence: Twilio follows our redirect without Digits
    assert "tapez 1" in said(again)
    bye = await call.press("7")
    assert "Nous n'avons pas compris" in said(bye) and bye.find("Hangup") is not None


async def test_voice_webhooks_are_signed_and_a_retry_gets_the_same_answer(client, world, sessions):
    params = {"CallSid": "CA" + "1" * 32, "From": CALLER, "To": AGENCY_NUMBER}
    forged = await client.post("/webhooks/twilio/voice", data=params, headers={"X-Twilio-Signature": "Zm9v"})
    assert_problem(forged, 403)
    call = Call(client, "CA" + "2" * 32)
    await call.post(call.next)
    step = call.next
    first = await call.post(step, "1")
    repeat = await call.post(step, "1")  # Twilio retrying the same step
    assert ElementTree.tostring(first) == ElementTree.tostring(repeat)
    async with sessions() as session:
        events = await session.scalar(text("SELECT count(*) FROM inbound_events WHERE kind = 'voice'"))
    assert events == 2  # the answer and one key press


async def test_planned_callbacks_move_for_an_absence_and_up_into_freed_time(client, world, sessions, clock):
    agency = world["agency"]["id"]
    counsellor = world["counsellor"]["id"]
    ctx = {"sessions": sessions, "clock": clock, "publisher": None, "enqueuer": None}
    # Monday 9:00-11:00 booked: the callback goes to 11:00
    booked = await client.post(
        "/api/v1/appointments",
        json={
            "agency_id": agency,
            "service_id": world["service"]["id"],
            "starts_at": "2026-03-02T09:00:00+01:00",
            "mode": "phone",
            "job_seeker": {"name": "A"},
        },
    )
    assert booked.status_code == 201, booked.text
    for hour in ("09:30", "10:00", "10:30"):
        r = await client.post(
            "/api/v1/appointments",
            json={
                "agency_id": agency,
                "service_id": world["service"]["id"],
                "starts_at": f"2026-03-02T{hour}:00+01:00",
                "mode": "phone",
                "job_seeker": {"name": "B"},
            },
        )
        assert r.status_code == 201, r.text
    asked = (await _ask(client, world)).json()
    assert asked["expected_at"] == "2026-03-02T10:00:00Z"  # 11:00 Paris
    # the counsellor is away 10:45-12:00: the call moves (to Tuesday morning) and the person is told
    r = await client.post(
        f"/api/v1/counsellors/{counsellor}/absences",
        json={"starts_at": "2026-03-02T10:45:00+01:00", "ends_at": "2026-03-02T12:00:00+01:00"},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    await tasks.plan_callbacks(ctx, agency)
    moved = (await client.get(f"/api/v1/callbacks/{asked['id']}", headers=ADMIN)).json()
    assert moved["status"] == "scheduled" and moved["expected_at"] == "2026-03-03T08:00:00Z"
    assert moved["placement_reason"].endswith(":moved")
    # the 9:00 appointment is cancelled: the call comes up to Monday 9:00
    cancelled = await client.post(f"/api/v1/appointments/{booked.json()['id']}/cancel", headers=ADMIN)
    assert cancelled.status_code == 200, cancelled.text
    await tasks.plan_callbacks(ctx, agency)
    earlier = (await client.get(f"/api/v1/callbacks/{asked['id']}", headers=ADMIN)).json()
    assert (earlier["expected_at"], earlier["placement_reason"]) == ("2026-03-02T08:00:00Z", "moved_earlier")
    async with sessions() as session:
        texts = (
            await session.scalars(
                select(Notification.body)
                .where(Notification.kind == "callback.callback_moved")
                .order_by(Notification.created_at)
            )
        ).all()
        claims = await session.scalar(select(func.count()).select_from(Claim).where(Claim.kind == "callback"))
    assert len(texts) == 2 and "mardi 3 mars à 9h00" in texts[0] and "lundi 2 mars à 9h00" in texts[1]
    assert claims == 1  # each move replaced the claim


async def test_click_to_call_rings_the_counsellor_then_bridges_to_the_person(
    client, world, sessions, clock, local_twilio, settings
):
    from types import SimpleNamespace

    from orchestrator.channels.twilio import TwilioSms
    from orchestrator.deps import Messaging

    fake, api_url = local_twilio
    asked = (await _ask(client, world)).json()
    dial = f"/api/v1/callbacks/{asked['id']}/dial"
    assert_problem(await client.post(dial, headers=ADMIN), 409)  # no phone to ring the counsellor on
    r = await client.patch(
        f"/api/v1/counsellors/{world['counsellor']['id']}", json={"phone": "+33611000111"}, headers=ADMIN
    )
    assert r.status_code == 200 and r.json()["phone"] == "+33611000111"
    assert_problem(await client.post(dial), 401)
    r = await client.post(dial, headers=_as_counsellor(world))
    assert r.status_code == 202, r.text
    assert (r.json()["status"], r.json()["call_status"]) == ("in_progress", "dialling")
    sender = TwilioSms(replace_url(settings, api_url))
    ctx = {"sessions": sessions, "dialer": sender, "outbox": SimpleNamespace(messaging=Messaging())}
    try:
        sid = await tasks.dial_callback(ctx, asked["id"])
        assert await tasks.dial_callback(ctx, asked["id"]) is None  # placed once
    finally:
        await sender.close()
    (call,) = fake.calls
    assert (call["sid"], call["to"], call["from"]) == (sid, "+33611000111", AGENCY_NUMBER)
    assert f'<Dial callerId="{AGENCY_NUMBER}"><Number>{CALLER}</Number></Dial>' in call["twiml"]
    status_url = f"{BASE}/webhooks/twilio/call-status?c={asked['id']}"
    params = {"CallSid": sid, "CallStatus": "in-progress"}
    signature = RequestValidator(LOCAL_AUTH_TOKEN).compute_signature(status_url, params)
    r = await client.post(
        status_url.removeprefix(BASE), data=params, headers={"X-Twilio-Signature": signature}
    )
    assert r.status_code == 204, r.text
    assert (await client.get(f"/api/v1/callbacks/{asked['id']}", headers=ADMIN)).json()[
        "call_status"
    ] == "in-progress"
    forged = await client.post(
        status_url.removeprefix(BASE), data=params, headers={"X-Twilio-Signature": "eA=="}
    )
    assert_problem(forged, 403)


def replace_url(settings: Any, api_url: str) -> Any:
    import dataclasses

    return dataclasses.replace(settings, twilio_api_url=api_url)
