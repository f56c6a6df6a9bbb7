"""Walk-in queue over HTTP: tickets, call next, ticket actions, desk state, waits, notifications.

Real PostgreSQL (rolled back per test) and Redis; time comes from the FakeClock (Monday
2026-03-02 08:00 Paris). Helpers at the top are shared by the other test_walkin_* modules.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text, update

from orchestrator.auth import Role
from orchestrator.models import Agency, AuditEvent, Claim, Notification, WalkInTicket
from tests.helpers import ADMIN, assert_problem, bearer, make_agency, make_counsellor, make_service

# --- shared helpers -------------------------------------------------------------------------


def front(agency_id: str) -> dict[str, str]:
    return bearer(Role.FRONT_DESK, agency_id)


def kiosk(agency_id: str) -> dict[str, str]:
    return bearer(Role.KIOSK, agency_id)


def as_counsellor(counsellor: dict[str, Any]) -> dict[str, str]:
    return bearer(Role.COUNSELLOR, counsellor["agency_id"], counsellor["id"])


async def on_desk(client: Any, counsellor: dict[str, Any], label: str) -> dict[str, Any]:
    r = await client.post(
        f"/api/v1/counsellors/{counsellor['id']}/desk",
        json={"on_desk": True, "desk_label": label},
        headers=as_counsellor(counsellor),
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def open_agency(client: Any, desks: int = 2, **counsellor_fields: Any) -> dict[str, Any]:
    """An agency with a 30-minute service (prefix A) and ``desks`` counsellors on desk "1", "2", …"""
    agency = await make_agency(client)
    service = await make_service(client, agency["id"], ticket_prefix="A")
    counsellors = []
    for index in range(desks):
        counsellor = await make_counsellor(
            client,
            agency["id"],
            name=f"Conseiller {index + 1}",
            email=f"c{index + 1}@example.org",
            **counsellor_fields,
        )
        await on_desk(client, counsellor, str(index + 1))
        counsellors.append(counsellor)
    return {"agency": agency, "id": agency["id"], "service": service, "counsellors": counsellors}


async def issue(
    client: Any, agency_id: str, service_id: str, headers: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    r = await client.post(
        f"/api/v1/agencies/{agency_id}/tickets",
        json={"service_id": service_id, **fields},
        headers=headers or front(agency_id),
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def call_next(client: Any, counsellor: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return await client.post(
        f"/api/v1/counsellors/{counsellor['id']}/next", headers=headers or as_counsellor(counsellor)
    )


async def act(client: Any, ticket_id: str, action: str, headers: dict[str, str], **body: Any) -> Any:
    return await client.post(f"/api/v1/tickets/{ticket_id}/{action}", headers=headers, json=body or None)


# --- issuing --------------------------------------------------------------------------------


async def test_issue_ticket_numbers_positions_and_waits(client):
    setup = await open_agency(client, desks=1)
    agency_id, service_id = setup["id"], setup["service"]["id"]
    first = await issue(client, agency_id, service_id)
    assert first["number"] == "A001" and first["status"] == "waiting"
    assert first["position"] == 1 and first["estimated_wait_minutes"] == 0
    second = await issue(client, agency_id, service_id, headers=kiosk(agency_id))  # a kiosk may issue
    assert second["number"] == "A002" and second["position"] == 2
    assert second["estimated_wait_minutes"] == 30  # one desk, one 30-minute person ahead
    other = await make_service(
        client, agency_id, name="Indemnisation", ticket_prefix="B", duration_minutes=20
    )
    third = await issue(client, agency_id, other["id"])
    assert third["number"] == "B001"  # a counter per prefix
    assert third["position"] == 3 and third["estimated_wait_minutes"] == 60


async def test_ticket_numbers_restart_each_local_day(client, clock):
    setup = await open_agency(client, desks=1)
    agency_id, service_id = setup["id"], setup["service"]["id"]
    clock.now = datetime(2026, 3, 2, 22, 30, tzinfo=UTC)  # 23:30 in Paris
    late = await issue(client, agency_id, service_id)
    clock.now = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)  # still 2 March in UTC, 00:30 on 3 March in Paris
    early = await issue(client, agency_id, service_id)
    assert (late["number"], late["local_day"]) == ("A001", "2026-03-02")
    assert (early["number"], early["local_day"]) == ("A001", "2026-03-03")
    assert early["position"] == 1  # yesterday's leftovers are not in today's queue


async def test_issue_ticket_roles_and_scoping(client):
    setup = await open_agency(client, desks=1)
    agency_id, service_id = setup["id"], setup["service"]["id"]
    body = {"service_id": service_id}
    url = f"/api/v1/agencies/{agency_id}/tickets"
    assert_problem(await client.post(url, json=body), 401)
    counsellor = setup["counsellors"][0]
    assert_problem(await client.post(url, json=body, headers=as_counsellor(counsellor)), 403)
    elsewhere = await make_agency(client, name="Autre agence")
    assert_problem(await client.post(url, json=body, headers=front(elsewhere["id"])), 404)
    assert_problem(await client.post(url, json=body, headers=kiosk(elsewhere["id"])), 404)
    # a kiosk issues ordinary tickets only
    assert_problem(await client.post(url, json={**body, "priority": 2}, headers=kiosk(agency_id)), 403)
    # another agency's service is unknown here
    foreign = await make_service(client, elsewhere["id"])
    assert_problem(
        await client.post(url, json={"service_id": foreign["id"]}, headers=front(agency_id)),
        422,
        field="service_id",
    )
    # and so is another agency's counsellor as the preferred one
    stranger = await make_counsellor(client, elsewhere["id"], email="stranger@example.org")
    assert_problem(
        await client.post(
            url, json={**body, "preferred_counsellor_id": stranger["id"]}, headers=front(agency_id)
        ),
        422,
        field="preferred_counsellor_id",
    )


async def test_issue_ticket_validation(client, sessions):
    setup = await open_agency(client, desks=1)
    agency_id, service_id = setup["id"], setup["service"]["id"]
    url = f"/api/v1/agencies/{agency_id}/tickets"
    headers = front(agency_id)
    before = await _count(sessions, "walk_in_tickets")
    assert_problem(
        await client.post(url, json={"service_id": service_id, "priority": 5}, headers=headers),
        400,
        field="priority",
    )
    assert_problem(
        await client.post(url, json={"service_id": "nope"}, headers=headers), 400, field="service_id"
    )
    assert_problem(await client.post(url, json={}, headers=headers), 400, field="service_id")
    assert_problem(
        await client.post(url, json={"service_id": service_id, "colour": "red"}, headers=headers),
        400,
        field="colour",
    )
    assert_problem(
        await client.post(
            url, json={"service_id": service_id, "job_seeker": {"phone": "12345"}}, headers=headers
        ),
        422,
        field="job_seeker.phone",
    )
    assert_problem(
        await client.post(url, json={"service_id": service_id, "language": "Français"}, headers=headers),
        400,
        field="language",
    )
    r = await client.post(url, content=b"{not json", headers={**headers, "content-type": "application/json"})
    assert_problem(r, 400)
    assert await _count(sessions, "walk_in_tickets") == before  # nothing half-done


async def test_walk_ins_can_be_switched_off(client):
    setup = await open_agency(client, desks=1)
    agency_id = setup["id"]
    r = await client.patch(f"/api/v1/agencies/{agency_id}", json={"walk_in_enabled": False}, headers=ADMIN)
    assert r.status_code == 200, r.text
    r = await client.post(
        f"/api/v1/agencies/{agency_id}/tickets",
        json={"service_id": setup["service"]["id"]},
        headers=front(agency_id),
    )
    assert assert_problem(r, 409)["code"] == "walk_in_disabled"


async def test_issue_is_idempotent_with_a_key(client):
    setup = await open_agency(client, desks=1)
    agency_id, service_id = setup["id"], setup["service"]["id"]
    url = f"/api/v1/agencies/{agency_id}/tickets"
    headers = {**front(agency_id), "Idempotency-Key": "kiosk-7-press-42"}
    first = await client.post(url, json={"service_id": service_id}, headers=headers)
    again = await client.post(url, json={"service_id": service_id}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"] and again.headers.get("idempotent-replayed") == "true"
    other = await client.post(url, json={"service_id": service_id, "priority": 1}, headers=headers)
    assert_problem(other, 422, field="Idempotency-Key")


# --- call next ------------------------------------------------------------------------------


async def test_call_next_hands_out_each_ticket_once_in_order(client):
    setup = await open_agency(client, desks=2)
    agency_id, service_id = setup["id"], setup["service"]["id"]
    one, two = setup["counsellors"]
    a1 = await issue(client, agency_id, service_id)
    a2 = await issue(client, agency_id, service_id)
    r = await call_next(client, one)
    assert r.status_code == 200, r.text
    work = r.json()
    assert (work["kind"], work["id"], work["number"], work["reason"], work["desk"]) == (
        "ticket",
        a1["id"],
        "A001",
        "fifo",
        "1",
    )
    assert work["call_count"] == 1
    r = await call_next(client, two)
    assert r.json()["id"] == a2["id"] and r.json()["desk"] == "2"
    # the first counsellor still has A001 in hand
    busy = assert_problem(await call_next(client, one), 409)
    assert busy["code"] == "busy" and busy["current"]["number"] == "A001"
    ticket = (await client.get(f"/api/v1/tickets/{a1['id']}", headers=front(agency_id))).json()
    assert ticket["status"] == "called" and ticket["counsellor_id"] == one["id"] and ticket["desk"] == "1"


async def test_call_next_is_204_when_nothing_fits(client):
    setup = await open_agency(client, desks=1)
    counsellor = setup["counsellors"][0]
    r = await call_next(client, counsellor)
    assert r.status_code == 204 and r.content == b""
    # a ticket in a language this counsellor does not speak is not theirs
    await issue(client, setup["id"], setup["service"]["id"], language="es")
    r = await call_next(client, counsellor)
    assert r.status_code == 204
    hablo = await make_counsellor(
        client, setup["id"], name="Lucía", email="lucia@example.org", languages=["fr", "es"]
    )
    await on_desk(client, hablo, "3")
    r = await call_next(client, hablo)
    assert r.status_code == 200 and r.json()["number"] == "A001"


async def test_urgent_and_priority_tickets_go_first(client):
    setup = await open_agency(client, desks=1)
    agency_id, service_id = setup["id"], setup["service"]["id"]
    counsellor = setup["counsellors"][0]
    ordinary = await issue(client, agency_id, service_id)
    prioritaire = await issue(client, agency_id, service_id, priority=1)
    urgent = await issue(client, agency_id, service_id, priority=2)
    queue = (await client.get(f"/api/v1/agencies/{agency_id}/queue", headers=front(agency_id))).json()
    assert [t["id"] for t in queue["waiting"]] == [urgent["id"], prioritaire["id"], ordinary["id"]]
    order = []
    for _ in range(3):
        r = await call_next(client, counsellor)
        order.append((r.json()["id"], r.json()["reason"]))
        await _finish(client, r.json()["id"], counsellor)
    assert order == [(urgent["id"], "urgent"), (prioritaire["id"], "priority"), (ordinary["id"], "fifo")]


async def test_call_next_access(client):
    setup = await open_agency(client, desks=2)
    agency_id = setup["id"]
    one, two = setup["counsellors"]
    await issue(client, agency_id, setup["service"]["id"])
    # a counsellor calls only for itself; the front desk may call for any counsellor
    assert_problem(await call_next(client, two, headers=as_counsellor(one)), 404)
    assert_problem(await call_next(client, one, headers=kiosk(agency_id)), 403)
    elsewhere = await make_agency(client, name="Autre agence")
    assert_problem(await call_next(client, one, headers=front(elsewhere["id"])), 404)
    assert_problem(
        await client.post(f"/api/v1/counsellors/{uuid.uuid4()}/next", headers=front(agency_id)), 404
    )
    r = await call_next(client, one, headers=front(agency_id))
    assert r.status_code == 200 and r.json()["counsellor_id"] == one["id"]


async def test_off_desk_counsellor_cannot_call(client):
    setup = await open_agency(client, desks=1)
    counsellor = setup["counsellors"][0]
    r = await client.post(
        f"/api/v1/counsellors/{counsellor['id']}/desk", json={"on_desk": False}, headers=front(setup["id"])
    )
    assert r.status_code == 200 and r.json()["on_desk"] is False and r.json()["desk_label"] == "1"
    await issue(client, setup["id"], setup["service"]["id"])
    assert assert_problem(await call_next(client, counsellor), 409)["code"] == "off_desk"


async def test_desk_state_rules(client):
    setup = await open_agency(client, desks=1)
    agency_id = setup["id"]
    fresh = await make_counsellor(client, agency_id, name="Nouveau", email="n@example.org")
    url = f"/api/v1/counsellors/{fresh['id']}/desk"
    assert_problem(
        await client.post(url, json={"on_desk": True}, headers=as_counsellor(fresh)), 422, field="desk_label"
    )
    assert_problem(
        await client.post(url, json={"on_desk": "yes"}, headers=as_counsellor(fresh)), 400, field="on_desk"
    )
    assert_problem(
        await client.post(
            url, json={"on_desk": True, "desk_label": "2"}, headers=as_counsellor(setup["counsellors"][0])
        ),
        404,
    )
    assert_problem(
        await client.post(url, json={"on_desk": True, "desk_label": "2"}, headers=kiosk(agency_id)), 403
    )
    r = await client.post(
        url, json={"on_desk": True, "desk_label": "Guichet 2"}, headers=as_counsellor(fresh)
    )
    assert (
        r.status_code == 200
        and r.json()["on_desk"] is True
        and r.json()["desk_since"].startswith("2026-03-02")
    )


# --- ticket actions -------------------------------------------------------------------------


async def _finish(client: Any, ticket_id: str, counsellor: dict[str, Any]) -> dict[str, Any]:
    headers = as_counsellor(counsellor)
    r = await act(client, ticket_id, "start", headers)
    assert r.status_code == 200, r.text
    r = await act(client, ticket_id, "complete", headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_start_claims_time_and_complete_records_duration(client, clock, sessions):
    setup = await open_agency(client, desks=1)
    counsellor = setup["counsellors"][0]
    ticket = await issue(client, setup["id"], setup["service"]["id"])
    await call_next(client, counsellor)
    started_at = clock.now
    r = await act(client, ticket["id"], "start", as_counsellor(counsellor))
    assert r.status_code == 200 and r.json()["status"] == "in_service"
    claims = await _claims(sessions, counsellor["id"])
    assert claims == [("service", started_at, started_at + timedelta(minutes=30))]  # the service's length
    clock.advance(minutes=12)
    r = await act(client, ticket["id"], "complete", as_counsellor(counsellor))
    body = r.json()
    assert r.status_code == 200 and body["status"] == "completed" and body["service_seconds"] == 720
    assert await _claims(sessions, counsellor["id"]) == [
        ("service", started_at, started_at + timedelta(minutes=12))
    ]
    actions = await _audit(sessions, ticket["id"])
    assert actions == sorted(["ticket.issued", "ticket.called", "ticket.started", "ticket.completed"])


async def test_complete_at_the_start_instant_deletes_the_claim_and_its_reference(client, clock, sessions):
    """Completed before any time passed: the claim has not started, so it is deleted (not cut to an
    empty range), and the ticket's reference to it goes in the same statement."""
    setup = await open_agency(client, desks=1)
    counsellor = setup["counsellors"][0]
    ticket = await issue(client, setup["id"], setup["service"]["id"])
    await call_next(client, counsellor)
    assert (await act(client, ticket["id"], "start", as_counsellor(counsellor))).status_code == 200
    assert len(await _claims(sessions, counsellor["id"])) == 1
    r = await act(client, ticket["id"], "complete", as_counsellor(counsellor))
    assert r.status_code == 200 and r.json()["service_seconds"] == 0
    assert await _claims(sessions, counsellor["id"]) == []
    async with sessions() as session:
        row = await session.get(WalkInTicket, uuid.UUID(ticket["id"]))
        assert row is not None and row.claim_id is None and row.status == "completed"
        assert row.completed_at == clock.now


