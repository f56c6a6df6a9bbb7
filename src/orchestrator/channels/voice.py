"""Voice channel: Twilio's voice webhooks, answered with TwiML (``VoiceResponse`` + ``Gather``).

``POST /webhooks/twilio/voice`` answers a call with the menu; ``POST /webhooks/twilio/voice/gather``
receives each key pressed. Both are signed and checked like the SMS webhook (forged → 403,
nothing stored). The menu's state travels in the ``action`` URL we give Twilio — Twilio signs
that URL when it posts back, so the state is as trustworthy as the rest of the request.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, Response, post
from litestar.params import QueryParameter
from twilio.twiml.voice_response import Gather, VoiceResponse

from orchestrator.channels.http import Clock, Config, UoW
from orchestrator.channels.openapi import problems
from orchestrator.channels.sms import verified_form
from orchestrator.errors import Invalid
from orchestrator.scheduling.voice_menu import CallState
from orchestrator.services.callbacks import record_call_status
from orchestrator.services.messages import SPEECH_LANGUAGE
from orchestrator.services.voice import VoiceCall, VoiceReply, handle_call, remember
from orchestrator.settings import Settings

GATHER = "/webhooks/twilio/voice/gather"
Step = Annotated[str, QueryParameter(pattern="^(menu|when|confirm_cancel)$")]
Lang = Annotated[str, QueryParameter(pattern="^(fr|en)$")]
Small = Annotated[int, QueryParameter(ge=0, le=50)]


def _caller(form: Any) -> tuple[str, str, str]:
    values = []
    for name in ("CallSid", "From", "To"):
        value = form.get(name)
        if not isinstance(value, str) or not value.strip():
            raise Invalid(name, "required")
        values.append(value.strip())
    if not values[1].startswith("+") or not values[1][1:].isdigit():
        raise Invalid("From", "an E.164 phone number is required")
    return values[0], values[1], values[2]


def _twiml(reply: VoiceReply, settings: Settings, step: int) -> str:
    response = VoiceResponse()
    voice_language = SPEECH_LANGUAGE[reply.language]
    if reply.state is None:
        response.say(reply.say, language=voice_language)
        response.hangup()
        return str(response)
    query = urlencode(
        {"s": reply.state.step, "l": reply.state.language, "t": reply.state.tries, "n": step + 1}
    )
    action = f"{settings.public_base_url.rstrip('/')}{GATHER}?{query}"
    gather = Gather(
        input="dtmf", num_digits=1, action=action, method="POST", timeout=6, language=voice_language
    )
    gather.say(reply.say, language=voice_language)
    response.append(gather)
    response.redirect(action, method="POST")  # no key pressed: the same step hears silence
    return str(response)


async def _answer(
    request: Request[Any, Any, Any],
    uow: Any,
    settings: Settings,
    now: Any,
    state: CallState | None,
    step: int,
) -> Response[str]:
    form = await verified_form(request, settings)
    call_sid, phone, to = _caller(form)
    digits = form.get("Digits") if isinstance(form.get("Digits"), str) else None
    call = VoiceCall(call_sid, phone, to, step, state, digits)
    reply, stored = await handle_call(
        uow, call, now=now, cutoff=timedelta(minutes=settings.cancel_cutoff_minutes)
    )
    if stored is not None:
        return Response(stored, media_type="application/xml")
    twiml = _twiml(reply, settings, step)
    await remember(uow, call, twiml)
    return Response(twiml, media_type="application/xml")


@post("/webhooks/twilio/voice", status_code=200, media_type="application/xml", responses=problems(403, 422))
async def incoming_call(
    request: Request[Any, Any, Any], uow: UoW, settings: Config, clock: Clock
) -> Response[str]:
    """A call comes in: the menu (French; 9 for English)."""
    return await _answer(request, uow, settings, clock(), None, 0)


@post(GATHER, status_code=200, media_type="application/xml", responses=problems(403, 422))
async def gathered(
    request: Request[Any, Any, Any],
    uow: UoW,
    settings: Config,
    clock: Clock,
    s: Step = "menu",
    l: Lang = "fr",  # noqa: E741 (Twilio posts back to the URL we gave it: short names)
    t: Small = 0,
    n: Small = 1,
) -> Response[str]:
    """A key pressed (``Digits``), or silence, in the step named by the query."""
    return await _answer(request, uow, settings, clock(), CallState(s, l, t), n)


@post("/webhooks/twilio/call-status", status_code=204, responses=problems(403, 422))
async def call_status(
    request: Request[Any, Any, Any],
    uow: UoW,
    settings: Config,
    c: Annotated[uuid.UUID, QueryParameter(description="the callback this call is for")],
) -> None:
    """Status callbacks of a click-to-call (signed): ringing, in-progress, completed, busy…"""
    form = await verified_form(request, settings)
    sid, status = form.get("CallSid"), form.get("CallStatus")
    if not isinstance(sid, str) or not sid or not isinstance(status, str) or not status:
        raise Invalid("CallStatus", "CallSid and CallStatus are required")
    await record_call_status(uow, c, sid, status)


HANDLERS = [incoming_call, gathered, call_status]
