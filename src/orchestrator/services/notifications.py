"""Sending the outbox: each SMS row goes to the provider once, on time, or not at all.

**At most once, settled to exactly once.** A sender first *claims* the row (``pending`` →
``sending``, in its own committed transaction), then calls the provider, then records the
provider's SID. A crash between the provider's answer and our record leaves the row
``sending``: it is never resent blind. Once it has been ``sending`` longer than any request can
last (``Messaging.stale``), the sweeper asks the provider whether a message with that body went
to that number since the claim (``SmsSender.find_sent``): if so it records that SID, if not the
row goes back to ``pending`` and is sent. The status callback also carries the row's id, so it
records the SID even when our own record never happened. We chose this side because a
duplicated "you are called" or reminder costs money and trust, while a message delayed by
``stale`` still arrives.

Before each attempt :func:`orchestrator.scheduling.delivery.decide` says send, wait or drop.
The daily budget and the per-number limit count messages sent or being sent; senders working
at the same moment do not wait for each other, so either may be passed by at most the number
of concurrent sends (a cost cap, not an exact quota).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator import outbox
from orchestrator.auth import Principal, Role, require_in_agency
from orchestrator.db import UnitOfWork, unit_of_work
from orchestrator.deps import Enqueuer, Messaging, SentSms, SmsOutcomeUnknown, SmsRefused, SmsSender
from orchestrator.models import Notification
from orchestrator.scheduling.delivery import Attempt, Drop, Send, Wait, decide, retry_at

log = logging.getLogger(__name__)

# a status never goes back: 'delivered' stays even if a late 'sent' callback arrives
RANK = {
    "pending": 0,
    "sending": 1,
    "queued": 2,
    "accepted": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
}
FINAL_PROVIDER_STATUSES = {"delivered", "undelivered", "failed"}

_ATTEMPT = text(
    """
SELECT n.kind, n.recipient, n.body, n.expires_at, n.attempts, a.timezone, a.sms_daily_budget,
       c.opted_out_at IS NOT NULL AS opted_out, c.unreachable_at IS NOT NULL AS unreachable,
       t.status AS ticket_status,
       (SELECT coalesce(sum(coalesce(s.segments, 1)), 0) FROM notifications s
         WHERE s.agency_id = n.agency_id AND s.channel = 'sms'
           AND coalesce(s.sent_at, s.claimed_at)
               >= (date_trunc('day', :now AT TIME ZONE a.timezone) AT TIME ZONE a.timezone)
           AND (s.sent_at IS NOT NULL OR s.status = 'sending')
       ) AS sent_today,
       (SELECT count(*) FROM notifications s
         WHERE s.recipient = n.recipient AND s.channel = 'sms'
           AND coalesce(s.sent_at, s.claimed_at) > :now - interval '1 hour'
           AND (s.sent_at IS NOT NULL OR s.status = 'sending')
       ) AS sent_to_number
  FROM notifications n
  JOIN agencies a ON a.id = n.agency_id
  LEFT JOIN phone_contacts c ON c.phone = n.recipient
  LEFT JOIN walk_in_tickets t ON t.id = n.ticket_id
 WHERE n.id = :id AND n.channel = 'sms' AND n.status = 'pending' AND n.provider_sid IS NULL
   AND n.next_attempt_at <= :now
   FOR UPDATE OF n SKIP LOCKED
"""
)
_CLAIM = text(
    "UPDATE notifications SET status = 'sending', claimed_at = :now, attempts = attempts + 1 WHERE id = :id"
)
_WAIT = text("UPDATE notifications SET next_attempt_at = :until, last_error = :reason WHERE id = :id")
_DROP = text("UPDATE notifications SET status = :status, last_error = :reason WHERE id = :id")
_SENT = text(
    """
UPDATE notifications
   SET provider_sid = coalesce(provider_sid, CAST(:sid AS varchar)),
       sent_at = coalesce(sent_at, CAST(:now AS timestamptz)),
       status = CASE WHEN status IN ('pending', 'sending') THEN CAST(:status AS varchar) ELSE status END
 WHERE id = :id
"""
)
_REFUSED = text(
    """
UPDATE notifications SET status = :status, error_code = :code, last_error = :reason,
       next_attempt_at = coalesce(CAST(:retry_at AS timestamptz), next_attempt_at)
 WHERE id = :id AND status = 'sending'
"""
)
_UNREACHABLE = text(
    """
INSERT INTO phone_contacts (phone, unreachable_at, unreachable_code, opted_out_at)
VALUES (:phone, CAST(:now AS timestamptz), CAST(:code AS int),
        CASE WHEN CAST(:code AS int) = 21610 THEN CAST(:now AS timestamptz) END)
ON CONFLICT (phone) DO UPDATE
   SET unreachable_at = EXCLUDED.unreachable_at, unreachable_code = EXCLUDED.unreachable_code,
       opted_out_at = coalesce(phone_contacts.opted_out_at, EXCLUDED.opted_out_at),
       updated_at = EXCLUDED.unreachable_at