async def test_start_is_409_when_the_counsellor_is_committed(client, clock, sessions):
    setup = await open_agency(client, desks=1)
    counsellor = setup["counsellors"][0]
    ticket = await issue(client, setup["id"], setup["service"]["id"])
    await call_next(client, counsellor)
    # the counsellor's own calendar says busy from now on (imported after the call)
    await _add_claim(
        sessions,
        setup["id"],
        counsellor["id"],
        clock.now - timedelta(minutes=1),
        clock.now + timedelta(hours=1),
        "busy",
    )
    r = await act(client, ticket["id"], "start", as_counsellor(counsellor))
    assert assert_problem(r, 409)["code"] == "counsellor_busy"
    again = await client.get(f"/api/v1/tickets/{ticket['id']}", headers=front(setup["id"]))
    assert again.json()["status"] == "called"


async def test_start_claims_only_up_to_the_next_commitment(client, clock, sessions):
    setup = await open_agency(client, desks=1)
    counsellor = setup["counsellors"][0]
    ticket = await issue(client, setup["id"], setup["service"]["id"])
    await call_next(client, counsellor)
    meeting = clock.now + timedelta(minutes=10)
    await _add_claim(sessions, setup["id"], counsellor["id"], meeting, meeting + timedelta(hours=1), "busy")
    r = await act(client, ticket["id"], "start", as_counsellor(counsellor))
    assert r.status_code == 200, r.text
    claims = await _claims(sessions, counsellor["id"])
    assert ("service", clock.now, meeting) in claims
    # the first, longer claim failed: its audit row (written with it, in one statement) is not there
    async with sessions() as session:
        started = (
            await session.scalars(
                select(AuditEvent.data).where(
                    AuditEvent.entity_id == uuid.UUID(ticket["id"]), AuditEvent.action == "ticket.started"
                )
            )
        ).all()
    assert started == [{"counsellor_id": counsellor["id"], "claim_until": meeting.isoformat()}]


