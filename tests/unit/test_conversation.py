"""The SMS conversation core: keywords in both languages, choices, yes/no, expiry, opt-out."""

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.scheduling.conversation import (
    Conversation,
    Intent,
    Offer,
    confirming_cancel,
    idle,
    offering,
    parse,
    step,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OFFERS = tuple(Offer(f"hold-{i}", NOW + timedelta(hours=i), "c1", "in_person") for i in (1, 2, 3))


@pytest.mark.parametrize(
    ("text", "intent", "language", "argument"),
    [
        ("RDV", Intent.BOOK, "fr", ""),
        ("rdv inscription", Intent.BOOK, "fr", "inscription"),
        ("Bonjour je voudrais un Rendez-vous svp", Intent.BOOK, "fr", "svp"),
        ("book CV workshop", Intent.BOOK, "en", "cv workshop"),
        ("Annuler", Intent.CANCEL, "fr", ""),
        ("CANCEL please", Intent.CANCEL, "en", "please"),
        ("déplacer", Intent.MOVE, "fr", ""),
        ("DÉPLACER mon rdv", Intent.MOVE, "fr", "mon rdv"),
        ("move", Intent.MOVE, "en", ""),
        ("rappel", Intent.CALLBACK, "fr", ""),
        ("Callback", Intent.CALLBACK, "en", ""),
        ("file", Intent.QUEUE, "fr", ""),
        ("queue", Intent.QUEUE, "en", ""),
        ("STOP", Intent.STOP, None, ""),
        ("arrêt", Intent.STOP, "fr", ""),
        ("Start", Intent.START, None, ""),
        ("aide", Intent.HELP, "fr", ""),
        ("HELP", Intent.HELP, "en", ""),
        ("oui", Intent.YES, "fr", ""),
        ("Yes!", Intent.YES, "en", ""),
        ("non merci", Intent.NO, "fr", "merci"),
        ("", Intent.UNKNOWN, None, ""),
        ("🙂", Intent.UNKNOWN, None, ""),
        ("je ne veux pas arrêter", Intent.UNKNOWN, None, ""),  # STOP counts only as the first word
    ],
)
def test_parse(text, intent, language, argument):
    parsed = parse(text)
    assert (parsed.intent, parsed.language, parsed.argument) == (intent, language, argument)


def test_a_number_is_a_choice():
    assert parse(" 2 ").choice == 2 and parse("2.").intent is Intent.CHOICE
    assert parse("3 svp").choice == 3


def test_a_valid_choice_books_it_and_releases_the_others():
    state = offering(
        Conversation(), OFFERS, purpose="book", until=NOW + timedelta(minutes=10), service_id="s"
    )
    move = step(state, parse("2"), NOW)
    assert move.action == "book_offer" and move.offer == OFFERS[1]
    assert move.release == ("hold-1", "hold-3")


@pytest.mark.parametrize("text", ["0", "4", "12", "oui", "blabla"])
def test_a_bad_choice_repeats_the_offers_and_keeps_them(text):
    state = offering(Conversation(), OFFERS, purpose="book", until=NOW + timedelta(minutes=10))
    move = step(state, parse(text), NOW)
    assert (move.action, move.release, move.state) == ("repeat_offers", (), state)


def test_offers_expire_with_the_conversation():
    state = offering(
        Conversation("choosing", "en"), OFFERS, purpose="book", until=NOW + timedelta(minutes=10)
    )
    move = step(state, parse("1"), NOW + timedelta(minutes=10))
    assert move.action == "offers_expired" and move.state.language == "en"


def test_a_new_keyword_abandons_the_offers():
    state = offering(Conversation(), OFFERS, purpose="book", until=NOW + timedelta(minutes=10))
    move = step(state, parse("FILE"), NOW)
    assert move.action == "join_queue" and move.release == ("hold-1", "hold-2", "hold-3")
    stop = step(state, parse("STOP"), NOW)
    assert stop.action == "opt_out" and len(stop.release) == 3


def test_help_keeps_the_offers_open():
    state = offering(Conversation(), OFFERS, purpose="book", until=NOW + timedelta(minutes=10))
    move = step(state, parse("AIDE"), NOW)
    assert (move.action, move.release, move.state.offers) == ("help", (), OFFERS)


def test_cancel_needs_a_yes():
    asking = confirming_cancel(Conversation(), "appt-1", until=NOW + timedelta(minutes=10))
    assert step(asking, parse("OUI"), NOW).action == "confirm_cancel"
    assert step(asking, parse("yes"), NOW).state.language == "en"
    assert step(asking, parse("non"), NOW).action == "keep_appointment"
    assert step(asking, parse("peut-être"), NOW).action == "ask_again"
    assert step(asking, parse("OUI"), NOW + timedelta(minutes=10)).action == "help"  # expired


def test_idle_answers():
    assert step(Conversation(), parse("1"), NOW).action == "offers_expired"
    assert step(Conversation(), parse("oui"), NOW).action == "help"
    assert step(Conversation(), parse("n'importe quoi"), NOW).action == "help"
    assert step(Conversation(), parse("RDV atelier"), NOW).argument == "atelier"


def test_the_keyword_language_sticks_to_the_conversation():
    move = step(Conversation(language="fr"), parse("BOOK"), NOW)
    assert move.state.language == "en"
    assert idle(move.state).language == "en"


def test_state_round_trips_through_json():
    state = offering(
        Conversation(language="en"), OFFERS, purpose="move", until=NOW, appointment_id="a", service_id="s"
    )
    assert Conversation.from_json(state.to_json()) == state
    assert Conversation.from_json({}, "en") == Conversation(language="en")
