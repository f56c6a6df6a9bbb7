"""Inbound SMS: one text in, one reply out, through the same use cases as the web and the desk.

The person is their phone number (E.164, vouched for by the provider's signed webhook): they
act as a :class:`PhoneOwner`, on appointments booked with that number. What they ask is read
by the pure conversation core (``scheduling.conversation``); this module performs its moves
(offer and hold slots, book, move, cancel, ask for a callback, join the queue, opt out) and
keeps the conversation on the number's ``phone_contacts`` row, locked while a text is handled
so two texts from one number are handled one after the other.

A webhook retried by the provider (same ``MessageSid``) is handled once and gets the same reply.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text, update

from orchestrator.db import UnitOfWork
from orchestrator.errors import Conflict, DomainError
from orchestrator.models import (
    Agency,
    Appointment,
    Claim,
    Hold,
    InboundEvent,
    JobSeeker,
    Notification,
    PhoneContact,
    Service,
)
from orchestrator.scheduling.availability import Slot
from orchestrator.scheduling.conversation import (
    CHOICES,
    Conversation,
    Intent,
    Move,
    Offer,
    Parsed,
    confirming_cancel,
    idle,
    normalize,
    offering,
    parse,
    step,
)
from orchestrator.services import booking, callbacks, tickets
from orchestrator.services.appointments import latest_seeker, next_appointment
from orchestrator.services.commands import Channel, JobSeekerDetails, PhoneOwner, System
from orchestrator.services.messages import MODES, language_of, reply, when

SLOT_SEARCH_DAYS = 14
SLOT_SPACING = timedelta(hours=2)  # offered slots at least this far apart, when there are enough


@dataclass(frozen=True, slots=True)
class InboundSms:
    message_sid: str
    phone: str  # From, E.164
    to: str
    body: str
    opt_out_type: str | None = None  # Twilio Advanced Opt-Out: STOP, START, HELP


@dataclass(frozen=True, slots=True)
class ConversationPolicy:
    hold_ttl: timedelta
    cutoff: timedelta
    inbound_per_hour: int
    max_days: int = 62


async def handle_sms(uow: UnitOfWork, sms: InboundSms, *, now: datetime, policy: ConversationPolicy) -> str:
    """The reply to ``sms`` ("" for none). A retried ``MessageSid`` gets the first reply."""
    new = await uow.session.scalar(
        text(
            "INSERT INTO inbound_events (id, provider, external_id, kind, payload, received_at) "
            "VALUES (:id, 'twilio', :sid, 'sms', jsonb_build_object('From', CAST(:phone AS text)), :now) "
            "ON CONFLICT (provider, external_id) DO NOTHING RETURNING id"
        ),
        {"id": uuid.uuid4(), "sid": sms.message_sid, "phone": sms.phone, "now": now},
    )
    if new is None:  # a retry: the first delivery committed its reply
        stored = await uow.session.scalar(
            select(InboundEvent.response).where(
                InboundEvent.provider == "twilio", InboundEvent.external_id == sms.message_sid
            )
        )
        return stored or ""
    answer = await _respond(uow, sms, now, policy)
    await uow.session.execute(
        update(InboundEvent).where(InboundEvent.id == new).values(response=answer, processed_at=now)
    )
    return answer


async def _respond(uow: UnitOfWork, sms: InboundSms, now: datetime, policy: ConversationPolicy) -> str:
    agency = await uow.session.scalar(select(Agency).where(Agency.sms_number == sms.to, Agency.active))
    if agency is None:
        return ""  # not a number of ours any more: nobody to answer for
    if await _texts_last_hour(uow, sms.phone, now) > policy.inbound_per_hour:
        return ""  # flooding: read, not answered (every answer costs a message)
    contact = await _contact(uow, sms.phone, now)
    parsed = _with_opt_out(parse(sms.body), sms.opt_out_type)
    state = Conversation.from_json(contact.conversation, language_of(contact.language))
    if contact.opted_out_at is not None and parsed.intent not in (Intent.START, Intent.HELP):
        return ""  # opted out: only START (and HELP) are answered
    if not agency.sms_inbound_enabled and parsed.intent not in (Intent.STOP, Intent.START):
        return ""  # one-way sender: texts carry a link instead
    move = step(state, parsed, now)
    talk = _Talk(uow, sms, agency, contact, now, policy, move)
    answer, after = await ACTIONS[move.action](talk)
    await _release(uow, move.release)
    contact.conversation, contact.language, contact.updated_at = after.to_json(), after.language, now
    if sms.opt_out_type in ("STOP", "START"):
        return ""  # the provider's Advanced Opt-Out already answered
    return answer


def _with_opt_out(parsed: Parsed, opt_out_type: str | None) -> Parsed:
    kinds = {"STOP": Intent.STOP, "START": Intent.START, "HELP": Intent.HELP}
    return Parsed(kinds[opt_out_type]) if opt_out_type in kinds else parsed


async def _texts_last_hour(uow: UnitOfWork, phone: str, now: datetime) -> int:
    return int(
        await uow.session.scalar(
            select(func.count())
            .select_from(InboundEvent)
            .where(
                InboundEvent.kind == "sms",
                InboundEvent.payload["From"].astext == phone,
                InboundEvent.received_at > now - timedelta(hours=1),
            )
        )
        or 0
    )


async def _contact(uow: UnitOfWork, phone: str, now: datetime) -> PhoneContact:
    await uow.session.execute(
        text("INSERT INTO phone_contacts (phone, updated_at) VALUES (:phone, :now) ON CONFLICT DO NOTHING"),
        {"phone": phone, "now": now},
    )
    contact = await uow.session.scalar(
        select(PhoneContact).where(PhoneContact.phone == phone).with_for_update()
    )
    assert contact is not None
    return contact


async def _release(uow: UnitOfWork, hold_ids: tuple[str, ...]) -> None:
    """Give back the time of holds no longer wanted (abandoned or not chosen offers)."""
    if hold_ids:
        ids = [uuid.UUID(h) for h in hold_ids]
        claims = select(Hold.claim_id).where(Hold.id.in_(ids), Hold.consumed_at.is_(None))
        await uow.session.execute(delete(Claim).where(Claim.id.in_(claims), Claim.kind == "hold"))


@dataclass
class _Talk:
    uow: UnitOfWork
    sms: InboundSms
    agency: Agency
    contact: PhoneContact
    now: datetime
    policy: ConversationPolicy
    move: Move

    @property
    def state(self) -> Conversation:
        return self.move.state

    @property
    def language(self) -> str:
        return self.move.state.language

    @property
    def actor(self) -> PhoneOwner:
        return PhoneOwner(self.sms.phone)

    def say(self, key: str, **values: object) -> str:
        return reply(key, self.language, agency=self.agency.name, **values)

    def when(self, moment: datetime) -> str:
        return when(moment, self.agency.timezone, self.language)

    def mode(self, mode: str) -> str:
        return MODES[self.language].get(mode, mode)

    async def known(self) -> JobSeeker | None:
        return await latest_seeker(self.uow, self.agency.id, self.sms.phone)

    async def details(self) -> JobSeekerDetails:
        known = await self.known()
        if known is None:  # an unknown number: a minimal record
            return JobSeekerDetails(
                phone=self.sms.phone, language=self.language, preferred_channel="sms", consent_sms=True
            )
        return JobSeekerDetails(
            name=known.name,
            phone=self.sms.phone,
            email=known.email,
            language=self.language,
            preferred_channel="sms",
            consent_sms=True,
            consent_email=known.consent_email,
            priority=known.priority,
            accessibility=tuple(known.accessibility),
            interpreter_language=known.interpreter_language,
            preferred_mode=known.preferred_mode,
        )

    async def services(self, *, public: bool = True) -> list[Service]:
        query = select(Service).where(Service.agency_id == self.agency.id, Service.active)
        if public:
            query = query.where(Service.bookable_by == "public")
        return list(await self.uow.session.scalars(query.order_by(Service.created_at, Service.name)))

    async def next_appointment(self) -> Appointment | None:
        return await next_appointment(self.uow, self.agency.id, self.sms.phone, self.now)

    async def hold_offers(self, service: Service, mode: str | None) -> tuple[Offer, ...]:
        """Up to three slots, spaced out when possible, each held for the conversation."""
        slots = await booking.find_slots(
            self.uow,
            booking.FindSlots(
                self.actor,
                Channel.SMS,
                self.agency.id,
                service.id,
                start=self.now,
                end=self.now + timedelta(days=SLOT_SEARCH_DAYS),
                mode=mode if mode in service.modes else None,
                language=self.language,
            ),
            now=self.now,
            max_days=self.policy.max_days,
        )
        offers: list[Offer] = []
        for slot in _spaced(slots):
            try:
                async with self.uow.session.begin_nested():
                    hold = await booking.place_hold(
                        self.uow,
                        booking.PlaceHold(
                            self.actor,
                            Channel.SMS,
                            self.agency.id,
                            service.id,
                            slot.start,
                            slot.mode.value,
                            uuid.UUID(slot.counsellor_id),
                        ),
                        now=self.now,
                        ttl=self.policy.hold_ttl,
                    )
            except DomainError:
                continue  # taken meanwhile: offer the next one
            offers.append(Offer(str(hold.id), hold.starts_at, str(hold.counsellor_id), hold.mode))
            if len(offers) == CHOICES:
                break
        return tuple(offers)

    def offer_lines(self, offers: tuple[Offer, ...]) -> str:
        return "\n".join(
            f"{i}) {self.when(o.starts_at)}, {self.mode(o.mode)}" for i, o in enumerate(offers, 1)
        )


def _spaced(slots: list[Slot]) -> list[Slot]:
    """Slots at least ``SLOT_SPACING`` apart first (a real choice), then the others."""
    picked: list[Slot] = []
    for slot in slots:
        if all(abs(slot.start - other.start) >= SLOT_SPACING for other in picked):
            picked.append(slot)
    return picked + [slot for slot in slots if slot not in picked]


# words people add around a keyword ("un rdv svp", "book an appointment please")
FILLERS = frozenset(
    [
        "SVP",
        "STP",
        "MERCI",
        "BONJOUR",
        "BONSOIR",
        "POUR",
        "AVEC",
        "UNE",
        "JE",
        "VOUDRAIS",
        "VEUX",
        "PRENDRE",
        "AVOIR",
        "PLEASE",
        "THANKS",
        "HELLO",
        "WANT",
        "WOULD",
        "LIKE",
        "FOR",
        "THE",
        "AND",
    ]
)


def _service_for(services: list[Service], words: str) -> Service | None:
    """The service whose name matches one of ``words`` (a prefix of one of its name's words);
    the first service when no word names one and the agency has one, or nothing was said."""
    if not services:
        return None
    wanted = [w for w in normalize(words) if len(w) >= 3 and w not in FILLERS]
    for service in services:
        names = normalize(service.name)
        if any(name.startswith(w) for w in wanted for name in names):
            return service
    return services[0] if not wanted or len(services) == 1 else None


def _service_words(services: list[Service]) -> str:
    return ", ".join(sorted({normalize(s.name)[0].lower() for s in services if normalize(s.name)}))


# --- the moves ------------------------------------------------------------------------------------

Reply = tuple[str, Conversation]


async def _offer_slots(talk: _Talk) -> Reply:
    await _release(talk.uow, talk.move.release)  # the old offers' time is free for the new search
    services = await talk.services()
    service = _service_for(services, talk.move.argument)
    if service is None:
        return talk.say("unknown_service", services=_service_words(services)), idle(talk.state)
    known = await talk.known()
    offers = await talk.hold_offers(service, known.preferred_mode if known else None)
    if not offers:
        return talk.say("no_slots"), idle(talk.state)
    minutes = int(talk.policy.hold_ttl.total_seconds() // 60)
    until = talk.now + talk.policy.hold_ttl
    after = offering(talk.state, offers, purpose="book", until=until, service_id=str(service.id))
    return talk.say("offers", service=service.name, lines=talk.offer_lines(offers), minutes=minutes), after


async def _book_offer(talk: _Talk) -> Reply:
    offer, state = talk.move.offer, talk.state
    assert offer is not None and state.service_id is not None
    try:
        async with talk.uow.session.begin_nested():
            if state.purpose == "move" and state.appointment_id is not None:
                await _release(talk.uow, (offer.hold_id,))  # our own hold: the move claims that time
                moved = await booking.reschedule_appointment(
                    talk.uow,
                    booking.RescheduleAppointment(
                        talk.actor,
                        Channel.SMS,
                        uuid.UUID(state.appointment_id),
                        offer.starts_at,
                        uuid.UUID(offer.counsellor_id),
                        offer.mode,
                    ),
                    now=talk.now,
                    cutoff=talk.policy.cutoff,
                )
                return talk.say("moved", when=talk.when(moved.starts_at), mode=talk.mode(moved.mode)), idle(
                    state
                )
            booked, _ = await booking.book_appointment(
                talk.uow,
                booking.BookAppointment(
                    talk.actor,
                    Channel.SMS,
                    talk.agency.id,
                    uuid.UUID(state.service_id),
                    offer.starts_at,
                    offer.mode,
                    await talk.details(),
                    uuid.UUID(offer.counsellor_id),
                    uuid.UUID(offer.hold_id),
                ),
                now=talk.now,
            )
    except Conflict as refused:
        key = "too_late" if refused.code == "cutoff_passed" else "taken"
        return talk.say(key), idle(state)
    except DomainError:
        return talk.say("taken"), idle(state)
    return talk.say("booked", when=talk.when(booked.starts_at), mode=talk.mode(booked.mode)), idle(state)


async def _repeat_offers(talk: _Talk) -> Reply:
    return talk.say("repeat_offers", lines=talk.offer_lines(talk.state.offers)), talk.state


async def _offers_expired(talk: _Talk) -> Reply:
    return talk.say("offers_expired"), idle(talk.state)


async def _ask_cancel(talk: _Talk) -> Reply:
    appointment = await talk.next_appointment()
    if appointment is None:
        return talk.say("no_appointment"), idle(talk.state)
    after = confirming_cancel(talk.state, str(appointment.id), until=talk.now + talk.policy.hold_ttl)
    return talk.say("ask_cancel", when=talk.when(appointment.starts_at)), after


async def _asked(talk: _Talk) -> Appointment | None:
    appointment_id = talk.state.appointment_id
    return await talk.uow.session.get(Appointment, uuid.UUID(appointment_id)) if appointment_id else None


async def _confirm_cancel(talk: _Talk) -> Reply:
    appointment = await _asked(talk)
    if appointment is None:
        return talk.say("no_appointment"), idle(talk.state)
    try:
        async with talk.uow.session.begin_nested():
            await booking.cancel_appointment(
                talk.uow,
                booking.CancelAppointment(talk.actor, Channel.SMS, appointment.id, reason="sms"),
                now=talk.now,
                cutoff=talk.policy.cutoff,
            )
    except Conflict as refused:
        return talk.say("too_late" if refused.code == "cutoff_passed" else "no_appointment"), idle(talk.state)
    except DomainError:
        return talk.say("no_appointment"), idle(talk.state)
    return talk.say("cancelled", when=talk.when(appointment.starts_at)), idle(talk.state)


async def _keep_appointment(talk: _Talk) -> Reply:
    appointment = await _asked(talk)
    if appointment is None:
        return talk.say("no_appointment"), idle(talk.state)
    return talk.say("kept", when=talk.when(appointment.starts_at)), idle(talk.state)


async def _ask_again(talk: _Talk) -> Reply:
    appointment = await _asked(talk)
    if appointment is None:
        return talk.say("no_appointment"), idle(talk.state)
    return talk.say("ask_again", when=talk.when(appointment.starts_at)), talk.state


async def _offer_move(talk: _Talk) -> Reply:
    await _release(talk.uow, talk.move.release)
    appointment = await talk.next_appointment()
    if appointment is None:
        return talk.say("no_appointment"), idle(talk.state)
    if talk.now > appointment.starts_at - talk.policy.cutoff:
        return talk.say("too_late"), idle(talk.state)
    service = await talk.uow.session.get(Service, appointment.service_id)
    assert service is not None
    offers = await talk.hold_offers(service, appointment.mode)
    if not offers:
        return talk.say("no_slots"), idle(talk.state)
    until = talk.now + talk.policy.hold_ttl
    after = offering(
        talk.state,
        offers,
        purpose="move",
        until=until,
        service_id=str(service.id),
        appointment_id=str(appointment.id),
    )
    minutes = int(talk.policy.hold_ttl.total_seconds() // 60)
    return talk.say("offers", service=service.name, lines=talk.offer_lines(offers), minutes=minutes), after


async def _request_callback(talk: _Talk) -> Reply:
    services = await talk.services()
    service = _service_for(services, talk.move.argument) or (services[0] if services else None)
    known = await talk.known()
    try:
        async with talk.uow.session.begin_nested():
            asked = await callbacks.request_callback(
                talk.uow,
                callbacks.RequestCallback(
                    talk.actor,
                    Channel.SMS,
                    talk.agency.id,
                    talk.sms.phone,
                    service_id=service.id if service else None,
                    language=talk.language,
                    needs=tuple(known.accessibility) if known else (),
                    priority=known.priority if known else 0,
                ),
                now=talk.now,
            )
    except DomainError:
        return talk.say("queue_closed"), idle(talk.state)
    request = asked.request
    if request.scheduled_at is not None:  # placed at once: say when (the outbox text says it too)
        return talk.say("callback_expected", when=talk.when(request.scheduled_at)), idle(talk.state)
    return talk.say("callback"), idle(talk.state)


async def _join_queue(talk: _Talk) -> Reply:
    services = await talk.services(public=False)
    service = _service_for(services, talk.move.argument) or (services[0] if services else None)
    if service is None:
        return talk.say("queue_closed"), idle(talk.state)
    try:
        async with talk.uow.session.begin_nested():
            view = await tickets.issue_ticket(
                talk.uow,
                tickets.IssueTicket(
                    System("sms_queue"),
                    Channel.SMS,
                    talk.agency.id,
                    service.id,
                    language=talk.language,
                    phone=talk.sms.phone,
                ),
                now=talk.now,
            )
    except DomainError:
        return talk.say("queue_closed"), idle(talk.state)
    ahead = max((view.position or 1) - 1, 0)
    minutes = view.estimated_wait_minutes if view.estimated_wait_minutes is not None else "?"
    return talk.say("queue", number=view.ticket.number, ahead=ahead, minutes=minutes), idle(talk.state)


async def _opt_out(talk: _Talk) -> Reply:
    already = talk.contact.opted_out_at is not None
    talk.contact.opted_out_at = talk.now
    await _set_opted_out(talk, True)
    await talk.uow.session.execute(
        update(Notification)
        .where(
            Notification.recipient == talk.sms.phone,
            Notification.channel == "sms",
            Notification.status == "pending",
        )
        .values(status="skipped", last_error="opted_out")
    )
    # confirmed once, as carriers require; a second STOP gets no answer (it would cost one more)
    return ("" if already else talk.say("opt_out")), idle(talk.state)


async def _opt_in(talk: _Talk) -> Reply:
    talk.contact.opted_out_at = None
    await _set_opted_out(talk, False)
    return talk.say("opt_in"), idle(talk.state)


async def _set_opted_out(talk: _Talk, value: bool) -> None:
    await talk.uow.session.execute(
        update(JobSeeker).where(JobSeeker.phone == talk.sms.phone).values(opted_out_sms=value)
    )


async def _help(talk: _Talk) -> Reply:
    return talk.say("help"), talk.state


ACTIONS: dict[str, Callable[[_Talk], Awaitable[Reply]]] = {
    "offer_slots": _offer_slots,
    "book_offer": _book_offer,
    "repeat_offers": _repeat_offers,
    "offers_expired": _offers_expired,
    "ask_cancel": _ask_cancel,
    "confirm_cancel": _confirm_cancel,
    "keep_appointment": _keep_appointment,
    "ask_again": _ask_again,
    "offer_move": _offer_move,
    "request_callback": _request_callback,
    "join_queue": _join_queue,
    "opt_out": _opt_out,
    "opt_in": _opt_in,
    "help": _help,
}