"""
)


@dataclass(frozen=True)
class Outbox:
    """What sending needs: the database, the provider, the queue (retries) and the policy."""

    sessions: async_sessionmaker[AsyncSession]
    sender: SmsSender
    messaging: Messaging
    enqueuer: Enqueuer | None = None

    def status_callback(self, notification_id: uuid.UUID | str) -> str:
        return f"{self.messaging.public_base_url}/webhooks/twilio/status?n={notification_id}"


async def send_notification(box: Outbox, notification_id: str, *, now: datetime) -> str:
    """Send one SMS row if it is due and still wanted; returns what happened (for logs/tests)."""
    row_id = uuid.UUID(notification_id)
    async with unit_of_work(box.sessions) as uow:
        row = (await uow.session.execute(_ATTEMPT, {"id": row_id, "now": now})).mappings().first()
        if row is None:
            return "not_due"  # sent, claimed by another sender, waiting, or gone
        decision = decide(_attempt(row, box.messaging), now=now, quiet=box.messaging.quiet)
        if isinstance(decision, Wait):
            await uow.session.execute(
                _WAIT, {"id": row_id, "until": decision.until, "reason": decision.reason}
            )
            return f"wait:{decision.reason}"
        if isinstance(decision, Drop):
            await uow.session.execute(
                _DROP, {"id": row_id, "status": decision.status, "reason": decision.reason}
            )
            return f"{decision.status}:{decision.reason}"
        assert isinstance(decision, Send)
        await uow.session.execute(_CLAIM, {"id": row_id, "now": now})
    # claimed and committed: from here on the row is 'sending' until we (or the sweeper) settle it
    try:
        sent = await box.sender.send(
            row["recipient"], row["body"], status_callback=box.status_callback(row_id)
        )
    except SmsRefused as refused:
        return await _refused(box, row_id, row, refused, now)
    except SmsOutcomeUnknown:
        log.warning("SMS outcome unknown; the sweeper will settle it", extra={"notification": str(row_id)})
        return "unknown"
    await _record_sent(box.sessions, row_id, sent, now)
    return "sent"


def _attempt(row: Any, messaging: Messaging) -> Attempt:
    return Attempt(
        kind=row["kind"],
        expires_at=row["expires_at"],
        opted_out=row["opted_out"],
        unreachable=row["unreachable"],
        ticket_status=row["ticket_status"],
        sent_today=int(row["sent_today"]),
        daily_budget=int(row["sms_daily_budget"]),
        sent_to_number=int(row["sent_to_number"]),
        per_number_limit=messaging.per_number_per_hour,
        tz=row["timezone"],
    )


async def _record_sent(
    sessions: async_sessionmaker[AsyncSession], row_id: uuid.UUID, sent: SentSms, now: datetime
) -> None:
    status = "queued" if sent.status in ("accepted", "queued", "") else sent.status
    async with unit_of_work(sessions) as uow:
        await uow.session.execute(_SENT, {"id": row_id, "sid": sent.sid, "status": status, "now": now})


async def _refused(box: Outbox, row_id: uuid.UUID, row: Any, refused: SmsRefused, now: datetime) -> str:
    retry = None if refused.permanent else retry_at(row["attempts"] + 1, now, row["expires_at"])
    status = "pending" if retry is not None else ("failed" if refused.permanent else "expired")
    async with unit_of_work(box.sessions) as uow:
        await uow.session.execute(
            _REFUSED,
            {
                "id": row_id,
                "status": status,
                "code": refused.code,
                "reason": str(refused)[:500],
                "retry_at": retry,
            },
        )
        if refused.permanent and refused.code is not None:
            await uow.session.execute(
                _UNREACHABLE, {"phone": row["recipient"], "now": now, "code": refused.code}
            )
    return f"{status}:{refused.code}"


# --- status callbacks -------------------------------------------------------------------------

_STATUS = text(
    """
UPDATE notifications
   SET status = CAST(:status AS varchar), provider_sid = coalesce(provider_sid, CAST(:sid AS varchar)),
       sent_at = coalesce(sent_at, CAST(:now AS timestamptz)),
       error_code = coalesce(CAST(:code AS int), error_code),
       delivered_at = CASE WHEN CAST(:status AS varchar) = 'delivered' THEN CAST(:now AS timestamptz)
                           ELSE delivered_at END
 WHERE (provider_sid = CAST(:sid AS varchar) OR (id = CAST(:id AS uuid) AND provider_sid IS NULL))
   AND (CASE status WHEN 'pending' THEN 0 WHEN 'sending' THEN 1 WHEN 'queued' THEN 2 WHEN 'sent' THEN 3
                    WHEN 'delivered' THEN 4 WHEN 'undelivered' THEN 4 WHEN 'failed' THEN 4 ELSE 5 END) < :rank
