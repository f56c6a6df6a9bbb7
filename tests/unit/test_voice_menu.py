"""The voice line's keypad menu: every key in every step, silence, and giving up politely."""

import pytest

from orchestrator.scheduling.voice_menu import CallState, VoiceMove, answer, press

MENU = CallState()


def test_answering_says_the_menu():
    assert answer(MENU) == VoiceMove("", "menu", MENU)


@pytest.mark.parametrize(
    ("key", "action", "say", "step"),
    [
        ("1", "", "when", "when"),
        ("2", "read_next", "menu", "menu"),
        ("3", "find_next", "confirm_cancel", "confirm_cancel"),
        ("0", "", "menu", "menu"),
    ],
)
def test_menu_keys(key, action, say, step):
    move = press(MENU, key)
    assert (move.action, move.say, move.state.step, move.hang_up) == (action, say, step, False)


def test_nine_switches_language_both_ways():
    english = press(MENU, "9").state
    assert english.language == "en"
    assert press(english, "9").state.language == "fr"


@pytest.mark.parametrize(("key", "window"), [("1", "morning"), ("2", "afternoon"), ("3", None)])
def test_when_to_call_back(key, window):
    move = press(CallState("when"), key)
    assert (move.action, move.window, move.hang_up) == ("request_callback", window, True)


def test_cancel_needs_a_confirmation_key():
    asking = CallState("confirm_cancel", "en")
    assert press(asking, "1") == VoiceMove("cancel_next", "cancelled", asking, hang_up=True)
    back = press(asking, "2")
    assert (back.action, back.say, back.state.step, back.state.language) == ("", "menu", "menu", "en")


@pytest.mark.parametrize("state", [MENU, CallState("when"), CallState("confirm_cancel")])
def test_silence_or_a_wrong_key_repeats_once_then_ends(state):
    first = press(state, None)
    assert (first.say, first.state.tries, first.hang_up) == (state.step, 1, False)
    second = press(first.state, "8")
    assert (second.say, second.hang_up) == ("goodbye", True)


def test_a_valid_key_resets_the_tries_and_only_the_first_digit_counts():
    confused = press(MENU, "*").state
    assert press(confused, "2").state.tries == 0
    assert press(MENU, "21").action == "read_next"
