"""The voice line's keypad menu: what a key means in each step of the call. Pure.

Steps: ``menu`` (1 — be called back, 2 — hear your next appointment, 3 — cancel it, 0 — repeat,
9 — English / French); ``when`` (after 1: 1 — morning, 2 — afternoon, 3 — any time);
``confirm_cancel`` (after 3: 1 — yes, 2 — no). A key that means nothing, or silence, repeats the
step once; a second time the call ends politely. The state travels in the URL Twilio posts the
next key to (Twilio signs that URL), so the menu needs no storage.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

MAX_TRIES = 2  # a step heard this many times without a valid key ends the call


@dataclass(frozen=True, slots=True)
class CallState:
    step: str = "menu"  # menu | when | confirm_cancel
    language: str = "fr"
    tries: int = 0


@dataclass(frozen=True, slots=True)
class VoiceMove:
    """What to do and say: ``action`` for the service (or "" for none), then ``say`` (a prompt
    key) and, unless ``hang_up``, gather the next key in ``state``."""

    action: str  # "", "request_callback", "read_next", "find_next", "cancel_next"
    say: str
    state: CallState
    hang_up: bool = False
    window: str | None = None  # request_callback: "morning", "afternoon" or None (any time)


def answer(state: CallState) -> VoiceMove:
    """The first thing said when the call is answered."""
    return VoiceMove("", "menu", state)


def press(state: CallState, digits: str | None) -> VoiceMove:
    """The move for ``digits`` (None: silence) pressed in ``state``."""
    key = (digits or "").strip()[:1]
    fresh = replace(state, tries=0)
    if state.step == "menu":
        if key == "1":
            return VoiceMove("", "when", replace(fresh, step="when"))
        if key == "2":
            return VoiceMove("read_next", "menu", fresh)
        if key == "3":
            return VoiceMove("find_next", "confirm_cancel", replace(fresh, step="confirm_cancel"))
        if key == "0":
            return VoiceMove("", "menu", fresh)
        if key == "9":
            return VoiceMove("", "menu", replace(fresh, language="en" if state.language == "fr" else "fr"))
    elif state.step == "when":
        windows = {"1": "morning", "2": "afternoon", "3": None}
        if key in windows:
            return VoiceMove("request_callback", "callback_noted", fresh, hang_up=True, window=windows[key])
    elif state.step == "confirm_cancel":
        if key == "1":
            return VoiceMove("cancel_next", "cancelled", fresh, hang_up=True)
        if key == "2":
            return VoiceMove("", "menu", replace(fresh, step="menu"))
    return _again(state)


def _again(state: CallState) -> VoiceMove:
    tries = state.tries + 1
    if tries >= MAX_TRIES:
        return VoiceMove("", "goodbye", replace(state, tries=tries), hang_up=True)
    return VoiceMove(
        "", state.step if state.step != "confirm_cancel" else "confirm_cancel", replace(state, tries=tries)
    )
