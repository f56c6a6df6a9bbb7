"""Every text a job seeker receives, in one place: French (default) and English.

Dates and times are written in the agency's time zone as people read them
("mardi 3 mars à 9h30", "Tuesday 3 March at 9:30"). Templates keep to the GSM-7 alphabet so a
message stays in few segments: é è à ù are GSM-7, but ç ê ô î û œ, the typographic apostrophe
and non-breaking spaces are not (see ``scheduling.sms``), so none is used ("aout" follows the
1990 spelling). ``SEGMENT_BUDGET`` caps each kind; a test renders every template with long
values and fails when one exceeds it.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"

DAYS = {
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
MONTHS = {
    "fr": (
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "aout",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}
MODES = {
    "fr": {"in_person": "à l'agence", "phone": "par téléphone", "video": "en visio"},
    "en": {"in_person": "at the agency", "phone": "by phone", "video": "by video"},
}

TEMPLATES: dict[str, dict[str, str]] = {
    "fr": {
        "appointment.confirmed": "{agency}: RDV confirmé {when}, {mode}. "
        "Pour l'annuler ou le déplacer: {link}",
        "appointment.confirmed.sms": "{agency}: RDV confirmé {when}, {mode}. "
        "Répondez ANNULER ou DEPLACER pour le changer.",
        "appointment.rescheduled": "{agency}: votre RDV est déplacé au {when}, {mode}.",
        "appointment.cancelled": "{agency}: votre RDV du {when} est annulé.",
        "appointment.reminder": "{agency}: rappel, RDV {when}, {mode}. Pour l'annuler: {link}",
        "appointment.reminder.sms": "{agency}: rappel, RDV {when}, {mode}. "
        "Répondez ANNULER si vous ne pouvez pas venir.",
        "ticket.called": "{agency}: ticket {number}, c'est à vous ! Présentez-vous {desk}.",
        "ticket.soon": "{agency}: ticket {number}, votre tour approche (environ {minutes} min). "
        "Merci de revenir à l'accueil.",
    },
    "en": {
        "appointment.confirmed": "{agency}: appointment confirmed {when}, {mode}. "
        "To cancel or move it: {link}",
        "appointment.confirmed.sms": "{agency}: appointment confirmed {when}, {mode}. "
        "Reply CANCEL or MOVE to change it.",
        "appointment.rescheduled": "{agency}: your appointment is moved to {when}, {mode}.",
        "appointment.cancelled": "{agency}: your appointment of {when} is cancelled.",
        "appointment.reminder": "{agency}: reminder, appointment {when}, {mode}. To cancel it: {link}",
        "appointment.reminder.sms": "{agency}: reminder, appointment {when}, {mode}. "
        "Reply CANCEL if you cannot come.",
        "ticket.called": "{agency}: ticket {number}, it is your turn! Please go {desk}.",
        "ticket.soon": "{agency}: ticket {number}, your turn is near (about {minutes} min). "
        "Please come back to the front desk.",
    },
}
DESKS = {"fr": ("au guichet {desk}", "à l'accueil"), "en": ("to desk {desk}", "to the front desk")}

# segments each kind may take in GSM-7 with an agency name of 40 characters and a long link
SEGMENT_BUDGET = {
    "appointment.confirmed": 2,
    "appointment.confirmed.sms": 2,
    "appointment.rescheduled": 1,
    "appointment.cancelled": 1,
    "appointment.reminder": 2,
    "appointment.reminder.sms": 2,
    "ticket.called": 1,
    "ticket.soon": 1,
}


def language_of(value: str | None) -> str:
    """A supported language for ``value`` ("en-GB" → "en"); French when unknown."""
    base = (value or "").split("-")[0].lower()
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


def when(moment: datetime, tz: str, language: str) -> str:
    """``moment`` as people say it, in the agency's time zone."""
    local = moment.astimezone(ZoneInfo(tz))
    day, month = DAYS[language][local.weekday()], MONTHS[language][local.month - 1]
    if language == "en":
        return f"{day} {local.day} {month} at {local.hour}:{local.minute:02d}"
    return f"{day} {local.day} {month} à {local.hour}h{local.minute:02d}"


