"""The fast availability path gives the same answers as a plain reference, and never a stale one.

The fast path: one query of epoch-µs arrays (``repositories.ledgers``), ledgers built by the core,
open slots cached by content. The reference: ORM entities, ``Interval``\\ s, ``Ledger.of`` and
``free_slots`` — the straightforward reading of the same tables. They must agree on a seeded
agency across a DST change (Europe/Paris, 29 March 2026), with absences, a busy block, live and
lapsed holds, a rule valid only from some date, and filters.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from orchestrator.db import unit_of_work
from orchestrator.models import Absence, AvailabilityRule, Claim, Counsellor, Service
from orchestrator.repositories.calendars import live_claims, service_spec
from orchestrator.scheduling.availability import SlotRequest, free_slots
from orchestrator.scheduling.ledger import Ledger, ledger_range
from orchestrator.scheduling.rules import WeeklyRule, expand_rules
from orchestrator.scheduling.types import Interval, Mode
from orchestrator.services import booking
from orchestrator.services.commands import Channel, JobSeekerDetails, Public
from tests.helpers import make_absence, make_agency, make_counsellor, make_rule, make_service

TZ = "Europe/Paris"
WINDOW = Interval(datetime(2026, 3, 23, tzinfo=UTC), datetime(2026, 4, 4, tzinfo=UTC))  # DST on the 29th


async def _seed(client: Any, sessions: Any, now: datetime) -> dict[str, Any]:
    agency = await make_agency(client)
    service = await make_service(client, agency["id"], skill="insertion", buffer_after_minutes=5)
    people = []
    for n, languages in enumerate((["fr"], ["fr", "ar"], ["fr", "en"], ["es"])):
        person = await make_counsellor(
            client, agency["id"], name=f"C{n}", email=f"c{n}@example.org", languages=languages
        )
        people.append(person)
        for weekday in range(7):  # Sundays too: the DST change is on a Sunday
            await make_rule(client, person["id"], weekday=weekday, start="09:00", end="12:30")
            await make_rule(
                client, person["id"], weekday=weekday, start="13:30", end="17:00", modes=["phone"]
            )
    await make_absence(client, people[0]["id"], "2026-03-27T08:00:00+01:00", "2026-03-27T18:00:00+01:00")
    async with unit_of_work(sessions) as uow:
        rule = AvailabilityRule(  # a Saturday block valid only from 1 April
            counsellor_id=uuid.UUID(people[3]["id"]),
            weekday=5,
            start_time=datetime(2026, 1, 1, 18).time(),
            end_time=datetime(2026, 1, 1, 20).time(),
            modes=["in_person"],
            valid_from=date(2026, 4, 1),
        )
        uow.session.add(rule)
        agency_id = uuid.UUID(agency["id"])
        for n, (day, hour, kind, expires) in enumerate(
            [
                (23, 9, "appointment", None),
                (23, 10, "busy", None),
                (29, 9, "appointment", None),  # the DST Sunday
                (29, 14, "hold", now + timedelta(days=40)),  # live
                (30, 9, "hold", now - timedelta(minutes=1)),  # lapsed: its time is free
                (31, 11, "service", None),
            ]
        ):
            starts = datetime(2026, 3, day, hour - 1, 0, tzinfo=UTC)
            uow.session.add(
                Claim(
                    agency_id=agency_id,
                    counsellor_id=uuid.UUID(people[n % 3]["id"]),
                    starts_at=starts,
                    ends_at=starts + timedelta(minutes=45),
                    kind=kind,
                    expires_at=expires,
                )
            )
    return {"agency": agency, "service": service, "people": people}


async def _reference(sessions: Any, agency_id: uuid.UUID, service_id: uuid.UUID, now: datetime, request: Any):  # type: ignore[no-untyped-def]
    """Availability read the plain way: entities, intervals, the core."""
    span = ledger_range(WINDOW, TZ)
    async with unit_of_work(sessions) as uow:
        service = await uow.session.get(Service, service_id)
        assert service is not None
        counsellors = (
            await uow.session.scalars(
                select(Counsellor).where(Counsellor.agency_id == agency_id, Counsellor.active)
            )
        ).all()
        ledgers = []
        for c in counsellors:
            weekly_blocks: list[Any] = []
            if service.skill not in c.skills:
                continue
            rules = (
                await uow.session.scalars(
                    select(AvailabilityRule).where(AvailabilityRule.counsellor_id == c.id)
                )
            ).all()
            weekly = [
                WeeklyRule(r.weekday, r.start_time, r.end_time, frozenset(Mode(m) for m in r.modes), r.quota)
                for r in rules
                if r.valid_from is None  # the one dated rule is checked day by day below
            ]
            dated = [r for r in rules if r.valid_from is not None]
            for r in dated:
                day = span.first_day
                while day <= span.last_day:
                    if day.weekday() == r.weekday and day >= r.valid_from:
                        one = WeeklyRule(
                            r.weekday, r.start_time, r.end_time, frozenset(Mode(m) for m in r.modes)
                        )
                        weekly_blocks.extend(expand_rules([one], TZ, day, day))
                    day += timedelta(days=1)
            near = (Claim.starts_at < span.until, Claim.ends_at > span.since)
            claims = (
                await uow.session.scalars(
                    select(Claim).where(Claim.counsellor_id == c.id, live_claims(now), *near)
                )
            ).all()
            absences = (
                await uow.session.scalars(
                    select(Absence).where(
                        Absence.counsellor_id == c.id,
                        Absence.starts_at < span.until,
                        Absence.ends_at > span.since,
                    )
                )
            ).all()
            ledgers.append(
                Ledger.of(
                    str(c.id),
                    c.skills,
                    c.languages,
                    (Mode(m) for m in c.modes),
                    [*expand_rules(weekly, TZ, span.first_day, span.last_day), *weekly_blocks],
                    booked=[Interval(x.starts_at, x.ends_at) for x in claims if x.kind != "busy"],
                    unavailable=[Interval(x.starts_at, x.ends_at) for x in claims if x.kind == "busy"]
                    + [Interval(a.starts_at, a.ends_at) for a in absences],
                )
            )
        return free_slots(service_spec(service), ledgers, WINDOW, now, request, tz=TZ)


def _find(world: dict[str, Any], **fields: Any) -> booking.FindSlots:
    return booking.FindSlots(
        actor=Public(),
        channel=Channel.WEB,
        agency_id=uuid.UUID(world["agency"]["id"]),
        service_id=uuid.UUID(world["service"]["id"]),
        start=WINDOW.start,
        end=WINDOW.end,
        **fields,
    )


async def test_the_fast_path_answers_like_the_plain_reading(client, sessions, clock):
    world = await _seed(client, sessions, clock.now)
    agency_id, service_id = uuid.UUID(world["agency"]["id"]), uuid.UUID(world["service"]["id"])
    for fields, request in (
        ({}, SlotRequest()),
        ({"language": "ar"}, SlotRequest(language="ar")),
        ({"mode": "phone", "limit": 7}, SlotRequest(mode=Mode.PHONE, limit=7)),
    ):
        async with unit_of_work(sessions) as uow:
            fast = await booking.find_slots(uow, _find(world, **fields), now=clock.now, max_days=31)
        reference = await _reference(sessions, agency_id, service_id, clock.now, request)
        assert fast == reference
        assert len(fast) == 7 if "limit" in fields else len(fast) > 100


async def test_a_repeated_search_is_served_from_the_cache_and_a_booking_changes_the_answer(
    client, sessions, clock
):
    world = await _seed(client, sessions, clock.now)
    hits = booking.OPEN_SLOTS.hits
    async with unit_of_work(sessions) as uow:
        before = await booking.find_slots(uow, _find(world), now=clock.now, max_days=31)
    async with unit_of_work(sessions) as uow:
        assert await booking.find_slots(uow, _find(world), now=clock.now, max_days=31) == before
    assert booking.OPEN_SLOTS.hits == hits + 1

    taken = before[0]
    async with unit_of_work(sessions) as uow:
        await booking.book_appointment(
            uow,
            booking.BookAppointment(
                actor=Public(),
                channel=Channel.WEB,
                agency_id=uuid.UUID(world["agency"]["id"]),
                service_id=uuid.UUID(world["service"]["id"]),
                starts_at=taken.start,
                mode=taken.mode.value,
                job_seeker=JobSeekerDetails(name="Awa"),
                counsellor_id=uuid.UUID(taken.counsellor_id),
            ),
            now=clock.now,
        )
    async with unit_of_work(sessions) as uow:
        after = await booking.find_slots(uow, _find(world), now=clock.now, max_days=31)
    assert booking.OPEN_SLOTS.hits == hits + 1  # the booking changed the ledgers: recomputed
    assert after != before
    assert all(
        not (
            s.counsellor_id == taken.counsellor_id
            and s.start < taken.end + timedelta(minutes=5)
            and taken.start < s.end
        )
        for s in after
    )
    clock.advance(days=2)  # later: the same cached computation, fewer starts (notice moves on)
    async with unit_of_work(sessions) as uow:
        later = await booking.find_slots(uow, _find(world), now=clock.now, max_days=31)
    assert later == [s for s in after if s.start >= clock.now + timedelta(minutes=60)]


async def test_the_queue_reads_the_same_counsellor_time_as_before(client, sessions, clock):
    """Call next decides on the counsellors' ledgers; the desks it sees (commitments, busy until)
    and its decisions are those of the plain reading of claims and absences."""
    from orchestrator.models import Agency
    from orchestrator.scheduling.intervals import merge
    from orchestrator.scheduling.queue import DeskCounsellor, next_work
    from orchestrator.services.queue_snapshot import load_snapshot
    from tests.integration.test_walkin_queue import issue, open_agency

    world = await open_agency(client, desks=3)
    for k in range(6):
        await issue(client, world["id"], world["service"]["id"], language="en" if k == 2 else None)
    now = clock.now
    one, two, three = (uuid.UUID(c["id"]) for c in world["counsellors"])
    agency_id = uuid.UUID(world["id"])
    minutes = lambda m: now + timedelta(minutes=m)  # noqa: E731
    async with unit_of_work(sessions) as uow:
        for counsellor, start, end, kind in (
            (one, 20, 50, "appointment"),
            (one, 90, 120, "busy"),
            (one, -60, -30, "appointment"),  # over: no commitment any more
            (two, -5, 10, "service"),  # serving a walk-in: busy for ten more minutes
            (three, 25, 55, "hold"),
        ):
            uow.session.add(
                Claim(
                    agency_id=agency_id,
                    counsellor_id=counsellor,
                    starts_at=minutes(start),
                    ends_at=minutes(end),
                    kind=kind,
                    expires_at=minutes(30) if kind == "hold" else None,
                )
            )
        uow.session.add(Absence(counsellor_id=three, starts_at=minutes(40), ends_at=minutes(240)))
    async with unit_of_work(sessions) as uow:
        agency = await uow.session.get(Agency, agency_id)
        assert agency is not None
        snapshot = await load_snapshot(uow.session, agency, now)
        claims = (await uow.session.scalars(select(Claim).where(Claim.agency_id == agency_id))).all()
        absences = (await uow.session.scalars(select(Absence))).all()

    def reference(c: DeskCounsellor) -> DeskCounsellor:
        mine = [x for x in claims if str(x.counsellor_id) == c.id and x.ends_at > now]
        mine = [x for x in mine if x.kind != "hold" or (x.expires_at is not None and x.expires_at > now)]
        away = [Interval(a.starts_at, a.ends_at) for a in absences if str(a.counsellor_id) == c.id]
        serving = [x.ends_at for x in mine if x.kind == "service"]
        committed = [Interval(x.starts_at, x.ends_at) for x in mine if x.kind != "service"]
        return DeskCounsellor(
            id=c.id,
            skills=c.skills,
            languages=c.languages,
            modes=c.modes,
            on_desk=c.on_desk,
            desk=c.desk,
            commitments=tuple(merge([*committed, *(a for a in away if a.end > now)])),
            busy_until=max(serving) if serving else None,
        )

    desks = {c.id: c for c in snapshot.state.counsellors}
    assert set(desks) == {str(one), str(two), str(three)}
    for desk in desks.values():
        assert desk == reference(desk)
    assert desks[str(two)].busy_until == minutes(10)
    assert [i.start for i in desks[str(one)].commitments] == [minutes(20), minutes(90)]
    for desk in desks.values():
        expected = next_work(reference(desk), now, snapshot.state, snapshot.policy)
        assert next_work(desk, now, snapshot.state, snapshot.policy) == expected


async def test_a_snapshot_reads_again_only_the_tickets_that_changed_and_never_a_stale_one(
    client, sessions, clock
):
    """The decision's snapshot sends the versions of the tickets this process holds; PostgreSQL
    returns whole rows only for the others. A ticket changed by anyone (here plain SQL, as another
    process would) is read again; an unchanged one is the very row already held; a new one
    appears; a called one leaves the waiting list."""
    from sqlalchemy import text

    from orchestrator.repositories.queue import load_queue_rows, local_day
    from orchestrator.scheduling.rules import local_day_bounds
    from tests.integration.test_walkin_queue import issue, open_agency

    world = await open_agency(client, desks=1)
    ids = [(await issue(client, world["id"], world["service"]["id"]))["id"] for _ in range(4)]
    agency_id = uuid.UUID(world["id"])
    now = clock.now
    day = local_day(ZoneInfo(TZ), now)
    bounds = local_day_bounds(day, TZ)

    async def load() -> Any:
        async with unit_of_work(sessions) as uow:
            return await load_queue_rows(
                uow.session, agency_id, day=day, day_start=bounds.start, day_end=bounds.end, now=now
            )

    first = await load()
    assert list(first.waiting) == ids
    async with unit_of_work(sessions) as uow:
        await uow.session.execute(
            text("UPDATE walk_in_tickets SET priority = 2 WHERE id = :id"), {"id": ids[1]}
        )
        await uow.session.execute(
            text("UPDATE walk_in_tickets SET status = 'called', call_count = 1 WHERE id = :id"),
            {"id": ids[3]},
        )
    fifth = (await issue(client, world["id"], world["service"]["id"]))["id"]
    second = await load()
    assert list(second.waiting) == [ids[0], ids[1], ids[2], fifth]
    assert second.waiting[ids[1]].priority == 2  # changed: read again, not the held row
    assert second.waiting[ids[1]].version != first.waiting[ids[1]].version
    assert second.waiting[ids[0]] is first.waiting[ids[0]]  # unchanged: the row already held
    assert [row.id for row in second.called] == [uuid.UUID(ids[3])]
    # what PostgreSQL holds is what the snapshot holds, column by column
    async with unit_of_work(sessions) as uow:
        fresh = {
            str(row.id): row
            for row in await uow.session.execute(
                text("SELECT id, priority, status, call_count FROM walk_in_tickets WHERE agency_id = :a"),
                {"a": agency_id},
            )
        }
    for key, row in second.waiting.items():
        assert (row.priority, row.status, row.call_count) == (
            fresh[key].priority,
            fresh[key].status,
            fresh[key].call_count,
        )


async def test_a_claim_made_between_two_snapshots_is_in_the_second(client, sessions, clock):
    """The queue's counsellors are memoized by the values of their rows (``day_pairs``): a claim
    made in between, by any process, changes the row and so the ledger."""
    from orchestrator.models import Agency
    from orchestrator.services.queue_snapshot import load_snapshot
    from tests.integration.test_walkin_queue import open_agency

    world = await open_agency(client, desks=1)
    agency_id, counsellor = uuid.UUID(world["id"]), uuid.UUID(world["counsellors"][0]["id"])
    now = clock.now

    async def desk() -> Any:
        async with unit_of_work(sessions) as uow:
            agency = await uow.session.get(Agency, agency_id)
            snapshot = await load_snapshot(uow.session, agency, now)
            (found,) = snapshot.state.counsellors
            return found, snapshot.day

    first, _ = await desk()
    again, _ = await desk()
    assert again == first and first.commitments == ()
    async with unit_of_work(sessions) as uow:
        uow.session.add(
            Claim(
                agency_id=agency_id,
                counsellor_id=counsellor,
                starts_at=now + timedelta(minutes=20),
                ends_at=now + timedelta(minutes=50),
                kind="appointment",
            )
        )
    after, _ = await desk()
    assert after.commitments == (Interval(now + timedelta(minutes=20), now + timedelta(minutes=50)),)
