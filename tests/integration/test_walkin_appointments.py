"""Appointments in the walk-in flow: check-in, call next hands out checked-in appointments to
their counsellor alongside walk-ins, completion and no-shows give unused time back."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from orchestrator import live
from orchestrator.models import Appointment, Claim, JobSeeker
from orchestrator.services.appointments import new_manage_token
from tests.helpers import assert_problem, make_agency
from tests.integration.test_walkin_queue import as_counsellor, call_next, front, issue, kiosk, open_agency


async def book(
    sessions: Any,
    setup: dict[str, Any],
    counsellor: dict[str, Any],
    starts_at: datetime,
    minutes: int = 30,
    status: str = "confirmed",
) -> tuple[str, str]:
    """An appointment with its claim on the counsellor's time, as booking creates it; (id, manage token)."""
    token, token_hash = new_manage_token()
    agency_id = uuid.UUID(setup["id"])
    async with sessions() as session:
        seeker = JobSeeker(agency_id=agency_id, name="Awa Traoré", phone="+33612345678")
        claim = Claim(
            agency_id=agency_id,
            counsellor_id=uuid.UUID(counsellor["id"]),
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=minutes),
            kind="appointment",
        )
        session.add_all([seeker, claim])
        await session.flush()
        appointment = Appointment(
            agency_id=agency_id,
            service_id=uuid.UUID(setup["service"]["id"]),
            counsellor_id=claim.counsellor_id,
            job_seeker_id=seeker.id,
            claim_id=claim.id,
            starts_at=claim.starts_at,
            ends_at=claim.ends_at,
            mode="in_person",
            status=status,
            channel="web",
            created_by="test",
            manage_token_hash=token_hash,
        )
        session.add(appointment)
        await session.commit()
        return str(appointment.id), token


async def claim_of(sessions: Any, appointment_id: str) -> tuple[datetime, datetime] | None:
    async with sessions() as session:
        row = (
            await session.execute(
                select(Claim.starts_at, Claim.ends_at)
                .join(Appointment, Appointment.claim_id == Claim.id)
                .where(Appointment.id == uuid.UUID(appointment_id))
            )
        ).first()
        return None if row is None else (row[0], row[1])


def check_in_url(appointment_id: str) -> str:
    return f"/api/v1/appointments/{appointment_id}/check-in"


async def test_check_in_with_the_manage_token_or_at_the_front_desk(client, clock, sessions):
    setup = await open_agency(client, desks=1)
    counsellor = setup["counsellors"][0]
    mine, token = await book(sessions, setup, counsellor, clock.now + timedelta(minutes=30))
    theirs, _ = await book(sessions, setup, counsellor, clock.now + timedelta(hours=2))
    assert_problem(await client.post(check_in_url(mine)), 401)
    assert_problem(await client.post(check_in_url(mine), headers={"X-Manage-Token": "wrong"}), 404)
    assert_problem(await client.post(check_in_url(str(uuid.uuid4())), headers={"X-Manage-Token": token}), 404)
    r = await client.post(check_in_url(mine), headers={"X-Manage-Token": token})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "checked_in" and body["checked_in_at"].startswith("2026-03-02T07:00")
    assert body["label"] == "RDV 08h30"  # local time of the agency, no personal data
    assert (
        assert_problem(await client.post(check_in_url(mine), headers={"X-Manage-Token": token}), 409)["code"]
        == "bad_transition"
    )
    elsewhere = await make_agency(client, name="Autre agence")
    assert_problem(await client.post(check_in_url(theirs), headers=front(elsewhere["id"])), 404)
    assert_problem(
        await client.post(check_in_url(theirs), headers=kiosk(setup["id"])), 404
    )  # a kiosk needs the token
    r = await client.post(check_in_url(theirs), headers=front(setup["id"]))
    assert r.status_code == 200 and r.json()["status"] == "checked_in"


async def test_a_kiosk_checks_in_with_the_manage_token(client, clock, sessions):
    setup = await open_agency(client, desks=1)
    appointment, token = await book(
        sessions, setup, setup["counsellors"][0], clock.now + timedelta(minutes=30)
    )
    r = await client.post(check_in_url(appointment), headers={**kiosk(setup["id"]), "X-Manage-Token": token})
    assert r.status_code == 200 and r.json()["status"] == "checked_in"


async def test_check_in_only_on_the_day_and_before_the_end(client, clock, sessions):
    setup = await open_agency(client, desks=1)
    counsellor = setup["counsellors"][0]
    tomorrow, token = await book(sessions, setup, counsellor, clock.now + timedelta(days=1))
    r = await client.post(check_in_url(tomorrow), headers={"X-Manage-Token": token})
    assert assert_problem(r, 409)["code"] == "not_today"
    over, token = await book(sessions, setup, counsellor, clock.now - timedelta(minutes=45))
    r = await client.post(check_in_url(over), headers={"X-Manage-Token": token})
    assert assert_problem(r, 409)["code"] == "too_late"
    late, token = await book(sessions, setup, counsellor, clock.now - timedelta(minutes=10))
    r = await client.post(check_in_url(late), headers={"X-Manage-Token": token})
    assert r.status_code == 200  # ten minutes late is still a check-in


