"""SMS encoding and segments (Twilio's calculator table), and every template within budget."""

from datetime import UTC, datetime

import pytest

from orchestrator.scheduling.sms import forcing_ucs2, shape
from orchestrator.services import messages


@pytest.mark.parametrize(
    ("body", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),  # multipart: 153 a segment
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("à é è ù Ç É ö ü", "GSM-7", 15, 1),  # French accents that GSM-7 has
        ("€" * 80, "GSM-7", 160, 1),  # extension characters cost two septets
        ("€" * 81, "GSM-7", 162, 2),
        ("reçu", "UCS-2", 4, 1),  # ç forces UCS-2 for the whole message
        ("être", "UCS-2", 4, 1),
        ("l\u2019agence", "UCS-2", 8, 1),  # the typographic apostrophe
        ("9\u00a0h", "UCS-2", 3, 1),  # a non-breaking space
        ("ô" * 70, "UCS-2", 70, 1),
        ("ô" * 71, "UCS-2", 71, 2),  # multipart UCS-2: 67 a segment
        ("ô" * 135, "UCS-2", 135, 3),
        ("😀", "UCS-2", 2, 1),  # outside the BMP: a surrogate pair
    ],
)
def test_encoding_and_segments(body, encoding, units, segments):
    got = shape(body)
    assert (got.encoding, got.units, got.segments) == (encoding, units, segments)


def test_forcing_ucs2_names_the_culprits():
    assert forcing_ucs2("Votre RDV à l\u2019agence, reçu") == "ç\u2019"
    assert forcing_ucs2("Votre RDV à l'agence") == ""


LONG = {"agency": "France Travail Agence de Saint-Denis-la-Plaine", "number": "A123", "minutes": 125}


def _rendered(kind: str, language: str) -> str:
    if kind.startswith("ticket."):
        return messages.ticket_text(
            kind, language=language, agency=LONG["agency"], number="A123", desk="Guichet 12", minutes=125
        )
    link = None if kind.endswith(".sms") else "https://rdv.francetravail.example.fr/m/" + "x" * 43
    return messages.appointment_text(
        kind.removesuffix(".sms"),
        language=language,
        agency=LONG["agency"],
        tz="Europe/Paris",
        starts_at=datetime(2026, 9, 30, 14, 45, tzinfo=UTC),  # a long weekday and month
        mode="in_person",
        link=link,
    )


@pytest.mark.parametrize("language", messages.LANGUAGES)
@pytest.mark.parametrize("kind", sorted(messages.SEGMENT_BUDGET))
def test_every_template_stays_gsm7_and_within_its_segment_budget(kind, language):
    body = _rendered(kind, language)
    assert forcing_ucs2(body) == "", (kind, language, body)
    assert shape(body).segments <= messages.SEGMENT_BUDGET[kind], (kind, language, shape(body), body)


@pytest.mark.parametrize("language", messages.LANGUAGES)
def test_every_reply_is_gsm7(language):
    for key, template in messages.REPLIES[language].items():
        assert forcing_ucs2(template) == "", (key, template)


def test_dates_are_written_as_people_read_them_in_the_agency_zone():
    moment = datetime(2026, 3, 29, 7, 30, tzinfo=UTC)  # the day clocks go forward in Paris
    assert messages.when(moment, "Europe/Paris", "fr") == "dimanche 29 mars à 9h30"
    assert messages.when(moment, "Europe/Paris", "en") == "Sunday 29 March at 9:30"
    assert messages.when(moment, "Indian/Reunion", "fr") == "dimanche 29 mars à 11h30"
    assert (
        messages.when(datetime(2026, 8, 3, 7, 0, tzinfo=UTC), "Europe/Paris", "fr") == "lundi 3 aout à 9h00"
    )


def test_unknown_languages_fall_back_to_french():
    assert messages.language_of("en-GB") == "en"
    assert messages.language_of("ar") == "fr"
    assert messages.language_of(None) == "fr"