def render(kind: str, language: str, **values: object) -> str:
    """The text of ``kind`` in ``language`` (French when missing), filled with ``values``."""
    language = language_of(language)
    template = TEMPLATES[language].get(kind) or TEMPLATES[DEFAULT_LANGUAGE][kind]
    return template.format(**values)


def appointment_text(
    kind: str,
    *,
    language: str | None,
    agency: str,
    tz: str,
    starts_at: datetime,
    mode: str,
    link: str | None,
) -> str:
    """A confirmation, reminder, move or cancellation. Without a manage link (the token is only
    known when booking), the text tells how to act by SMS instead."""
    lang = language_of(language)
    if link is None and f"{kind}.sms" in TEMPLATES[lang]:
        kind = f"{kind}.sms"
    return render(
        kind,
        lang,
        agency=agency,
        when=when(starts_at, tz, lang),
        mode=MODES[lang].get(mode, mode),
        link=link or "",
    )


def ticket_text(
    kind: str, *, language: str | None, agency: str, number: str, desk: str | None, minutes: int | None
) -> str:
    lang = language_of(language)
    at_desk, at_front = DESKS[lang]
    where = at_desk.format(desk=desk) if desk else at_front
    return render(
        kind, lang, agency=agency, number=number, desk=where, minutes=minutes if minutes is not None else "?"
    )


# --- replies in an SMS conversation ------------------------------------------------------------

REPLIES: dict[str, dict[str, str]] = {
    "fr": {
        "help": "{agency}: envoyez RDV pour un rendez-vous, ANNULER ou DEPLACER pour changer votre RDV, "
        "RAPPEL pour qu'un conseiller vous appelle, FILE pour la file d'attente, "
        "STOP pour ne plus recevoir de SMS.",
        "offers": "{agency}, {service}. Répondez 1, 2 ou 3:\n{lines}\nCréneaux gardés {minutes} min.",
        "no_slots": "{agency}: aucun créneau libre pour le moment. "
        "Envoyez RAPPEL pour qu'un conseiller vous appelle.",
        "unknown_service": "Motif inconnu. Envoyez RDV suivi de: {services}",
        "booked": "RDV confirmé {when}, {mode}. Répondez ANNULER ou DEPLACER pour le changer.",
        "moved": "RDV déplacé au {when}, {mode}.",
        "taken": "Ce créneau n'est plus libre. Envoyez RDV pour d'autres créneaux.",
        "repeat_offers": "Répondez 1, 2 ou 3 (ou RDV pour d'autres créneaux):\n{lines}",
        "offers_expired": "Ces créneaux ne sont plus gardés. Envoyez RDV pour en recevoir d'autres.",
        "ask_cancel": "Annuler votre RDV du {when} ? Répondez OUI ou NON.",
        "ask_again": "Répondez OUI pour annuler votre RDV du {when}, NON pour le garder.",
        "no_appointment": "Vous n'avez pas de RDV à venir. Envoyez RDV pour en prendre un.",
        "cancelled": "Votre RDV du {when} est annulé.",
        "kept": "Votre RDV du {when} est maintenu.",
        "too_late": "Il est trop tard pour changer ce RDV par SMS, merci d'appeler l'agence.",
        "callback": "C'est noté: un conseiller vous rappellera à ce numéro.",
        "callback_expected": "{agency}: un conseiller vous appellera le {when} environ.",
        "callback_moved": "{agency}: votre rappel est déplacé, un conseiller vous appellera "
        "le {when} environ.",
        "callback_missed": "{agency}: nous n'avons pas pu vous joindre. Envoyez RAPPEL pour qu'un conseiller "
        "vous rappelle.",
        "queue": "Ticket {number}: {ahead} personne(s) avant vous, environ {minutes} min. "
        "Nous vous prévenons par SMS quand votre tour approche.",
        "queue_closed": "{agency}: la file d'attente ne prend personne pour le moment.",
        "opt_out": "{agency}: vous ne recevrez plus de SMS. Envoyez START pour les recevoir à nouveau.",
        "opt_in": "{agency}: vous recevez à nouveau nos SMS. Envoyez STOP pour ne plus les recevoir.",
    },
    "en": {
        "help": "{agency}: send BOOK for an appointment, CANCEL or MOVE to change yours, "
        "CALLBACK to be called by an adviser, QUEUE to join the queue, STOP to receive no more texts.",
        "offers": "{agency}, {service}. Reply 1, 2 or 3:\n{lines}\nSlots kept {minutes} min.",
        "no_slots": "{agency}: no free slot at the moment. Send CALLBACK to be called by an adviser.",
        "unknown_service": "Unknown service. Send BOOK followed by: {services}",
        "booked": "Appointment confirmed {when}, {mode}. Reply CANCEL or MOVE to change it.",
        "moved": "Appointment moved to {when}, {mode}.",
        "taken": "This slot is no longer free. Send BOOK for other slots.",
        "repeat_offers": "Reply 1, 2 or 3 (or BOOK for other slots):\n{lines}",
        "offers_expired": "These slots are no longer kept. Send BOOK for new ones.",
        "ask_cancel": "Cancel your appointment of {when}? Reply YES or NO.",
        "ask_again": "Reply YES to cancel your appointment of {when}, NO to keep it.",
        "no_appointment": "You have no upcoming appointment. Send BOOK to make one.",
        "cancelled": "Your appointment of {when} is cancelled.",
        "kept": "Your appointment of {when} is kept.",
        "too_late": "It is too late to change this appointment by text, please call the agency.",
        "callback": "Noted: an adviser will call you back on this number.",
        "callback_expected": "{agency}: an adviser will call you on {when} or so.",
        "callback_moved": "{agency}: your callback has moved, an adviser will call you on {when} or so.",
        "callback_missed": "{agency}: we could not reach you. Send CALLBACK to be called again.",
        "queue": "Ticket {number}: {ahead} person(s) before you, about {minutes} min. "
        "We will text you when your turn is near.",
        "queue_closed": "{agency}: the queue is not taking anyone at the moment.",
        "opt_out": "{agency}: you will receive no more texts. Send START to receive them again.",
        "opt_in": "{agency}: you receive our texts again. Send STOP to receive no more.",
    },
}