async def test_call_next_mixes_checked_in_appointments_and_walk_ins(client, clock, sessions):
    setup = await open_agency(client, desks=2)
    agency_id = setup["id"]
    one, two = setup["counsellors"]
    start = clock.now + timedelta(minutes=30)  # 08:30 in Paris
    appointment, token = await book(sessions, setup, one, start)
    a1 = await issue(client, agency_id, setup["service"]["id"])
    a2 = await issue(client, agency_id, setup["service"]["id"])
    await client.post(check_in_url(appointment), headers={"X-Manage-Token": token})
    # 30 free minutes before the appointment do not fit a 30-minute walk-in (plus slack)
    assert (await call_next(client, one)).status_code == 204
    assert (await call_next(client, two)).json()["id"] == a1["id"]
    clock.now = start - timedelta(minutes=4)  # within the 5 minutes an appointment may start early
    r = await call_next(client, one)
    assert r.status_code == 200, r.text
    work = r.json()
    assert (work["kind"], work["id"], work["reason"], work["label"]) == (
        "appointment",
        appointment,
        "appointment_due",
        "RDV 08h30",
    )
    assert work["number"] is None and work["desk"] == "1"
    queue = (await client.get(f"/api/v1/agencies/{agency_id}/queue", headers=front(agency_id))).json()
    desks = {c["id"]: c["current"] for c in queue["counsellors"]}
    assert desks[one["id"]]["kind"] == "appointment" and desks[two["id"]]["number"] == "A001"
    assert [a["status"] for a in queue["appointments"]] == ["in_progress"]
    assert [t["id"] for t in queue["waiting"]] == [a2["id"]]
    # finishing early gives the rest of the booked time back to the walk-ins
    clock.now = start + timedelta(minutes=10)
    r = await client.post(f"/api/v1/appointments/{appointment}/complete", headers=as_counsellor(one))
    assert r.status_code == 200 and r.json()["status"] == "completed"
    assert await claim_of(sessions, appointment) == (start, start + timedelta(minutes=10))
    assert (await call_next(client, one)).json()["id"] == a2["id"]


async def test_an_appointment_not_checked_in_blocks_its_time_but_is_not_handed_out(client, clock, sessions):
    setup = await open_agency(client, desks=1)
    counsellor = setup["counsellors"][0]
    start = clock.now + timedelta(minutes=10)
    await book(sessions, setup, counsellor, start)
    await issue(client, setup["id"], setup["service"]["id"])
    clock.now = start - timedelta(minutes=2)
    assert (await call_next(client, counsellor)).status_code == 204


async def test_appointment_no_show_frees_the_rest_of_its_time(client, clock, sessions):
    setup = await open_agency(client, desks=1)
    counsellor = setup["counsellors"][0]
    start = clock.now + timedelta(minutes=20)
    appointment, _ = await book(sessions, setup, counsellor, start, minutes=60)
    ticket = await issue(client, setup["id"], setup["service"]["id"])
    url = f"/api/v1/appointments/{appointment}/no-show"
    assert (
        assert_problem(await client.post(url, headers=as_counsellor(counsellor)), 409)["code"]
        == "not_started"
    )
    assert (await call_next(client, counsellor)).status_code == 204  # 20 minutes: too short for 30
    clock.now = start + timedelta(minutes=5)
    r = await client.post(url, headers=as_counsellor(counsellor))
    assert r.status_code == 200 and r.json()["status"] == "no_show"
    assert await claim_of(sessions, appointment) == (start, start + timedelta(minutes=5))
    assert (await call_next(client, counsellor)).json()["id"] == ticket["id"]
    assert (
        assert_problem(await client.post(url, headers=as_counsellor(counsellor)), 409)["code"]
        == "bad_transition"
    )


async def test_appointment_actions_access_and_transitions(client, clock, sessions):
    setup = await open_agency(client, desks=2)
    one, two = setup["counsellors"]
    appointment, token = await book(sessions, setup, one, clock.now + timedelta(minutes=3))
    complete = f"/api/v1/appointments/{appointment}/complete"
    assert (
        assert_problem(await client.post(complete, headers=front(setup["id"])), 409)["code"]
        == "bad_transition"
    )
    assert assert_problem(await client.post(complete, headers=as_counsellor(two)), 403)["code"] == "not_yours"
    assert_problem(await client.post(complete, headers={"X-Manage-Token": token}), 401)  # staff only
    assert_problem(await client.post(complete, headers=kiosk(setup["id"])), 404)
    elsewhere = await make_agency(client, name="Autre agence")
    assert_problem(await client.post(complete, headers=front(elsewhere["id"])), 404)
    # another counsellor never gets someone else's appointment
    await client.post(check_in_url(appointment), headers={"X-Manage-Token": token})
    assert (await call_next(client, two)).status_code == 204
    assert (await call_next(client, one)).json()["id"] == appointment


async def test_cancelling_a_checked_in_appointment_tells_the_board(client, clock, sessions, redis):
    setup = await open_agency(client, desks=1)
    appointment, token = await book(
        sessions, setup, setup["counsellors"][0], clock.now + timedelta(minutes=30)
    )
    headers = {"X-Manage-Token": token}
    assert (await client.post(check_in_url(appointment), headers=headers)).status_code == 200
    r = await client.post(f"/api/v1/appointments/{appointment}/cancel", headers=front(setup["id"]))
    assert r.status_code == 200, r.text
    events = [
        payload for _, payload in await live.read_after(redis, uuid.UUID(setup["id"]), "0-0", block_ms=1)
    ]
    assert [e["type"] for e in events if e.get("id") == appointment] == ["checked_in", "cancelled"]
    assert events[-1]["waiting_count"] == 0  # the counters follow in the queue refresh's event