async def test_bad_transitions_are_409(client):
    setup = await open_agency(client, desks=1)
    agency_id = setup["id"]
    counsellor = setup["counsellors"][0]
    headers = front(agency_id)
    waiting = await issue(client, agency_id, setup["service"]["id"])
    for action in ("complete", "start", "recall", "requeue"):
        body = assert_problem(await act(client, waiting["id"], action, headers), 409)
        assert body["code"] == "bad_transition" and body["status_now"] == "waiting", action
    await call_next(client, counsellor)
    assert_problem(await act(client, waiting["id"], "complete", headers), 409)  # called, never started
    done = await _finish(client, waiting["id"], counsellor)
    assert done["status"] == "completed"
    for action in ("complete", "start", "recall", "requeue", "cancel", "no-show"):
        assert (
            assert_problem(await act(client, waiting["id"], action, headers), 409)["code"] == "bad_transition"
        )
    body = assert_problem(
        await act(client, waiting["id"], "transfer", headers, service_id=setup["service"]["id"]), 409
    )
    assert body["code"] == "bad_transition"


async def test_ticket_actions_access(client):
    setup = await open_agency(client, desks=2)
    agency_id = setup["id"]
    one, two = setup["counsellors"]
    ticket = await issue(client, agency_id, setup["service"]["id"])
    await call_next(client, one)
    # another counsellor of the agency may not act on someone else's call
    r = await act(client, ticket["id"], "start", as_counsellor(two))
    assert assert_problem(r, 403)["code"] == "not_yours"
    assert_problem(await act(client, ticket["id"], "start", kiosk(agency_id)), 403)
    elsewhere = await make_agency(client, name="Autre agence")
    for action in ("start", "recall", "cancel", "complete"):
        assert_problem(await act(client, ticket["id"], action, front(elsewhere["id"])), 404)
    assert_problem(await client.get(f"/api/v1/tickets/{ticket['id']}", headers=front(elsewhere["id"])), 404)
    assert_problem(await act(client, str(uuid.uuid4()), "start", front(agency_id)), 404)
    assert_problem(await act(client, "not-a-uuid", "start", front(agency_id)), 400, 404)
    r = await act(client, ticket["id"], "start", front(agency_id))  # the front desk may
    assert r.status_code == 200


