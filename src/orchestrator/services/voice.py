"""The voice line: a caller presses keys; we call back, read or cancel their next appointment.

The keypad menu is pure (``scheduling/voice_menu.py``); this module performs its actions with
the same use cases as the other channels, acting as the :class:`PhoneOwner` of the caller's
number (vouched for by Twilio's signed webhook). A retried webhook (same ``CallSid`` and step)
gets the answer stored the first time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, text, update

from orchestrator.db import UnitOfWork
from orchestrator.errors import Conflict, DomainError
from orchestrator.models import Agency, InboundEvent
from orchestrator.scheduling.voice_menu import CallState, VoiceMove, answer, press
from orchestrator.services import booking, callbacks
from orchestrator.services.appointments import next_appointment
from orchestrator.services.commands import Channel, PhoneOwner
from orchestrator.services.messages import MODES, spoken, when

WINDOWS = {"morning": (time(8, 30), time(12, 30)), "afternoon": (time(13, 30), time(18, 0))}


@dataclass(frozen=True, slots=True)
class VoiceCall:
    call_sid: str
    phone: str  # From, E.164
    to: str
    step: int  # how many webhooks of this call came before (dedupe with the CallSid)
    state: CallState | None  # None: the call was just answered
    digits: str | None = None


@dataclass(frozen=True, slots=True)
class VoiceReply:
    say: str
    state: CallState | None  # None: hang up after saying it
    language: str


async def handle_call(
    uow: UnitOfWork, call: VoiceCall, *, now: datetime, cutoff: timedelta
) -> tuple[VoiceReply, str | None]:
    """What to say (and whether to listen for a key), plus the reply stored for this step the
    first time (a retried webhook gets it back instead)."""
    key = f"{call.call_sid}:{call.step}"
    stored = await uow.session.scalar(
        select(InboundEvent.response).where(
            InboundEvent.provider == "twilio", InboundEvent.external_id == key
        )
    )
    if stored is not None:
        return VoiceReply("", None, "fr"), stored
    await uow.session.execute(
        text(
            "INSERT INTO inbound_events (id, provider, external_id, kind, payload, received_at) "
            "VALUES (:id, 'twilio', :key, 'voice', jsonb_build_object('From', CAST(:phone AS text)), :now) "
            "ON CONFLICT (provider, external_id) DO NOTHING"
        ),
        {"id": uuid.uuid4(), "key": key, "phone": call.phone, "now": now},
    )
    agency = await uow.session.scalar(select(Agency).where(Agency.sms_number == call.to, Agency.active))
    state = call.state or CallState()
    if agency is None:
        return VoiceReply(spoken("closed", state.language), None, state.language), None
    move = answer(state) if call.state is None else press(state, call.digits)
    said = await _perform(uow, agency, call, move, now, cutoff)
    return VoiceReply(said, None if move.hang_up else move.state, move.state.language), None


async def remember(uow: UnitOfWork, call: VoiceCall, twiml: str) -> None:
    await uow.session.execute(
        update(InboundEvent)
        .where(InboundEvent.provider == "twilio", InboundEvent.external_id == f"{call.call_sid}:{call.step}")
        .values(response=twiml)
    )


async def _perform(
    uow: UnitOfWork, agency: Agency, call: VoiceCall, move: VoiceMove, now: datetime, cutoff: timedelta
) -> str:
    lang = move.state.language

    def say(key: str, **values: object) -> str:
        return spoken(key, lang, agency=agency.name, **values)

    def menu() -> str:
        return f"{say('menu')} {say('menu_switch')}"

    if move.action == "request_callback":
        windows = _window(move.window, agency.timezone, now)
        asked = await callbacks.request_callback(
            uow,
            callbacks.RequestCallback(
                PhoneOwner(call.phone), Channel.VOICE, agency.id, call.phone, language=lang, windows=windows
            ),
            now=now,
        )
        planned = asked.request.scheduled_at
        return (
            say("callback_planned", when=when(planned, agency.timezone, lang))
            if planned
            else say("callback_noted")
        )
    if move.action in ("read_next", "find_next", "cancel_next"):
        appointment = await next_appointment(uow, agency.id, call.phone, now)
        if appointment is None:
            return f"{say('no_appointment')} {menu()}" if not move.hang_up else say("no_appointment")
        at = when(appointment.starts_at, agency.timezone, lang)
        if move.action == "read_next":
            mode = MODES[lang].get(appointment.mode, appointment.mode)
            return f"{say('read_next', when=at, mode=mode)} {menu()}"
        if move.action == "find_next":
            return say("confirm_cancel", when=at)
        try:
            async with uow.session.begin_nested():
                await booking.cancel_appointment(
                    uow,
                    booking.CancelAppointment(
                        PhoneOwner(call.phone), Channel.VOICE, appointment.id, reason="voice"
                    ),
                    now=now,
                    cutoff=cutoff,
                )
        except Conflict:
            return say("too_late")
        except DomainError:
            return say("no_appointment")
        return say("cancelled", when=at)
    if move.say == "menu":
        return menu()
    return say(move.say)


def _window(name: str | None, tz: str, now: datetime) -> tuple[tuple[datetime, datetime], ...]:
    """The next morning or afternoon (agency local time) still ahead; any time: no window."""
    if name is None:
        return ()
    start, end = WINDOWS[name]
    zone = ZoneInfo(tz)
    day = now.astimezone(zone).date()
    for offset in range(8):
        candidate = day + timedelta(days=offset)
        if candidate.weekday() >= 5:
            continue
        ends = datetime.combine(candidate, end, tzinfo=zone).astimezone(UTC)
        if ends > now + timedelta(minutes=30):
            return ((datetime.combine(candidate, start, tzinfo=zone).astimezone(UTC), ends),)
    return ()