def reply(key: str, language: str | None, **values: object) -> str:
    """A conversation reply in ``language`` (French when unknown)."""
    return REPLIES[language_of(language)][key].format(**values)


# --- the voice line (spoken: any character is fine) ----------------------------------------------

VOICE: dict[str, dict[str, str]] = {
    "fr": {
        "menu": "Bonjour, vous êtes bien à {agency}. Pour être rappelé par un conseiller, tapez 1. "
        "Pour entendre votre prochain rendez-vous, tapez 2. Pour l'annuler, tapez 3. "
        "Pour réécouter, tapez 0.",
        "menu_switch": "For English, press 9.",
        "when": "Quand préférez-vous être rappelé ? Le matin, tapez 1. L'après-midi, tapez 2. "
        "Peu importe, tapez 3.",
        "callback_noted": "C'est noté. Un conseiller vous rappellera à ce numéro. Au revoir.",
        "callback_planned": "C'est noté. Un conseiller vous rappellera le {when} environ. "
        "Vous recevrez aussi un SMS. Au revoir.",
        "read_next": "Votre prochain rendez-vous est le {when}, {mode}.",
        "no_appointment": "Vous n'avez pas de rendez-vous à venir.",
        "confirm_cancel": "Pour annuler votre rendez-vous du {when}, tapez 1. Pour le garder, tapez 2.",
        "cancelled": "Votre rendez-vous du {when} est annulé. Au revoir.",
        "too_late": "Il est trop tard pour annuler ce rendez-vous par téléphone. Merci d'appeler l'accueil. "
        "Au revoir.",
        "goodbye": "Nous n'avons pas compris votre choix. Au revoir.",
        "closed": "Ce numéro ne prend pas d'appels pour le moment. Au revoir.",
    },
    "en": {
        "menu": "Hello, this is {agency}. To be called back by an adviser, press 1. "
        "To hear your next appointment, press 2. To cancel it, press 3. To hear this again, press 0.",
        "menu_switch": "Pour le français, tapez 9.",
        "when": "When would you like to be called? Morning, press 1. Afternoon, press 2. Any time, press 3.",
        "callback_noted": "Noted. An adviser will call you back on this number. Goodbye.",
        "callback_planned": "Noted. An adviser will call you on {when} or so. You will also get a text. "
        "Goodbye.",
        "read_next": "Your next appointment is on {when}, {mode}.",
        "no_appointment": "You have no upcoming appointment.",
        "confirm_cancel": "To cancel your appointment of {when}, press 1. To keep it, press 2.",
        "cancelled": "Your appointment of {when} is cancelled. Goodbye.",
        "too_late": "It is too late to cancel this appointment by phone. Please call the front desk. "
        "Goodbye.",
        "goodbye": "We did not understand your choice. Goodbye.",
        "closed": "This number takes no calls at the moment. Goodbye.",
    },
}
SPEECH_LANGUAGE = {"fr": "fr-FR", "en": "en-GB"}