async def test_recall_interval_and_no_show_after_n_calls(client, clock):
    setup = await open_agency(client, desks=1)
    counsellor = setup["counsellors"][0]
    headers = as_counsellor(counsellor)
    ticket = await issue(client, setup["id"], setup["service"]["id"])
    await call_next(client, counsellor)
    body = assert_problem(await act(client, ticket["id"], "recall", headers), 409)
    assert body["code"] == "recall_too_soon" and 0 < body["retry_after_seconds"] <= 301
    assert assert_problem(await act(client, ticket["id"], "no-show", headers), 409)["code"] == "too_few_calls"
    clock.advance(minutes=5)
    r = await act(client, ticket["id"], "recall", headers)
    assert r.status_code == 200 and r.json()["call_count"] == 2
    clock.advance(minutes=5)
    assert (await act(client, ticket["id"], "recall", headers)).json()["call_count"] == 3
    clock.advance(minutes=5)
    assert (
        assert_problem(await act(client, ticket["id"], "recall", headers), 409)["code"] == "max_calls_reached"
    )
    r = await act(client, ticket["id"], "no-show", headers)
    assert r.status_code == 200 and r.json()["status"] == "no_show"
    assert (await call_next(client, counsellor)).status_code == 204  # free again, nobody left


async def test_recall_interval_comes_from_the_agency_policy(client, clock, sessions):
    setup = await open_agency(client, desks=1)
    await _set_policy(
        sessions, setup["id"], {"recall_min_interval_minutes": 1, "max_calls_before_no_show": 2}
    )
    counsellor = setup["counsellors"][0]
    headers = as_counsellor(counsellor)
    ticket = await issue(client, setup["id"], setup["service"]["id"])
    await call_next(client, counsellor)
    clock.advance(minutes=1)
    assert (await act(client, ticket["id"], "recall", headers)).json()["call_count"] == 2
    assert (await act(client, ticket["id"], "no-show", headers)).json()["status"] == "no_show"


