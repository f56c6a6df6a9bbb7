"""The SMS conversation: what a text means, given what was said before. Pure and stateless.

:func:`parse` reads a text: keywords are case- and accent-insensitive and may come with other
words ("bonjour je voudrais un rdv svp"). French and English keywords set the reply language.
STOP / START / HELP are honoured in every state. :func:`step` maps (state, text, now) to one
:class:`Move` — the action the service performs and how the state changes — and never fails:
anything not understood is ``Help``, never silence.

States: ``idle``; ``choosing`` (slots were offered, each held until ``expires_at``; the purpose is
booking or moving an appointment); ``confirming_cancel`` (a yes/no question about one
appointment). A state past ``expires_at`` is idle again.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class Intent(StrEnum):
    BOOK = "book"
    CANCEL = "cancel"
    MOVE = "move"
    CALLBACK = "callback"
    QUEUE = "queue"
    STOP = "stop"
    START = "start"
    HELP = "help"
    CHOICE = "choice"
    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


KEYWORDS: dict[str, tuple[Intent, str | None]] = {
    "RDV": (Intent.BOOK, "fr"),
    "RENDEZVOUS": (Intent.BOOK, "fr"),
    "RENDEZ": (Intent.BOOK, "fr"),
    "BOOK": (Intent.BOOK, "en"),
    "APPOINTMENT": (Intent.BOOK, "en"),
    "ANNULER": (Intent.CANCEL, "fr"),
    "ANNULE": (Intent.CANCEL, "fr"),
    "ANNULATION": (Intent.CANCEL, "fr"),
    "CANCEL": (Intent.CANCEL, "en"),
    "DEPLACER": (Intent.MOVE, "fr"),
    "REPORTER": (Intent.MOVE, "fr"),
    "CHANGER": (Intent.MOVE, "fr"),
    "MOVE": (Intent.MOVE, "en"),
    "RESCHEDULE": (Intent.MOVE, "en"),
    "RAPPEL": (Intent.CALLBACK, "fr"),
    "RAPPELER": (Intent.CALLBACK, "fr"),
    "RAPPELEZ": (Intent.CALLBACK, "fr"),
    "CALLBACK": (Intent.CALLBACK, "en"),
    "FILE": (Intent.QUEUE, "fr"),
    "QUEUE": (Intent.QUEUE, "en"),
    "TICKET": (Intent.QUEUE, None),
    "AIDE": (Intent.HELP, "fr"),
    "HELP": (Intent.HELP, "en"),
    "INFO": (Intent.HELP, None),
    "OUI": (Intent.YES, "fr"),
    "YES": (Intent.YES, "en"),
    "NON": (Intent.NO, "fr"),
    "NO": (Intent.NO, "en"),
}
# opt-out keywords count only as the first word ("je ne veux pas arreter" must not unsubscribe)
FIRST_WORD: dict[str, tuple[Intent, str | None]] = {
    "STOP": (Intent.STOP, None),
    "STOPALL": (Intent.STOP, None),
    "ARRET": (Intent.STOP, "fr"),
    "ARRETER": (Intent.STOP, "fr"),
    "UNSUBSCRIBE": (Intent.STOP, "en"),
    "START": (Intent.START, None),
    "UNSTOP": (Intent.START, "en"),
}
CHOICES = 3


@dataclass(frozen=True, slots=True)
class Parsed:
    intent: Intent
    language: str | None = None  # the language the keyword belongs to, if any
    argument: str = ""  # the words after the keyword, normalized ("RDV inscription" → "inscription")
    choice: int | None = None


def normalize(text: str) -> list[str]:
    """Upper-case words without accents or punctuation."""
    stripped = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    cleaned = "".join(c if c.isalnum() else " " for c in stripped.upper())
    return cleaned.split()


def parse(text: str) -> Parsed:
    """What ``text`` asks for (see the module doc)."""
    words = normalize(text)
    if not words:
        return Parsed(Intent.UNKNOWN)
    if words[0] in FIRST_WORD:
        intent, language = FIRST_WORD[words[0]]
        return Parsed(intent, language)
    if words[0].isdigit() and len(words[0]) <= 2:
        return Parsed(Intent.CHOICE, choice=int(words[0]))
    for index, word in enumerate(words):
        if word in KEYWORDS:
            intent, language = KEYWORDS[word]
            if word == "RENDEZ" and words[index + 1 : index + 2] == ["VOUS"]:
                index += 1
            return Parsed(intent, language, " ".join(words[index + 1 :]).lower())
    return Parsed(Intent.UNKNOWN)


@dataclass(frozen=True, slots=True)
class Offer:
    """One slot offered by SMS, held for the person while the conversation lasts."""

    hold_id: str
    starts_at: datetime
    counsellor_id: str
    mode: str


@dataclass(frozen=True, slots=True)
class Conversation:
    step: str = "idle"  # idle | choosing | confirming_cancel
    language: str = "fr"
    purpose: str | None = None  # choosing: "book" or "move"
    service_id: str | None = None
    appointment_id: str | None = None  # moving or confirming the cancellation of this one
    offers: tuple[Offer, ...] = field(default_factory=tuple)
    expires_at: datetime | None = None

    def live(self, now: datetime) -> Conversation:
        """This state, or idle (same language) once it has expired."""
        if self.step != "idle" and self.expires_at is not None and now >= self.expires_at:
            return Conversation(language=self.language)
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "language": self.language,
            "purpose": self.purpose,
            "service_id": self.service_id,
            "appointment_id": self.appointment_id,
            "offers": [
                {
                    "hold_id": o.hold_id,
                    "starts_at": o.starts_at.isoformat(),
                    "counsellor_id": o.counsellor_id,
                    "mode": o.mode,
                }
                for o in self.offers
            ],
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None, language: str = "fr") -> Conversation:
        if not data or "step" not in data:
            return cls(language=language)
        return cls(
            step=data["step"],
            language=data.get("language") or language,
            purpose=data.get("purpose"),
            service_id=data.get("service_id"),
            appointment_id=data.get("appointment_id"),
            offers=tuple(
                Offer(o["hold_id"], datetime.fromisoformat(o["starts_at"]), o["counsellor_id"], o["mode"])
                for o in data.get("offers", [])
            ),
            expires_at=datetime.fromisoformat(data["expires_at"]) if data.get("expires_at") else None,
        )


# --- moves: what the service does ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Move:
    """An action for the service. ``state`` is the conversation it starts from (language set);
    ``release`` are holds to give back (offers abandoned)."""

    action: str  # one of ACTIONS
    state: Conversation
    argument: str = ""
    offer: Offer | None = None
    release: tuple[str, ...] = ()


ACTIONS = (
    "offer_slots",  # find and hold up to 3 slots (argument: a service word)
    "book_offer",  # book ``offer`` (purpose book) or move the appointment to it (purpose move)
    "repeat_offers",  # a bad choice: show the same offers again
    "offers_expired",  # a number, but nothing is on offer (any more)
    "ask_cancel",  # find the next appointment and ask yes/no
    "confirm_cancel",  # cancel ``state.appointment_id``
    "keep_appointment",  # the answer was no
    "ask_again",  # neither yes nor no to a yes/no question
    "offer_move",  # find the next appointment and offer slots to move it
    "request_callback",
    "join_queue",  # argument: a service word
    "opt_out",
    "opt_in",
    "help",
)


def step(state: Conversation, parsed: Parsed, now: datetime) -> Move:
    """The move for ``parsed`` in ``state`` at ``now`` (see the module doc)."""
    state = state.live(now)
    if parsed.language is not None:
        state = replace(state, language=parsed.language)
    release = tuple(o.hold_id for o in state.offers)
    simple = {
        Intent.STOP: "opt_out",
        Intent.START: "opt_in",
        Intent.CANCEL: "ask_cancel",
        Intent.MOVE: "offer_move",
        Intent.CALLBACK: "request_callback",
        Intent.QUEUE: "join_queue",
        Intent.BOOK: "offer_slots",
    }
    if parsed.intent is Intent.HELP:
        return Move("help", state)  # offers and questions stay open
    if parsed.intent in simple:
        return Move(simple[parsed.intent], state, parsed.argument, release=release)
    if state.step == "choosing":
        if (
            parsed.intent is Intent.CHOICE
            and parsed.choice is not None
            and 1 <= parsed.choice <= len(state.offers)
        ):
            chosen = state.offers[parsed.choice - 1]
            return Move(
                "book_offer", state, offer=chosen, release=tuple(h for h in release if h != chosen.hold_id)
            )
        return Move("repeat_offers", state)
    if state.step == "confirming_cancel":
        if parsed.intent is Intent.YES:
            return Move("confirm_cancel", state)
        if parsed.intent is Intent.NO:
            return Move("keep_appointment", state)
        return Move("ask_again", state)
    if parsed.intent is Intent.CHOICE:
        return Move("offers_expired", state)
    return Move("help", state)


def offering(
    state: Conversation, offers: tuple[Offer, ...], *, purpose: str, until: datetime, **ids: str | None
) -> Conversation:
    """The state after offering ``offers`` (held until ``until``)."""
    return Conversation(
        "choosing", state.language, purpose, ids.get("service_id"), ids.get("appointment_id"), offers, until
    )


def confirming_cancel(state: Conversation, appointment_id: str, *, until: datetime) -> Conversation:
    return Conversation("confirming_cancel", state.language, appointment_id=appointment_id, expires_at=until)


def idle(state: Conversation) -> Conversation:
    return Conversation(language=state.language)
