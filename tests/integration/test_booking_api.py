"""The booking API end to end over ASGI: idempotency, holds, reschedule, cancel, audit, outbox,
availability policy (language, mode, limit, staff-only), DST and rate limiting.

The clock is the ``clock`` fixture: Monday 2026-03-02 07:00 UTC (08:00 in Paris). Services have
a 60-min notice and 30-min duration unless a test says otherwise.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import httpx
from sqlalchemy import text

from tests.helpers import ADMIN, assert_problem, bearer, make_agency, make_counsellor, make_rule, make_service

SMS_SEEKER = {"name": "Nadia", "phone": "06 12 34 56 78", "language": "fr", "preferred_channel": "sms"}
QUIET_SEEKER = {"name": "Ali", "phone": "06 98 76 54 32"}  # a phone, but no consent to be texted
MON_0302 = {"from": "2026-03-02T00:00:00+01:00", "to": "2026-03-03T00:00:00+01:00"}
MON_0309 = {"from": "2026-03-09T00:00:00+01:00", "to": "2026-03-10T00:00:00+01:00"}


async def _world(
    client: Any, counsellors: int = 1, tz: str = "Europe/Paris", **service: Any
) -> dict[str, Any]:
    agency = await make_agency(client, timezone=tz)
    staff = [
        await make_counsellor(client, agency["id"], name=f"Conseiller {n}", email=f"c{n}@example.org")
        for n in range(counsellors)
    ]
    for c in staff:
        await make_rule(client, c["id"], weekday=0, start="09:00", end="12:00")
    svc = await make_service(client, agency["id"], **service)
    return {"agency": agency, "counsellors": staff, "service": svc}


def _body(
    w: dict[str, Any],
    starts_at: str,
    *,
    mode: str = "in_person",
    seeker: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "agency_id": w["agency"]["id"],
        "service_id": w["service"]["id"],
        "starts_at": starts_at,
        "mode": mode,
        "job_seeker": seeker or SMS_SEEKER,
        **extra,
    }


def _hold_body(w: dict[str, Any], starts_at: str, *, mode: str = "in_person", **extra: Any) -> dict[str, Any]:
    return {
        "agency_id": w["agency"]["id"],
        "service_id": w["service"]["id"],
        "starts_at": starts_at,
        "mode": mode,
        **extra,
    }


async def _book(client: Any, w: dict[str, Any], starts_at: str, **kw: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/appointments", json=_body(w, starts_at, **kw))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _slots(
    client: Any,
    w: dict[str, Any],
    day: dict[str, str] = MON_0302,
    headers: dict[str, str] | None = None,
    **params: Any,
) -> list[dict[str, Any]]:
    r = await client.get(
        "/api/v1/availability",
        headers=headers or {},
        params={"agency_id": w["agency"]["id"], "service_id": w["service"]["id"], **day, **params},
    )
    assert r.status_code == 200, r.text
    return list(r.json()["slots"])


async def _starts(client: Any, w: dict[str, Any], day: dict[str, str] = MON_0302) -> list[str]:
    return [s["starts_at"] for s in await _slots(client, w, day)]


async def _scalar(sessions: Any, sql: str, **params: Any) -> Any:
    async with sessions() as session:
        return (await session.execute(text(sql), params)).scalar_one()


async def _rows(sessions: Any, sql: str, **params: Any) -> list[Any]:
    async with sessions() as session:
        return list((await session.execute(text(sql), params)).all())


def _manage(appointment: dict[str, Any]) -> dict[str, str]:
    return {"X-Manage-Token": appointment["manage_token"]}


async def _count_appointments(sessions: Any, w: dict[str, Any]) -> int:
    return int(
        await _scalar(sessions, "SELECT count(*) FROM appointments WHERE agency_id = :a", a=w["agency"]["id"])
    )


async def _count_claims(sessions: Any, w: dict[str, Any]) -> int:
    return int(
        await _scalar(sessions, "SELECT count(*) FROM claims WHERE agency_id = :a", a=w["agency"]["id"])
    )


# --- idempotency ------------------------------------------------------------------------------


async def test_same_idempotency_key_and_body_replays_the_first_booking(client, sessions):
    w = await _world(client)
    key = {"Idempotency-Key": "book-" + uuid.uuid4().hex}
    body = _body(w, "2026-03-02T10:00:00+01:00")
    first = await client.post("/api/v1/appointments", json=body, headers=key)
    assert first.status_code == 201, first.text
    again = await client.post("/api/v1/appointments", json=body, headers=key)
    assert again.status_code == 201, again.text
    assert again.json() == first.json()  # same id and the same manage_token
    assert again.json()["manage_token"] and again.headers.get("idempotent-replayed") == "true"
    assert await _count_appointments(sessions, w) == 1
    assert await _count_claims(sessions, w) == 1
    other = await client.post("/api/v1/appointments", json=_body(w, "2026-03-02T10:30:00+01:00"), headers=key)
    assert_problem(other, 422, field="Idempotency-Key")
    assert await _count_appointments(sessions, w) == 1
    # the replayed manage token really manages the appointment
    r = await client.get(f"/api/v1/appointments/{first.json()['id']}", headers=_manage(again.json()))
    assert r.status_code == 200, r.text


async def test_idempotency_key_on_holds(client, sessions):
    w = await _world(client)
    key = {"Idempotency-Key": "hold-" + uuid.uuid4().hex}
    body = _hold_body(w, "2026-03-02T10:00:00+01:00")
    first = await client.post("/api/v1/holds", json=body, headers=key)
    assert first.status_code == 201, first.text
    again = await client.post("/api/v1/holds", json=body, headers=key)
    assert again.status_code == 201 and again.json() == first.json()
    assert (
        await _scalar(sessions, "SELECT count(*) FROM holds WHERE agency_id = :a", a=w["agency"]["id"]) == 1
    )
    assert await _count_claims(sessions, w) == 1
    other = await client.post("/api/v1/holds", json=_hold_body(w, "2026-03-02T11:00:00+01:00"), headers=key)
    assert_problem(other, 422, field="Idempotency-Key")
    # without a key, a second hold on the same (only) counsellor's time is a conflict
    r = await client.post("/api/v1/holds", json=body)
    assert_problem(r, 409)


async def test_idempotency_keys_are_per_caller(client, sessions):
    w = await _world(client, counsellors=2)
    key = {"Idempotency-Key": "shared-" + uuid.uuid4().hex}
    body = _body(w, "2026-03-02T10:00:00+01:00")
    public = await client.post("/api/v1/appointments", json=body, headers=key)
    staff = await client.post("/api/v1/appointments", json=body, headers={**key, **ADMIN})
    assert public.status_code == staff.status_code == 201, (public.text, staff.text)
    assert public.json()["id"] != staff.json()["id"]
    assert await _count_appointments(sessions, w) == 2


# --- holds ------------------------------------------------------------------------------------


async def test_a_live_hold_blocks_others_and_an_expired_one_frees_the_time(client, clock, sessions):
    w = await _world(client)
    start = "2026-03-09T09:30:00+01:00"
    r = await client.post("/api/v1/holds", json=_hold_body(w, start))
    assert r.status_code == 201, r.text
    hold = r.json()
    assert "2026-03-09T08:30:00Z" not in await _starts(client, w, MON_0309)
    taken = await client.post("/api/v1/appointments", json=_body(w, start, seeker=QUIET_SEEKER))
    assert_problem(taken, 409)

    clock.advance(minutes=11)  # the 10-minute hold has lapsed; no job needs to run
    assert "2026-03-09T08:30:00Z" in await _starts(client, w, MON_0309)
    other = await _book(client, w, start, seeker=QUIET_SEEKER)
    assert other["counsellor_id"] == hold["counsellor_id"]

    late = await client.post("/api/v1/appointments", json=_body(w, start, hold_id=hold["id"]))
    assert_problem(late, 409)
    assert await _count_appointments(sessions, w) == 1


async def test_an_expired_hold_rebooks_if_still_free_and_a_used_hold_is_409(client, clock, sessions):
    w = await _world(client)
    start = "2026-03-09T10:00:00+01:00"
    hold = (await client.post("/api/v1/holds", json=_hold_body(w, start))).json()
    clock.advance(minutes=30)
    appt = await _book(client, w, start, hold_id=hold["id"])
    assert appt["starts_at"] == "2026-03-09T09:00:00Z"
    reused = await client.post("/api/v1/appointments", json=_body(w, start, hold_id=hold["id"]))
    body = assert_problem(reused, 409)
    assert body["code"] == "hold_used"
    assert await _count_appointments(sessions, w) == 1


async def test_booking_a_live_hold_keeps_its_counsellor_and_cannot_be_reused(client, sessions):
    w = await _world(client, counsellors=2)
    start = "2026-03-09T09:30:00+01:00"
    default = next(s for s in await _slots(client, w, MON_0309) if s["starts_at"] == "2026-03-09T08:30:00Z")
    other = next(c["id"] for c in w["counsellors"] if c["id"] != default["counsellor_id"])
    r = await client.post("/api/v1/holds", json=_hold_body(w, start, counsellor_id=other))
    assert r.status_code == 201, r.text
    hold = r.json()
    assert hold["counsellor_id"] == other
    appt = await _book(client, w, start, hold_id=hold["id"])  # no counsellor named in the booking
    assert appt["counsellor_id"] == other and appt["assignment_reason"] == "held"
    claims = await _rows(
        sessions, "SELECT kind, expires_at FROM claims WHERE agency_id = :a", a=w["agency"]["id"]
    )
    assert claims == [("appointment", None)]  # the hold's claim became the appointment's
    again = await client.post(
        "/api/v1/appointments", json=_body(w, start, hold_id=hold["id"], seeker=QUIET_SEEKER)
    )
    assert assert_problem(again, 409)["code"] == "hold_used"
    assert await _count_appointments(sessions, w) == 1


# --- reschedule -------------------------------------------------------------------------------


async def test_reschedule_onto_a_taken_time_is_409_and_changes_nothing(client, sessions):
    w = await _world(client)
    mine = await _book(client, w, "2026-03-09T10:00:00+01:00")
    await _book(client, w, "2026-03-09T11:00:00+01:00", seeker=QUIET_SEEKER)
    before = (await client.get(f"/api/v1/appointments/{mine['id']}", headers=_manage(mine))).json()
    claims_before = await _rows(
        sessions,
        "SELECT id, starts_at, ends_at FROM claims WHERE agency_id = :a ORDER BY starts_at",
        a=w["agency"]["id"],
    )
    r = await client.post(
        f"/api/v1/appointments/{mine['id']}/reschedule",
        headers=_manage(mine),
        json={"starts_at": "2026-03-09T11:00:00+01:00"},
    )
    body = assert_problem(r, 409)
    assert body["alternatives"], body
    assert all(a["starts_at"] != "2026-03-09T10:00:00+00:00" for a in body["alternatives"])
    after = (await client.get(f"/api/v1/appointments/{mine['id']}", headers=_manage(mine))).json()
    assert after == before
    assert (
        await _rows(
            sessions,
            "SELECT id, starts_at, ends_at FROM claims WHERE agency_id = :a ORDER BY starts_at",
            a=w["agency"]["id"],
        )
        == claims_before
    )
    assert "2026-03-09T09:00:00Z" not in await _starts(client, w, MON_0309)  # old time still claimed
    assert (
        await _scalar(
            sessions,
            "SELECT count(*) FROM audit_events WHERE entity_id = :e AND action = 'appointment.rescheduled'",
            e=mine["id"],
        )
        == 0
    )


async def test_reschedule_overlapping_its_own_old_time_works(client, sessions):
    w = await _world(client)
    mine = await _book(client, w, "2026-03-09T10:00:00+01:00")
    r = await client.post(
        f"/api/v1/appointments/{mine['id']}/reschedule",
        headers=_manage(mine),
        json={"starts_at": "2026-03-09T10:15:00+01:00"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["starts_at"] == "2026-03-09T09:15:00Z" and r.json()["ends_at"] == "2026-03-09T09:45:00Z"
    starts = await _starts(client, w, MON_0309)
    assert "2026-03-09T09:15:00Z" not in starts and "2026-03-09T08:45:00Z" in starts
    assert await _count_claims(sessions, w) == 1


# --- cancel -----------------------------------------------------------------------------------


async def test_cancel_frees_the_slot_and_twice_is_harmless(client, sessions):
    w = await _world(client)
    appt = await _book(client, w, "2026-03-09T10:00:00+01:00")
    assert "2026-03-09T09:00:00Z" not in await _starts(client, w, MON_0309)
    first = await client.post(
        f"/api/v1/appointments/{appt['id']}/cancel", headers=_manage(appt), json={"reason": "found a job"}
    )
    assert first.status_code == 200 and first.json()["status"] == "cancelled", first.text
    second = await client.post(f"/api/v1/appointments/{appt['id']}/cancel", headers=_manage(appt))
    assert second.status_code == 200 and second.json() == first.json()
    assert "2026-03-09T09:00:00Z" in await _starts(client, w, MON_0309)
    assert await _count_claims(sessions, w) == 0
    cancelled = await _scalar(
        sessions,
        "SELECT count(*) FROM audit_events WHERE entity_id = :e AND action = 'appointment.cancelled'",
        e=appt["id"],
    )
    assert cancelled == 1
    # someone else can now book the freed time
    await _book(client, w, "2026-03-09T10:00:00+01:00", seeker=QUIET_SEEKER)


async def test_job_seeker_cannot_cancel_or_move_after_the_cutoff_but_staff_can(client, clock, settings):
    w = await _world(client)
    appt = await _book(client, w, "2026-03-02T10:30:00+01:00")  # 09:30Z; cut-off 120 min → 07:30Z
    clock.advance(minutes=45)  # 07:45Z
    assert settings.cancel_cutoff_minutes == 120
    r = await client.post(f"/api/v1/appointments/{appt['id']}/cancel", headers=_manage(appt))
    assert assert_problem(r, 409)["code"] == "cutoff_passed"
    r = await client.post(
        f"/api/v1/appointments/{appt['id']}/reschedule",
        headers=_manage(appt),
        json={"starts_at": "2026-03-02T11:00:00+01:00"},
    )
    assert assert_problem(r, 409)["code"] == "cutoff_passed"
    r = await client.get(f"/api/v1/appointments/{appt['id']}", headers=_manage(appt))
    assert r.json()["status"] == "confirmed" and r.json()["starts_at"] == "2026-03-02T09:30:00Z"
    manager = bearer("manager", w["agency"]["id"])
    r = await client.post(
        f"/api/v1/appointments/{appt['id']}/reschedule",
        headers=manager,
        json={"starts_at": "2026-03-02T11:00:00+01:00"},
    )
    assert r.status_code == 200 and r.json()["starts_at"] == "2026-03-02T10:00:00Z", r.text
    r = await client.post(
        f"/api/v1/appointments/{appt['id']}/cancel", headers=bearer("front_desk", w["agency"]["id"])
    )
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text


async def test_job_seeker_can_cancel_just_before_the_cutoff(client, clock):
    w = await _world(client)
    appt = await _book(client, w, "2026-03-02T10:30:00+01:00")
    clock.advance(minutes=30)  # exactly at the cut-off (07:30Z): still allowed
    r = await client.post(f"/api/v1/appointments/{appt['id']}/cancel", headers=_manage(appt))
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text


# --- audit and outbox -------------------------------------------------------------------------


async def test_audit_rows_for_book_reschedule_cancel_without_personal_data(client, sessions):
    w = await _world(client)
    appt = await _book(client, w, "2026-03-09T10:00:00+01:00")
    r = await client.post(
        f"/api/v1/appointments/{appt['id']}/reschedule",
        headers=_manage(appt),
        json={"starts_at": "2026-03-09T11:00:00+01:00"},
    )
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/v1/appointments/{appt['id']}/cancel", headers=ADMIN)
    assert r.status_code == 200, r.text
    rows = await _rows(
        sessions,
        "SELECT action, actor, data::text FROM audit_events WHERE entity_id = :e ORDER BY action",
        e=appt["id"],
    )
    assert sorted(row[0] for row in rows) == [
        "appointment.booked",
        "appointment.cancelled",
        "appointment.rescheduled",
    ]
    actors = {row[0]: row[1] for row in rows}
    assert actors == {
        "appointment.booked": "public",
        "appointment.rescheduled": "job_seeker:manage_token",
        "appointment.cancelled": "admin:test-admin",
    }
    for _, actor, data in rows:
        for personal in ("Nadia", "612345678", appt["manage_token"]):
            assert personal not in actor and personal not in data


async def test_outbox_rows_follow_the_seekers_channel_and_consent(client, sessions):
    w = await _world(client, counsellors=2)
    texted = await _book(client, w, "2026-03-09T10:00:00+01:00", seeker=SMS_SEEKER)
    quiet = await _book(client, w, "2026-03-09T10:00:00+01:00", seeker=QUIET_SEEKER)
    rows = await _rows(
        sessions,
        "SELECT kind, channel, recipient, status FROM notifications WHERE appointment_id = :a ORDER BY kind",
        a=texted["id"],
    )
    # the confirmation, and reminders 48 h and 2 h before on the preferred channel
    assert rows == [
        ("appointment.confirmed", "sms", "+33612345678", "pending"),
        ("appointment.reminder", "sms", "+33612345678", "pending"),
        ("appointment.reminder", "sms", "+33612345678", "pending"),
    ]
    assert (
        await _scalar(sessions, "SELECT count(*) FROM notifications WHERE appointment_id = :a", a=quiet["id"])
        == 0
    )
    await client.post(f"/api/v1/appointments/{texted['id']}/cancel", headers=_manage(texted))
    kinds = await _rows(
        sessions,
        "SELECT kind, status FROM notifications WHERE appointment_id = :a ORDER BY kind, status",
        a=texted["id"],
    )
    assert kinds == [  # cancelling withdraws the reminders
        ("appointment.cancelled", "pending"),
        ("appointment.confirmed", "pending"),
        ("appointment.reminder", "cancelled"),
        ("appointment.reminder", "cancelled"),
    ]
    await client.post(f"/api/v1/appointments/{quiet['id']}/cancel", headers=_manage(quiet))
    assert (
        await _scalar(sessions, "SELECT count(*) FROM notifications WHERE appointment_id = :a", a=quiet["id"])
        == 0
    )


# --- availability policy ----------------------------------------------------------------------


async def test_language_ranks_the_speaker_first_with_reason_codes(client):
    agency = await make_agency(client)
    fr = await make_counsellor(client, agency["id"], name="Fr", email="fr@example.org", languages=["fr"])
    ar = await make_counsellor(
        client, agency["id"], name="Ar", email="ar@example.org", languages=["fr", "ar"]
    )
    for c in (fr, ar):
        await make_rule(client, c["id"], weekday=0, start="09:00", end="12:00")
    w = {"agency": agency, "service": await make_service(client, agency["id"])}
    plain = await _slots(client, w, MON_0309)
    assert plain and {s["reason"] for s in plain} == {"tie_break"}
    assert {s["counsellor_id"] for s in plain} == {min(fr["id"], ar["id"])}
    arabic = await _slots(client, w, MON_0309, language="ar")
    assert [s["starts_at"] for s in arabic] == [s["starts_at"] for s in plain]
    assert {(s["counsellor_id"], s["reason"]) for s in arabic} == {(ar["id"], "language_match")}
    # a booking makes its counsellor the more loaded one that day: the other gets the next slots
    first = plain[0]
    await _book(client, w, first["starts_at"].replace("Z", "+00:00"))
    after = await _slots(client, w, MON_0309)
    other = max(fr["id"], ar["id"])
    assert all(s["counsellor_id"] == other for s in after)
    assert {s["reason"] for s in after} <= {"least_loaded", "only_candidate"}
    assert "least_loaded" in {s["reason"] for s in after}


async def test_mode_filter_and_limit(client):
    w = await _world(client)
    default = await _slots(client, w, MON_0309)
    assert {s["mode"] for s in default} == {"in_person"}  # first mode in order
    phone = await _slots(client, w, MON_0309, mode="phone")
    assert {s["mode"] for s in phone} == {"phone"} and len(phone) == len(default)
    assert await _slots(client, w, MON_0309, mode="video") == []  # not offered by the service
    limited = await _slots(client, w, MON_0309, limit=3)
    assert limited == default[:3]


async def test_a_counsellor_without_the_mode_is_not_offered_for_it(client):
    agency = await make_agency(client)
    onsite = await make_counsellor(
        client, agency["id"], name="On site", email="o@example.org", modes=["in_person"]
    )
    await make_rule(client, onsite["id"], weekday=0, start="09:00", end="12:00")
    w = {"agency": agency, "service": await make_service(client, agency["id"])}
    assert await _slots(client, w, MON_0309, mode="phone") == []
    r = await client.post("/api/v1/appointments", json=_body(w, "2026-03-09T10:00:00+01:00", mode="phone"))
    assert_problem(r, 409, 422)


async def test_staff_only_services_are_hidden_from_the_public(client):
    w = await _world(client, bookable_by="staff")
    params = {"agency_id": w["agency"]["id"], "service_id": w["service"]["id"], **MON_0309}
    assert_problem(await client.get("/api/v1/availability", params=params), 404)
    staff = await _slots(client, w, MON_0309, headers=bearer("front_desk", w["agency"]["id"]))
    assert staff
    r = await client.post("/api/v1/appointments", json=_body(w, "2026-03-09T10:00:00+01:00"))
    assert_problem(r, 404)
    r = await client.post("/api/v1/holds", json=_hold_body(w, "2026-03-09T10:00:00+01:00"))
    assert_problem(r, 404)
    r = await client.post(
        "/api/v1/appointments",
        json=_body(w, "2026-03-09T10:00:00+01:00"),
        headers=bearer("front_desk", w["agency"]["id"]),
    )
    assert r.status_code == 201 and r.json()["channel"] == "front_desk", r.text


# --- time zones -------------------------------------------------------------------------------


async def test_paris_monday_rule_follows_daylight_saving(client):
    w = await _world(client)
    before = await _starts(
        client, w, {"from": "2026-03-23T00:00:00+01:00", "to": "2026-03-24T00:00:00+01:00"}
    )
    after = await _starts(client, w, {"from": "2026-03-30T00:00:00+02:00", "to": "2026-03-31T00:00:00+02:00"})
    assert before[0] == "2026-03-23T08:00:00Z" and before[-1] == "2026-03-23T10:30:00Z"
    assert after[0] == "2026-03-30T07:00:00Z" and after[-1] == "2026-03-30T09:30:00Z"
    assert len(before) == len(after) == 11
    appt = await _book(client, w, "2026-03-30T09:00:00+02:00")
    assert appt["starts_at"] == "2026-03-30T07:00:00Z"


async def test_overseas_agency_in_cayenne(client):
    w = await _world(client, tz="America/Cayenne")
    day = {"from": "2026-03-09T00:00:00-03:00", "to": "2026-03-10T00:00:00-03:00"}
    starts = await _starts(client, w, day)
    assert starts[0] == "2026-03-09T12:00:00Z" and starts[-1] == "2026-03-09T14:30:00Z"
    appt = await _book(client, w, "2026-03-09T09:00:00-03:00")
    assert appt["starts_at"] == "2026-03-09T12:00:00Z"
    assert_problem(await client.post("/api/v1/appointments", json=_body(w, "2026-03-09T09:00:00+01:00")), 409)


# --- rate limiting ----------------------------------------------------------------------------


async def test_public_calls_are_rate_limited_but_staff_are_not(client, settings, deps):
    from orchestrator.app import create_app

    w = await _world(client)
    app = create_app(dataclasses.replace(settings, public_rate_limit_per_minute=3), deps)
    # a client address of its own, so other tests' calls never share this one's budget
    octets = uuid.uuid4().bytes
    address = f"10.{octets[0]}.{octets[1]}.{octets[2]}"
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    params = {"agency_id": w["agency"]["id"], "service_id": w["service"]["id"], **MON_0309}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as limited:
        for _ in range(3):
            r = await limited.get("/api/v1/availability", params=params)
            assert r.status_code == 200, r.text
        body = assert_problem(await limited.get("/api/v1/availability", params=params), 429)
        assert body["status"] == 429
        assert_problem(
            await limited.post("/api/v1/appointments", json=_body(w, "2026-03-09T10:00:00+01:00")), 429
        )
        for _ in range(5):  # same address, with a staff token: never throttled
            r = await limited.get(
                "/api/v1/availability", params=params, headers=bearer("front_desk", w["agency"]["id"])
            )
            assert r.status_code == 200, r.text