async def test_requeued_ticket_waits_for_the_recall_interval_then_becomes_a_no_show(client, clock):
    setup = await open_agency(client, desks=2)
    agency_id = setup["id"]
    one, two = setup["counsellors"]
    absent = await issue(client, agency_id, setup["service"]["id"])
    present = await issue(client, agency_id, setup["service"]["id"])
    await call_next(client, one)
    r = await act(client, absent["id"], "requeue", as_counsellor(one))
    assert r.status_code == 200 and r.json()["status"] == "waiting" and r.json()["call_count"] == 1
    assert r.json()["number"] == "A001" and r.json()["arrived_at"] == absent["arrived_at"]
    # just called: the next counsellor gets the person after it
    assert (await call_next(client, two)).json()["id"] == present["id"]
    assert (await call_next(client, one)).status_code == 204
    for _ in range(2):  # second and third calls, each after the recall interval
        clock.advance(minutes=5)
        r = await call_next(client, one)
        assert r.json()["id"] == absent["id"]
        await act(client, absent["id"], "requeue", as_counsellor(one))
    clock.advance(minutes=5)
    assert (await call_next(client, one)).status_code == 204  # called three times: out of the queue
    final = await client.get(f"/api/v1/tickets/{absent['id']}", headers=front(agency_id))
    assert final.json()["status"] == "no_show" and final.json()["call_count"] == 3


