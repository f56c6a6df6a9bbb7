"""Two-way SMS through Twilio's signed webhook, on the real database: a person with a basic
phone books, moves, cancels, asks for a callback, joins the queue, and opts out — in French and
in English. Webhooks are signed with the SDK's own ``RequestValidator``."""

from __future__ import annotations

import uuid
from typing import Any
from xml.etree import ElementTree

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from orchestrator.channels.twilio import LOCAL_AUTH_TOKEN
from orchestrator.models import Appointment, CallbackRequest, Claim, InboundEvent, Notification, PhoneContact
from tests.helpers import ADMIN, assert_problem, make_agency, make_counsellor, make_rule, make_service

AGENCY_NUMBER = "+33700000001"
PHONE = "+33612345678"
BASE = "http://127.0.0.1:8000"  # the settings' public base URL: what Twilio signs


def signed(path: str, params: dict[str, str], token: str = LOCAL_AUTH_TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(BASE + path, params)}


class Phone:
    """A job seeker's basic phone, texting the agency through Twilio."""

    def __init__(self, client: Any, number: str = PHONE) -> None:
        self.client, self.number, self.sent = client, number, 0

    async def text(self, body: str, **extra: str) -> str:
        self.sent += 1
        params = {
            "MessageSid": f"SM{uuid.uuid4().hex}",
            "AccountSid": "AC" + "0" * 32,
            "From": self.number,
            "To": AGENCY_NUMBER,
            "Body": body,
            "NumMedia": "0",
            **extra,
        }
        response = await self.client.post(
            "/webhooks/twilio/sms", data=params, headers=signed("/webhooks/twilio/sms", params)
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/xml")
        messages = ElementTree.fromstring(response.text).findall("Message")
        return messages[0].text or "" if messages else ""


@pytest.fixture
async def world(client: Any) -> dict[str, Any]:
    agency = await make_agency(client, name="France Travail Lyon")
    hours = {str(day): [["07:30", "17:00"]] for day in range(5)}
    r = await client.patch(
        f"/api/v1/agencies/{agency['id']}",
        json={"sms_number": AGENCY_NUMBER, "opening_hours": hours},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    assert r.json()["sms_number"] == AGENCY_NUMBER
    counsellor = await make_counsellor(client, agency["id"])
    for day in range(5):
        await make_rule(client, counsellor["id"], weekday=day, start="09:00", end="12:00")
    service = await make_service(client, agency["id"], name="Inscription")
    return {"agency": agency, "counsellor": counsellor, "service": service}


async def test_book_by_sms_holds_three_slots_and_books_the_chosen_one(client, world, sessions):
    phone = Phone(client)
    offers = await phone.text("Bonjour, je voudrais un rdv svp")
    assert "Répondez 1, 2 ou 3" in offers and "1) lundi 2 mars à 9h00" in offers
    assert "3)" in offers
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Claim).where(Claim.kind == "hold")) == 3
    confirmed = await phone.text(" 2 ")
    assert confirmed.startswith("RDV confirmé lundi 2 mars à 11h00"), confirmed
    async with sessions() as session:
        appointment = (await session.scalars(select(Appointment))).one()
        kinds = sorted((await session.scalars(select(Claim.kind))).all())
        notes = (await session.scalars(select(Notification))).all()
    assert (appointment.channel, appointment.created_by) == ("sms", "job_seeker:phone")
    assert kinds == ["appointment"]  # the two other holds were given back
    # the reply was the confirmation: no SMS copy, but the reminders are queued
    assert sorted(n.kind for n in notes) == ["appointment.reminder"]


