"""The manage link a job seeker receives (``/m/{token}``): their appointment, and a button to
cancel it. Server-rendered HTML that works without JavaScript on any phone's browser; the token
in the link is the only credential (as with the ``X-Manage-Token`` header of the API)."""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any

from litestar import Response, get, post
from litestar.enums import MediaType
from litestar.params import FromPath
from litestar.response import Redirect

from orchestrator.channels.http import Clock, Config, UoW
from orchestrator.errors import DomainError
from orchestrator.services import booking
from orchestrator.services.appointments import appointment_by_token
from orchestrator.services.commands import Channel, ManageTokenHolder
from orchestrator.services.messages import MODES, language_of, when
from orchestrator.services.queue_common import agency_of
from orchestrator.settings import Settings

TEXT = {
    "fr": {
        "title": "Votre rendez-vous",
        "confirmed": "Votre rendez-vous est confirmé.",
        "cancelled": "Ce rendez-vous est annulé.",
        "other": "Ce rendez-vous n'est plus modifiable en ligne.",
        "cancel": "Annuler ce rendez-vous",
        "late": "Pour le changer maintenant, appelez l'agence.",
        "unknown": "Ce lien ne correspond à aucun rendez-vous.",
    },
    "en": {
        "title": "Your appointment",
        "confirmed": "Your appointment is confirmed.",
        "cancelled": "This appointment is cancelled.",
        "other": "This appointment can no longer be changed online.",
        "cancel": "Cancel this appointment",
        "late": "To change it now, please call the agency.",
        "unknown": "This link does not match any appointment.",
    },
}
POLICY = "; ".join(
    [
        "default-src 'none'",
        "style-src 'unsafe-inline'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
STYLE = (
    "body{font-family:Verdana,Arial,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;"
    "font-size:1.15rem;line-height:1.5}button{font-size:1.1rem;padding:.7rem 1rem;border:2px solid #000;"
    "background:#fff;cursor:pointer}button:focus{outline:3px solid #0050b3}"
)


def _page(language: str, title: str, body: str, status: int = 200) -> Response[str]:
    page = (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{html.escape(title)}</title><style>{STYLE}</style>'
        f"</head><body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    headers = {
        "Content-Security-Policy": POLICY,
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
    }
    return Response(page, status_code=status, media_type=MediaType.HTML, headers=headers)


@get("/m/{token:str}", media_type=MediaType.HTML, include_in_schema=False)
async def manage_page(token: FromPath[str], uow: UoW, settings: Config, clock: Clock) -> Response[str]:
    """The appointment behind a manage link, with a cancel button while it can be cancelled."""
    try:
        appointment, seeker = await appointment_by_token(uow, token)
    except DomainError:
        return _page("fr", TEXT["fr"]["title"], f"<p>{TEXT['fr']['unknown']}</p>", status=404)
    agency = await agency_of(uow, appointment.agency_id)
    lang = language_of(seeker.language)
    text = TEXT[lang]
    state = (
        text.get(appointment.status, text["other"])
        if appointment.status in ("confirmed", "cancelled")
        else text["other"]
    )
    details = (
        f"<p><strong>{html.escape(agency.name)}</strong><br>"
        f"{html.escape(when(appointment.starts_at, agency.timezone, lang))}, "
        f"{html.escape(MODES[lang].get(appointment.mode, appointment.mode))}</p><p>{state}</p>"
    )
    if appointment.status == "confirmed":
        cutoff_passed = clock() > appointment.starts_at - _cutoff(settings)
        action = f"/m/{html.escape(token)}/cancel"
        button = (
            f'<form method="post" action="{action}"><button type="submit">{text["cancel"]}</button></form>'
        )
        details += f"<p>{text['late']}</p>" if cutoff_passed else button
    return _page(lang, text["title"], details)


def _cutoff(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.cancel_cutoff_minutes)


@post("/m/{token:str}/cancel", include_in_schema=False, status_code=303)
async def cancel_from_link(token: FromPath[str], uow: UoW, settings: Config, clock: Clock) -> Response[Any]:
    """Cancel, then show the page again (303: reloading does not post twice)."""
    try:
        appointment, _ = await appointment_by_token(uow, token)
        await booking.cancel_appointment(
            uow,
            booking.CancelAppointment(
                ManageTokenHolder(token), Channel.WEB, appointment.id, reason="manage link"
            ),
            now=clock(),
            cutoff=_cutoff(settings),
        )
    except DomainError:
        pass  # unknown link or past the cut-off: the page says so
    return Redirect(f"/m/{token}", status_code=303)


HANDLERS = [manage_page, cancel_from_link]