async def test_transfer_keeps_number_and_arrival(client, clock):
    setup = await open_agency(client, desks=2)
    agency_id = setup["id"]
    one, two = setup["counsellors"]
    other = await make_service(client, agency_id, name="Indemnisation", ticket_prefix="B")
    ticket = await issue(client, agency_id, setup["service"]["id"])
    await call_next(client, one)
    await act(client, ticket["id"], "start", as_counsellor(one))
    clock.advance(minutes=4)
    later = await issue(client, agency_id, setup["service"]["id"])
    r = await act(
        client, ticket["id"], "transfer", as_counsellor(one), service_id=other["id"], counsellor_id=two["id"]
    )
    assert r.status_code == 200, r.text
    moved = r.json()
    assert (moved["number"], moved["arrived_at"], moved["status"]) == (
        "A001",
        ticket["arrived_at"],
        "waiting",
    )
    assert moved["service_id"] == other["id"] and moved["preferred_counsellor_id"] == two["id"]
    assert moved["position"] == 1 and moved["call_count"] == 0
    # reserved for the counsellor it was sent to (who is on desk); the other one takes the next person
    assert (await call_next(client, one)).json()["id"] == later["id"]
    assert (await call_next(client, two)).json()["id"] == ticket["id"]


async def test_transfer_validation(client):
    setup = await open_agency(client, desks=1)
    agency_id = setup["id"]
    ticket = await issue(client, agency_id, setup["service"]["id"])
    headers = front(agency_id)
    assert_problem(await act(client, ticket["id"], "transfer", headers, colour="x"), 400, field="colour")
    r = await client.post(f"/api/v1/tickets/{ticket['id']}/transfer", json={}, headers=headers)
    assert_problem(r, 400, field="service_id")
    assert_problem(
        await act(client, ticket["id"], "transfer", headers, service_id=str(uuid.uuid4())),
        422,
        field="service_id",
    )
    elsewhere = await make_agency(client, name="Autre agence")
    stranger = await make_counsellor(client, elsewhere["id"], email="x@example.org")
    assert_problem(
        await act(client, ticket["id"], "transfer", headers, counsellor_id=stranger["id"]),
        422,
        field="counsellor_id",
    )