async def test_english_keywords_answer_in_english_and_bad_choices_repeat_the_offers(client, world):
    phone = Phone(client)
    offers = await phone.text("BOOK")
    assert offers.startswith("France Travail Lyon, Inscription. Reply 1, 2 or 3")
    again = await phone.text("7")
    assert again.startswith("Reply 1, 2 or 3") and "1) Monday 2 March at 9:00" in again
    await make_service(client, world["agency"]["id"], name="Atelier CV")
    assert await phone.text("book yoga") == "Unknown service. Send BOOK followed by: atelier, inscription"
    assert "Atelier CV. Reply 1, 2 or 3" in await phone.text("book atelier please")
    assert (await phone.text("what?")).startswith("Reply 1, 2 or 3")  # the offers are still open
    help_text = await Phone(client, "+33611111111").text("what?")
    assert help_text.startswith("France Travail Lyon: envoyez RDV")  # anything else: help, never silence
    assert (await Phone(client, "+33611111111").text("help")).startswith("France Travail Lyon: send BOOK")


async def test_a_choice_after_the_holds_expired_starts_over(client, world, clock, sessions):
    phone = Phone(client)
    await phone.text("RDV")
    clock.advance(minutes=11)  # holds (and the conversation) last 10 minutes
    assert "ne sont plus gardés" in await phone.text("1")
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Appointment)) == 0


async def test_cancel_asks_yes_or_no_first(client, world, sessions):
    phone = Phone(client)
    await phone.text("RDV")
    await phone.text("3")  # Tuesday 9:00 (Monday's are within the 2-hour cut-off)
    question = await phone.text("annuler")
    assert question == "Annuler votre RDV du mardi 3 mars à 9h00 ? Répondez OUI ou NON."
    assert await phone.text("non") == "Votre RDV du mardi 3 mars à 9h00 est maintenu."
    await phone.text("ANNULER")
    assert await phone.text("Oui") == "Votre RDV du mardi 3 mars à 9h00 est annulé."
    async with sessions() as session:
        appointment = (await session.scalars(select(Appointment))).one()
        kinds = sorted((n.kind, n.status) for n in (await session.scalars(select(Notification))).all())
    assert appointment.status == "cancelled"
    # the reminder is withdrawn, and no SMS copy of the cancellation (the reply said it)
    assert kinds == [("appointment.reminder", "cancelled")]
    assert await phone.text("ANNULER") == "Vous n'avez pas de RDV à venir. Envoyez RDV pour en prendre un."


async def test_move_offers_new_slots_and_moves_the_appointment(client, world, sessions):
    phone = Phone(client)
    await phone.text("RDV")
    await phone.text("3")  # Tuesday 9:00
    offers = await phone.text("deplacer")
    assert "1) lundi 2 mars à 9h00" in offers, offers
    moved = await phone.text("1")
    assert moved.startswith("RDV déplacé au lundi 2 mars à 9h00"), moved
    async with sessions() as session:
        appointment = (await session.scalars(select(Appointment))).one()
        claims = (await session.scalars(select(Claim))).all()
    assert appointment.status == "confirmed" and appointment.sequence == 1
    assert [c.kind for c in claims] == ["appointment"]  # old time and unchosen holds released


async def test_callback_request_and_remote_queue(client, world, sessions):
    phone = Phone(client)
    # placed at once in the counsellor's phone time: the reply says when
    assert (
        await phone.text("RAPPEL")
        == "France Travail Lyon: un conseiller vous appellera le lundi 2 mars à 9h00 environ."
    )
    joined = await phone.text("file")
    assert joined.startswith("Ticket A001: 0 personne(s) avant vous"), joined
    async with sessions() as session:
        request = (await session.scalars(select(CallbackRequest))).one()
    assert (request.status, request.channel) == ("scheduled", "sms")


async def test_stop_is_confirmed_once_and_start_brings_texts_back(client, world, sessions):
    phone = Phone(client)
    await phone.text("RDV")
    await phone.text("3")
    assert (await phone.text("STOP")).startswith("France Travail Lyon: vous ne recevrez plus de SMS")
    assert await phone.text("stop") == ""  # confirmed once only
    assert await phone.text("RDV") == ""  # opted out: only START and HELP are answered
    async with sessions() as session:
        pending = await session.scalar(
            select(func.count()).select_from(Notification).where(Notification.status == "pending")
        )
        contact = await session.get(PhoneContact, PHONE)
    assert pending == 0 and contact is not None and contact.opted_out_at is not None
    assert (await phone.text("START")).startswith("France Travail Lyon: vous recevez à nouveau")