RETURNING recipient
"""
)


async def record_status(
    uow: UnitOfWork,
    *,
    sid: str,
    status: str,
    error_code: int | None,
    notification_id: uuid.UUID | None,
    now: datetime,
    permanent: bool,
) -> bool:
    """Apply a provider status callback (out of order or repeated: a status never goes back).
    A permanent error marks the number unreachable. Returns True if the row changed."""
    rank = RANK.get(status)
    if rank is None:
        return False  # statuses we do not track (receiving, read…)
    params: dict[str, Any] = {"sid": sid, "status": "queued" if status == "accepted" else status}
    params |= {"code": error_code, "id": notification_id, "now": now, "rank": rank}
    recipient = (await uow.session.execute(_STATUS, params)).scalar()
    if recipient is not None and permanent and error_code is not None:
        await uow.session.execute(_UNREACHABLE, {"phone": recipient, "now": now, "code": error_code})
    return recipient is not None


# --- the sweeper ------------------------------------------------------------------------------

_DUE = text(
    """
SELECT id, attempts FROM notifications
 WHERE channel = 'sms' AND status = 'pending' AND next_attempt_at <= :before
 ORDER BY next_attempt_at LIMIT :limit
"""
)
_EXPIRE = text(
    """
UPDATE notifications SET status = 'expired', last_error = 'deadline_passed'
 WHERE status = 'pending' AND expires_at <= :now
"""
)
_STALE = text(
    """
SELECT id, recipient, body, claimed_at FROM notifications
 WHERE status = 'sending' AND provider_sid IS NULL AND claimed_at <= :before
 ORDER BY claimed_at LIMIT :limit
"""
)
_UNCLAIM = text(
    "UPDATE notifications SET status = 'pending', next_attempt_at = :due "
    "WHERE id = :id AND status = 'sending'"
)


async def sweep_outbox(box: Outbox, *, now: datetime, limit: int = 500) -> dict[str, int]:
    """Expire what is too late, settle stale claims with the provider, and enqueue every SMS
    due for longer than the grace period (lost jobs, Redis outages, deferred rows)."""
    async with unit_of_work(box.sessions) as uow:
        expired = (await uow.session.execute(_EXPIRE, {"now": now})).rowcount  # type: ignore[attr-defined]
        stale = (
            await uow.session.execute(_STALE, {"before": now - box.messaging.stale, "limit": limit})
        ).all()
    settled = 0
    for row in stale:
        settled += await _settle(box, row, now)
    async with unit_of_work(box.sessions) as uow:
        due = (await uow.session.execute(_DUE, {"before": now - box.messaging.grace, "limit": limit})).all()
    if box.enqueuer is not None:
        for row_id, attempts in due:
            await box.enqueuer.enqueue(outbox.SEND_JOB, str(row_id), job_id=outbox.job_id(row_id, attempts))
    return {"expired": int(expired or 0), "settled": settled, "enqueued": len(due)}


async def _settle(box: Outbox, row: Any, now: datetime) -> int:
    """A row left 'sending': record the provider's message if it exists, else send it again."""
    try:
        found = await box.sender.find_sent(row.recipient, row.body, row.claimed_at)
    except SmsOutcomeUnknown:
        return 0  # the provider cannot say now: ask at the next sweep
    if found is not None:
        await _record_sent(box.sessions, row.id, found, now)
        return 1
    async with unit_of_work(box.sessions) as uow:  # due at once: this very sweep enqueues it
        await uow.session.execute(_UNCLAIM, {"id": row.id, "due": row.claimed_at})
    return 1


# --- what operators see -------------------------------------------------------------------------

_VIEW = (
    Notification.id,
    Notification.kind,
    Notification.channel,
    Notification.recipient,
    Notification.status,
    Notification.body,
    Notification.encoding,
    Notification.segments,
    Notification.attempts,
    Notification.next_attempt_at,
    Notification.sent_at,
    Notification.provider_sid,
    Notification.error_code,
    Notification.last_error,
)


async def outbox_view(
    uow: UnitOfWork, principal: Principal | None, agency_id: uuid.UUID, *, status: str | None, limit: int
) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """The agency's messages, newest first, and how many are in each status (the backlog is
    ``pending``). Staff of the agency (admin, manager, front desk)."""
    require_in_agency(principal, agency_id, Role.ADMIN, Role.MANAGER, Role.FRONT_DESK)
    by_status = (
        select(Notification.status, func.count())
        .where(Notification.agency_id == agency_id)
        .group_by(Notification.status)
    )
    counts = {name: int(count) for name, count in (await uow.session.execute(by_status)).tuples()}
    query = select(*_VIEW).where(Notification.agency_id == agency_id)
    if status:
        query = query.where(Notification.status == status)
    rows = await uow.session.execute(query.order_by(Notification.created_at.desc()).limit(limit))
    return counts, [dict(row) for row in rows.mappings()]