async def test_cancel(client):
    setup = await open_agency(client, desks=1)
    agency_id = setup["id"]
    counsellor = setup["counsellors"][0]
    gone = await issue(client, agency_id, setup["service"]["id"])
    stays = await issue(client, agency_id, setup["service"]["id"])
    r = await act(client, gone["id"], "cancel", front(agency_id))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert (await call_next(client, counsellor)).json()["id"] == stays["id"]


# --- the front desk's view, waits, notifications --------------------------------------------


async def test_queue_view(client):
    setup = await open_agency(client, desks=2)
    agency_id = setup["id"]
    one, two = setup["counsellors"]
    tickets = [await issue(client, agency_id, setup["service"]["id"]) for _ in range(4)]
    await call_next(client, one)
    r = await client.get(f"/api/v1/agencies/{agency_id}/queue", headers=front(agency_id))
    assert r.status_code == 200, r.text
    queue = r.json()
    assert [t["number"] for t in queue["waiting"]] == ["A002", "A003", "A004"]
    assert [t["position"] for t in queue["waiting"]] == [1, 2, 3]
    # desk 2 is free now, desk 1 busy with A001 for ~30 minutes
    assert [t["estimated_wait_minutes"] for t in queue["waiting"]] == [0, 30, 30]
    assert [t["number"] for t in queue["called"]] == ["A001"]
    assert queue["waiting_count"] == 3 and queue["typical_wait_minutes"] == 30
    desks = {c["id"]: c for c in queue["counsellors"]}
    assert desks[one["id"]]["current"]["number"] == "A001" and desks[two["id"]]["current"] is None
    assert all(c["on_desk"] for c in queue["counsellors"])
    assert tickets[0]["id"] not in [t["id"] for t in queue["waiting"]]
    # counsellors see the queue too; kiosks and other agencies do not
    assert (
        await client.get(f"/api/v1/agencies/{agency_id}/queue", headers=as_counsellor(two))
    ).status_code == 200
    assert_problem(await client.get(f"/api/v1/agencies/{agency_id}/queue", headers=kiosk(agency_id)), 403)
    elsewhere = await make_agency(client, name="Autre agence")
    assert_problem(
        await client.get(f"/api/v1/agencies/{agency_id}/queue", headers=front(elsewhere["id"])), 404
    )


async def test_expected_durations_learn_from_completed_services(client, clock):
    setup = await open_agency(client, desks=1)
    agency_id = setup["id"]
    counsellor = setup["counsellors"][0]
    for _ in range(5):  # five services of 10 minutes against a 30-minute prior worth 5 samples
        ticket = await issue(client, agency_id, setup["service"]["id"])
        await call_next(client, counsellor)
        await act(client, ticket["id"], "start", as_counsellor(counsellor))
        clock.advance(minutes=10)
        await act(client, ticket["id"], "complete", as_counsellor(counsellor))
    await issue(client, agency_id, setup["service"]["id"])
    second = await issue(client, agency_id, setup["service"]["id"])
    assert second["estimated_wait_minutes"] == 20  # (5·30 + 5·10) / 10


async def test_sms_when_about_to_be_called_and_when_called(client, sessions):
    setup = await open_agency(client, desks=2)
    await _set_policy(sessions, setup["id"], {"notify_positions_ahead": 1, "notify_minutes_ahead": 0})
    agency_id = setup["id"]
    one, two = setup["counsellors"]
    tickets = [
        await issue(client, agency_id, setup["service"]["id"], job_seeker={"phone": f"06 12 34 56 7{i}"})
        for i in range(3)
    ]
    silent = await issue(client, agency_id, setup["service"]["id"])  # no phone: never texted
    assert tickets[0]["has_phone"] and not silent["has_phone"]
    assert await _outbox(sessions, agency_id) == []  # nobody is texted for taking a ticket
    await call_next(client, one)
    assert await _outbox(sessions, agency_id) == [("ticket.called", "A001"), ("ticket.soon", "A002")]
    await call_next(client, two)
    assert await _outbox(sessions, agency_id) == [
        ("ticket.called", "A001"),
        ("ticket.called", "A002"),
        ("ticket.soon", "A002"),
        ("ticket.soon", "A003"),
    ]
    called = [
        n for n in await _outbox_rows(sessions, agency_id) if n.ticket_id == uuid.UUID(tickets[0]["id"])
    ]
    assert len(called) == 1 and called[0].kind == "ticket.called"
    assert called[0].recipient == "+33612345670" and called[0].channel == "sms"
    assert called[0].payload["desk"] == "1" and called[0].dedupe_key.endswith(":called:1:sms")