def spoken(key: str, language: str | None, **values: object) -> str:
    """A voice prompt in ``language`` (French when unknown)."""
    return VOICE[language_of(language)][key].format(**values)


# --- e-mail (plain text and simple HTML; any character is fine) --------------------------------

SUBJECTS: dict[str, dict[str, str]] = {
    "fr": {
        "appointment.confirmed": "{agency} : rendez-vous confirmé le {when}",
        "appointment.rescheduled": "{agency} : rendez-vous déplacé au {when}",
        "appointment.cancelled": "{agency} : rendez-vous du {when} annulé",
        "appointment.reminder": "{agency} : rappel, rendez-vous le {when}",
        "staff.calendar_stale": "Agenda de {counsellor} non synchronisé depuis {since}",
        "staff.calendar_conflict": "Conflit d'agenda pour {counsellor} le {when}",
    },
    "en": {
        "appointment.confirmed": "{agency}: appointment confirmed on {when}",
        "appointment.rescheduled": "{agency}: appointment moved to {when}",
        "appointment.cancelled": "{agency}: appointment on {when} cancelled",
        "appointment.reminder": "{agency}: reminder, appointment on {when}",
    },
}
EMAIL_LINES: dict[str, dict[str, str]] = {
    "fr": {
        "service": "Motif : {value}",
        "where": "Lieu : {value}",
        "invitation": "L'invitation jointe ajoute ce rendez-vous à votre agenda.",
        "cancellation": "La pièce jointe retire ce rendez-vous de votre agenda.",
        "footer": "Message envoyé automatiquement par {agency}, merci de ne pas y répondre.",
        "staff.calendar_stale": "L'agenda importé de {counsellor} n'a pas pu être lu depuis {since} "
        "(dernière erreur : {error}). Ses créneaux en ligne sont retirés de la réservation jusqu'à la "
        "prochaine synchronisation réussie. Vérifiez l'adresse de l'agenda ou sa publication.",
        "staff.calendar_conflict": "Un événement de l'agenda personnel de {counsellor} chevauche un "
        "rendez-vous réservé le {when} (réf. {reference}). Le rendez-vous n'a pas été déplacé : "
        "à vous de décider avec la personne.",
    },
    "en": {
        "service": "Service: {value}",
        "where": "Where: {value}",
        "invitation": "The attached invitation adds this appointment to your calendar.",
        "cancellation": "The attachment removes this appointment from your calendar.",
        "footer": "Sent automatically by {agency}; please do not reply.",
    },
}


def email_line(key: str, language: str | None, **values: object) -> str:
    lang = language_of(language)
    template = EMAIL_LINES[lang].get(key) or EMAIL_LINES[DEFAULT_LANGUAGE][key]
    return template.format(**values)


def email_subject(kind: str, language: str | None, **values: object) -> str:
    lang = language_of(language)
    template = SUBJECTS[lang].get(kind) or SUBJECTS[DEFAULT_LANGUAGE][kind]
    return " ".join(template.format(**values).split())  # one header line, whatever was typed


def email_html(paragraphs: list[str]) -> str:
    """Simple HTML for ``paragraphs`` of plain text: escaped, links made clickable."""

    def paragraph(text: str) -> str:
        words = [
            f'<a href="{escape(w)}">{escape(w)}</a>' if w.startswith(("https://", "http://")) else escape(w)
            for w in text.split(" ")
        ]
        return "<p>" + " ".join(words).replace("\n", "<br>") + "</p>"

    body = "\n".join(paragraph(p) for p in paragraphs if p)
    return f'<!doctype html>\n<html><body style="font-family:sans-serif">\n{body}\n</body></html>\n'