async def test_a_retried_webhook_is_handled_once_with_the_same_reply(client, world, sessions):
    params = {"MessageSid": "SM" + "1" * 32, "From": PHONE, "To": AGENCY_NUMBER, "Body": "RDV"}
    headers = signed("/webhooks/twilio/sms", params)
    first = await client.post("/webhooks/twilio/sms", data=params, headers=headers)
    second = await client.post("/webhooks/twilio/sms", data=params, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.text == second.text and "1)" in first.text
    async with sessions() as session:
        holds = await session.scalar(select(func.count()).select_from(Claim).where(Claim.kind == "hold"))
        events = await session.scalar(select(func.count()).select_from(InboundEvent))
    assert (holds, events) == (3, 1)


@pytest.mark.parametrize(
    "headers",
    [
        {},  # unsigned
        {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},  # forged
        signed("/webhooks/twilio/sms", {"Body": "RDV"}, token="another-account-token"),
    ],
)
async def test_unsigned_or_forged_webhooks_are_refused_and_store_nothing(client, world, sessions, headers):
    params = {"MessageSid": "SM" + "2" * 32, "From": PHONE, "To": AGENCY_NUMBER, "Body": "RDV"}
    response = await client.post("/webhooks/twilio/sms", data=params, headers=headers)
    assert_problem(response, 403)
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(InboundEvent)) == 0


async def test_signature_is_checked_against_the_public_url_not_the_host_header(client, world):
    params = {"MessageSid": "SM" + "3" * 32, "From": PHONE, "To": AGENCY_NUMBER, "Body": "AIDE"}
    as_seen_by_proxy = RequestValidator(LOCAL_AUTH_TOKEN).compute_signature(
        "http://testserver.local/webhooks/twilio/sms", params
    )
    response = await client.post(
        "/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": as_seen_by_proxy}
    )
    assert_problem(response, 403)


async def test_a_signed_webhook_missing_from_is_a_400(client, world):
    params = {"MessageSid": "SM" + "4" * 32, "To": AGENCY_NUMBER, "Body": "RDV"}
    response = await client.post(
        "/webhooks/twilio/sms", data=params, headers=signed("/webhooks/twilio/sms", params)
    )
    assert_problem(response, 400, 422, field="From")


async def test_inbound_switched_off_answers_nothing_but_still_honours_stop(client, world, sessions):
    r = await client.patch(
        f"/api/v1/agencies/{world['agency']['id']}", json={"sms_inbound_enabled": False}, headers=ADMIN
    )
    assert r.status_code == 200
    phone = Phone(client)
    assert await phone.text("RDV") == ""
    assert "plus de SMS" in await phone.text("STOP")


async def test_a_flooding_number_stops_getting_answers(client, world, settings):
    phone = Phone(client, "+33698765432")
    for _ in range(settings.sms_inbound_per_number_per_hour):
        assert await phone.text("AIDE")
    assert await phone.text("AIDE") == ""


async def test_another_agency_cannot_take_the_same_sms_number(client, world):
    other = await make_agency(client, name="Autre")
    r = await client.patch(
        f"/api/v1/agencies/{other['id']}", json={"sms_number": AGENCY_NUMBER}, headers=ADMIN
    )
    assert_problem(r, 409)


async def test_the_cancel_cutoff_applies_by_sms(client, world, clock):
    phone = Phone(client)
    await phone.text("RDV")
    await phone.text("1")  # 9:00 today; the cut-off is 2 hours before
    clock.advance(minutes=30)
    await phone.text("ANNULER")
    assert (
        await phone.text("OUI") == "Il est trop tard pour changer ce RDV par SMS, merci d'appeler l'agence."
    )