# --- small database helpers -----------------------------------------------------------------


async def _count(sessions: Any, table: str) -> int:
    async with sessions() as session:
        return int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def _claims(sessions: Any, counsellor_id: str) -> list[tuple[str, datetime, datetime]]:
    async with sessions() as session:
        rows = await session.execute(
            select(Claim.kind, Claim.starts_at, Claim.ends_at)
            .where(Claim.counsellor_id == uuid.UUID(counsellor_id))
            .order_by(Claim.starts_at)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def _add_claim(
    sessions: Any, agency_id: str, counsellor_id: str, start: datetime, end: datetime, kind: str
) -> None:
    async with sessions() as session:
        session.add(
            Claim(
                agency_id=uuid.UUID(agency_id),
                counsellor_id=uuid.UUID(counsellor_id),
                starts_at=start,
                ends_at=end,
                kind=kind,
            )
        )
        await session.commit()


async def _audit(sessions: Any, entity_id: str) -> list[str]:
    """Audit actions recorded for an object (sorted: one test transaction gives them one timestamp)."""
    async with sessions() as session:
        rows = await session.scalars(
            select(AuditEvent.action).where(AuditEvent.entity_id == uuid.UUID(entity_id))
        )
        return sorted(rows)


async def _set_policy(sessions: Any, agency_id: str, policy: dict[str, Any]) -> None:
    async with sessions() as session:
        await session.execute(
            update(Agency).where(Agency.id == uuid.UUID(agency_id)).values(queue_policy=policy)
        )
        await session.commit()


async def _outbox_rows(sessions: Any, agency_id: str) -> list[Notification]:
    async with sessions() as session:
        rows = await session.scalars(
            select(Notification).where(Notification.agency_id == uuid.UUID(agency_id))
        )
        return list(rows)


async def _outbox(sessions: Any, agency_id: str) -> list[tuple[str, str]]:
    """(kind, ticket number) of the agency's outbox rows, sorted."""
    async with sessions() as session:
        rows = await session.execute(
            select(Notification.kind, WalkInTicket.number)
            .join(WalkInTicket, WalkInTicket.id == Notification.ticket_id)
            .where(Notification.agency_id == uuid.UUID(agency_id))
        )
        return sorted((kind, number) for kind, number in rows)


async def test_the_queue_refresh_is_debounced_per_agency_and_keeps_the_sms_wish(
    client, sessions, redis, clock
):
    """Requests for a refresh of one agency in a burst cost one run: one ``counters`` event with
    the typical wait, and the "soon" SMS if any of the requests wanted them."""
    from orchestrator import live
    from orchestrator.deps import RedisPublisher
    from orchestrator.services.queue_refresh import DebouncedQueueRefresh

    setup = await open_agency(client, desks=1)
    agency_id = uuid.UUID(setup["id"])
    await _set_policy(sessions, setup["id"], {"notify_positions_ahead": 1, "notify_minutes_ahead": 0})
    for i in range(3):
        await issue(client, setup["id"], setup["service"]["id"], job_seeker={"phone": f"06 12 34 56 7{i}"})
    before = await live.latest_id(redis, agency_id)
    refresh = DebouncedQueueRefresh(sessions, RedisPublisher(redis), None, clock, delay=0.05)
    await refresh.request(agency_id, notify=False)
    for _ in range(3):
        await refresh.request(agency_id, notify=False)
    await refresh.request(agency_id)  # this one wants the SMS
    await refresh.drain()
    events = [payload for _, payload in await live.read_after(redis, agency_id, before, block_ms=1)]
    assert [e["type"] for e in events] == ["counters"]
    assert events[0]["waiting_count"] == 3 and events[0]["typical_wait_minutes"] == 30
    assert await _outbox(sessions, setup["id"]) == [("ticket.soon", "A001")]
