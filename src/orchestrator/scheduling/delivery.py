"""Whether an outbox message goes now, waits, or is dropped — decided before every attempt.

Dropped, never sent late: past its deadline (``expires_at``), or no longer true (a "soon" text
for a ticket already called, a "called" text for a ticket already served). Never sent to a
number that opted out (STOP) or that the provider said is unreachable. Waits: over the
agency's daily budget (until the next local day), over the per-number hourly limit, or — for
reminders — in quiet hours (moved as ``reminders.sendable_at`` says, or dropped).
Transient provider errors retry with exponential backoff, within the deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from orchestrator.scheduling.reminders import QuietHours, sendable_at

# the ticket statuses in which each ticket message is still true
TICKET_MESSAGE_VALID = {"ticket.soon": {"waiting"}, "ticket.called": {"called"}}
QUIET_KINDS = frozenset({"appointment.reminder"})


@dataclass(frozen=True, slots=True)
class Attempt:
    """What is known about one message just before sending it."""

    kind: str
    expires_at: datetime | None
    opted_out: bool
    unreachable: bool
    ticket_status: str | None
    sent_today: int  # segments the agency sent since its local midnight
    daily_budget: int
    sent_to_number: int  # messages to this number in the last hour
    per_number_limit: int
    tz: str


@dataclass(frozen=True, slots=True)
class Send:
    pass


@dataclass(frozen=True, slots=True)
class Wait:
    until: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Drop:
    status: str  # 'expired' (too late / no longer true) or 'skipped' (not allowed)
    reason: str


Decision = Send | Wait | Drop


def decide(attempt: Attempt, *, now: datetime, quiet: QuietHours) -> Decision:
    """Send, wait or drop ``attempt`` at ``now`` (see the module doc)."""
    if attempt.opted_out:
        return Drop("skipped", "opted_out")
    if attempt.unreachable:
        return Drop("skipped", "unreachable")
    if attempt.expires_at is not None and now >= attempt.expires_at:
        return Drop("expired", "deadline_passed")
    valid = TICKET_MESSAGE_VALID.get(attempt.kind)
    if valid is not None and attempt.ticket_status not in valid:
        return Drop("expired", "no_longer_true")
    if attempt.kind in QUIET_KINDS and attempt.expires_at is not None:
        when = sendable_at(
            now, quiet=quiet, tz=attempt.tz, now=now, deadline=attempt.expires_at, min_lead=timedelta(0)
        )
        if when is None:
            return Drop("expired", "quiet_hours")
        if when > now:
            return _wait(when, attempt, "quiet_hours")
    if attempt.daily_budget >= 0 and attempt.sent_today >= attempt.daily_budget:
        return _wait(next_local_morning(now, attempt.tz, quiet), attempt, "daily_budget")
    if attempt.sent_to_number >= attempt.per_number_limit > 0:
        return _wait(now + timedelta(hours=1), attempt, "per_number_limit")
    return Send()


def _wait(until: datetime, attempt: Attempt, reason: str) -> Decision:
    if attempt.expires_at is not None and until >= attempt.expires_at:
        return Drop("expired", reason)
    return Wait(until, reason)


def next_local_morning(now: datetime, tz: str, quiet: QuietHours) -> datetime:
    """The agency's next local day, at the end of its quiet hours (or midnight without any)."""
    zone = ZoneInfo(tz)
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(tomorrow, quiet.end, tzinfo=zone).astimezone(now.tzinfo)


def retry_at(attempts: int, now: datetime, expires_at: datetime | None) -> datetime | None:
    """When to try again after a transient error (5 s, 10 s, 20 s … capped at 15 min), or None
    when the next try would come after the deadline."""
    delay = min(timedelta(seconds=5 * 2 ** max(attempts - 1, 0)), timedelta(minutes=15))
    when = now + delay
    return None if expires_at is not None and when >= expires_at else when
