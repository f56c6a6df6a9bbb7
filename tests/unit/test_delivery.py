"""Send, wait or drop: the decision taken before every SMS attempt."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from orchestrator.scheduling.delivery import Attempt, Drop, Send, Wait, decide, next_local_morning, retry_at
from orchestrator.scheduling.reminders import QuietHours

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # 11:00 Paris
QUIET = QuietHours()
BASE = Attempt(
    kind="appointment.confirmed",
    expires_at=NOW + timedelta(days=2),
    opted_out=False,
    unreachable=False,
    ticket_status=None,
    sent_today=0,
    daily_budget=500,
    sent_to_number=0,
    per_number_limit=6,
    tz="Europe/Paris",
)


def test_a_due_message_is_sent():
    assert decide(BASE, now=NOW, quiet=QUIET) == Send()


def test_opted_out_and_unreachable_numbers_get_nothing():
    assert decide(replace(BASE, opted_out=True), now=NOW, quiet=QUIET) == Drop("skipped", "opted_out")
    assert decide(replace(BASE, unreachable=True), now=NOW, quiet=QUIET) == Drop("skipped", "unreachable")


def test_never_sent_late():
    late = replace(BASE, expires_at=NOW)
    assert decide(late, now=NOW, quiet=QUIET) == Drop("expired", "deadline_passed")


def test_a_soon_text_for_a_ticket_already_called_is_dropped():
    soon = replace(BASE, kind="ticket.soon", ticket_status="called")
    assert decide(soon, now=NOW, quiet=QUIET) == Drop("expired", "no_longer_true")
    assert decide(replace(soon, ticket_status="waiting"), now=NOW, quiet=QUIET) == Send()
    called = replace(BASE, kind="ticket.called", ticket_status="in_service")
    assert decide(called, now=NOW, quiet=QUIET) == Drop("expired", "no_longer_true")


def test_a_reminder_retried_into_quiet_hours_waits_for_the_morning():
    night = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)  # 22:00 Paris
    reminder = replace(BASE, kind="appointment.reminder", expires_at=datetime(2026, 3, 3, 9, 45, tzinfo=UTC))
    assert decide(reminder, now=night, quiet=QUIET) == Wait(
        datetime(2026, 3, 3, 7, 0, tzinfo=UTC), "quiet_hours"
    )
    # a confirmation the person is waiting for is not held by quiet hours
    assert decide(replace(BASE, expires_at=reminder.expires_at), now=night, quiet=QUIET) == Send()


def test_over_the_daily_budget_a_message_waits_for_the_next_local_morning():
    over = replace(BASE, sent_today=500)
    assert decide(over, now=NOW, quiet=QUIET) == Wait(datetime(2026, 3, 3, 7, 0, tzinfo=UTC), "daily_budget")
    urgent = replace(over, expires_at=NOW + timedelta(hours=1))
    assert decide(urgent, now=NOW, quiet=QUIET) == Drop("expired", "daily_budget")


def test_a_number_texted_too_often_waits_an_hour():
    busy = replace(BASE, sent_to_number=6)
    assert decide(busy, now=NOW, quiet=QUIET) == Wait(NOW + timedelta(hours=1), "per_number_limit")


def test_retries_back_off_within_the_deadline():
    assert retry_at(1, NOW, None) == NOW + timedelta(seconds=5)
    assert retry_at(3, NOW, None) == NOW + timedelta(seconds=20)
    assert retry_at(20, NOW, None) == NOW + timedelta(minutes=15)
    assert retry_at(3, NOW, NOW + timedelta(seconds=10)) is None


def test_next_local_morning_on_the_spring_clock_change():
    saturday_night = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)  # 23:00 Paris, before the change
    assert next_local_morning(saturday_night, "Europe/Paris", QUIET) == datetime(
        2026, 3, 29, 6, 0, tzinfo=UTC
    )
