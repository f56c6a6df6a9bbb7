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

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Executable

from orchestrator import outbox
from orchestrator.auth import Principal, Role, require_in_agency
from orchestrator.db import UnitOfWork
from orchestrator.deps import (
    Email,
    EmailRefused,
    EmailSender,
    Enqueuer,
    Messaging,
    SentSms,
    SmsOutcomeUnknown,
    SmsRefused,
    SmsSender,
)
from orchestrator.models import Notification
from orchestrator.scheduling.delivery import Attempt, Drop, Wait, decide, retry_at

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

# The claim, in one statement: take the row if it is due, and return what the decision needs.
# ``sent_today`` (segments since the agency's local midnight) and ``sent_to_number`` (the last
# hour) count texts sent or being sent, read through the (agency_id, sent_at) and
# (recipient, sent_at) indexes. Run in autocommit: one round trip, no BEGIN/COMMIT.
_CLAIM = text(
    """
UPDATE notifications n
   SET status = 'sending', claimed_at = :now, attempts = n.attempts + 1
  FROM agencies a
 WHERE n.id = ANY(CAST(:ids AS uuid[])) AND a.id = n.agency_id AND n.channel = ANY(:channels)
   AND n.status = 'pending' AND n.provider_sid IS NULL AND n.next_attempt_at <= :now
RETURNING n.id, n.kind, n.channel, n.recipient, n.body, n.payload, n.expires_at, n.attempts, a.timezone,
       a.sms_daily_budget,
       EXISTS (SELECT 1 FROM phone_contacts c WHERE c.phone = n.recipient AND c.opted_out_at IS NOT NULL)
         AS opted_out,
       EXISTS (SELECT 1 FROM phone_contacts c WHERE c.phone = n.recipient AND c.unreachable_at IS NOT NULL)
         AS unreachable,
       (SELECT t.status FROM walk_in_tickets t WHERE t.id = n.ticket_id) AS ticket_status,
       (SELECT coalesce(sum(coalesce(s.segments, 1)), 0) FROM notifications s
         WHERE s.agency_id = n.agency_id AND s.channel = 'sms'
           AND s.sent_at >= (date_trunc('day', :now AT TIME ZONE a.timezone) AT TIME ZONE a.timezone))
       + (SELECT count(*) FROM notifications s
           WHERE s.status = 'sending' AND s.channel = 'sms' AND s.agency_id = n.agency_id AND s.id <> n.id)
         AS sent_today,
       (SELECT count(*) FROM notifications s
         WHERE s.recipient = n.recipient AND s.channel = 'sms' AND s.sent_at > :now - interval '1 hour')
       + (SELECT count(*) FROM notifications s
           WHERE s.status = 'sending' AND s.recipient = n.recipient AND s.id <> n.id) AS sent_to_number
"""
)
# a claim the decision does not send goes back (or is dropped): it never counted as an attempt
_WAIT = text(
    "UPDATE notifications SET status = 'pending', claimed_at = NULL, attempts = attempts - 1, "
    "next_attempt_at = :until, last_error = :reason WHERE id = :id"
)
_DROP = text(
    "UPDATE notifications SET status = :status, claimed_at = NULL, attempts = attempts - 1, "
    "last_error = :reason WHERE id = :id"
)
_SENT = text(
    """
UPDATE notifications n
   SET provider_sid = coalesce(n.provider_sid, v.sid),
       sent_at = coalesce(n.sent_at, CAST(:now AS timestamptz)),
       status = CASE WHEN n.status IN ('pending', 'sending') THEN v.status ELSE n.status END
  FROM unnest(CAST(:ids AS uuid[]), CAST(:sids AS varchar[]), CAST(:statuses AS varchar[]))
       AS v(id, sid, status)
 WHERE n.id = v.id
"""
)
_REFUSED = text(
    """
UPDATE notifications SET status = :status, error_code = :code, last_error = :reason,
       next_attempt_at = coalesce(CAST(:retry_at AS timestamptz), next_attempt_at)
 WHERE id = :id AND status = 'sending'
"""
)
# a number the provider (or a counsellor: code 0, wrong number) says cannot be reached by SMS
MARK_UNREACHABLE = text(
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
    """What sending needs: the database, the provider, the queue (retries) and the policy.

    Each step of a send is one statement in autocommit (``run``): the claim and the record are
    one round trip each, and each is durable before the next step starts."""

    engine: AsyncEngine
    sender: SmsSender
    messaging: Messaging
    enqueuer: Enqueuer | None = None
    mailer: EmailSender | None = None  # None: e-mail rows wait for a process that has one

    @property
    def channels(self) -> list[str]:
        return ["sms", "email"] if self.mailer is not None else ["sms"]

    def status_callback(self, notification_id: uuid.UUID | str) -> str:
        return f"{self.messaging.public_base_url}/webhooks/twilio/status?n={notification_id}"

    async def run(self, statement: Executable, params: dict[str, Any]) -> Any:
        """``statement`` in its own autocommitted round trip; the rows it returns, as mappings."""
        async with self.engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            result = await autocommit.execute(statement, params)
            return result.mappings().all() if result.returns_rows else result.rowcount


BATCH = 50  # messages one job sends at once (the sweeper's chunks)


async def send_notification(box: Outbox, notification_id: str, *, now: datetime) -> str:
    """Send one SMS row (see :func:`send_notifications`); returns what happened to it."""
    return (await send_notifications(box, [notification_id], now=now))[notification_id]


async def send_notifications(
    box: Outbox, notification_ids: Sequence[str], *, now: datetime
) -> dict[str, str]:
    """Send the SMS rows that are due and still wanted, concurrently: one claim statement for
    all, one request each to the provider, one statement recording the SIDs. Returns what
    happened to each id ("sent", "not_due", "wait:…", "expired:…", "failed:…", "unknown")."""
    ids = [uuid.UUID(i) for i in notification_ids]
    claimed = await box.run(_CLAIM, {"ids": ids, "now": now, "channels": box.channels})
    outcomes = dict.fromkeys(notification_ids, "not_due")  # sent, claimed elsewhere, waiting, or gone
    sending = []
    for row in claimed:
        decision = decide(_attempt(row, box.messaging), now=now, quiet=box.messaging.quiet)
        if isinstance(decision, Wait):
            await box.run(_WAIT, {"id": row["id"], "until": decision.until, "reason": decision.reason})
            outcomes[str(row["id"])] = f"wait:{decision.reason}"
        elif isinstance(decision, Drop):
            await box.run(_DROP, {"id": row["id"], "status": decision.status, "reason": decision.reason})
            outcomes[str(row["id"])] = f"{decision.status}:{decision.reason}"
        else:
            sending.append(row)
    # claimed and committed: from here on each row is 'sending' until we (or the sweeper) settle it
    results = await asyncio.gather(*(_send(box, row, now) for row in sending))
    sent = [
        (row["id"], result)
        for row, result in zip(sending, results, strict=True)
        if isinstance(result, SentSms)
    ]
    await _record_sent(box, sent, now)
    for row, result in zip(sending, results, strict=True):
        outcomes[str(row["id"])] = "sent" if isinstance(result, SentSms) else result
    return outcomes


async def _send(box: Outbox, row: Any, now: datetime) -> SentSms | str:
    try:
        if row["channel"] == "email":
            assert box.mailer is not None  # the claim takes e-mail rows only when there is one
            message_id = await box.mailer.send(_email(row, box.messaging.email_from))
            return SentSms(message_id, "sent")
        return await box.sender.send(
            row["recipient"], row["body"], status_callback=box.status_callback(row["id"])
        )
    except (SmsRefused, EmailRefused) as refused:
        return await _refused(box, row, refused, now)
    except SmsOutcomeUnknown:
        log.warning("SMS outcome unknown; the sweeper will settle it", extra={"notification": str(row["id"])})
        return "unknown"


def _email(row: Any, sender: str) -> Email:
    """The e-mail of an outbox row; its Message-ID is the row's (a resend is the same message)."""
    payload = row["payload"] or {}
    domain = sender.rpartition("@")[2] or "orchestrator"
    return Email(
        to=row["recipient"],
        subject=payload.get("subject", ""),
        text=row["body"],
        html=payload.get("html", ""),
        message_id=f"<{row['id']}@{domain}>",
        calendar=payload.get("ics"),
        method=payload.get("method"),
    )


def _attempt(row: Any, messaging: Messaging) -> Attempt:
    if row["channel"] != "sms":  # budgets, per-number limits and opt-outs are the SMS channel's
        return Attempt(
            kind=row["kind"],
            expires_at=row["expires_at"],
            opted_out=False,
            unreachable=False,
            ticket_status=row["ticket_status"],
            sent_today=0,
            daily_budget=-1,
            sent_to_number=0,
            per_number_limit=0,
            tz=row["timezone"],
        )
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


async def _record_sent(box: Outbox, sent: list[tuple[uuid.UUID, SentSms]], now: datetime) -> None:
    """Record the provider's SIDs (and first statuses) of several rows in one statement."""
    if not sent:
        return
    statuses = ["queued" if s.status in ("accepted", "queued", "") else s.status for _, s in sent]
    params = {"ids": [row_id for row_id, _ in sent], "sids": [s.sid for _, s in sent], "statuses": statuses}
    await box.run(_SENT, params | {"now": now})


async def _refused(box: Outbox, row: Any, refused: SmsRefused | EmailRefused, now: datetime) -> str:
    retry = None if refused.permanent else retry_at(row["attempts"], now, row["expires_at"])
    status = "pending" if retry is not None else ("failed" if refused.permanent else "expired")
    params = {
        "id": row["id"],
        "status": status,
        "code": refused.code,
        "reason": str(refused)[:500],
        "retry_at": retry,
    }
    await box.run(_REFUSED, params)
    if isinstance(refused, SmsRefused) and refused.number_is_unreachable:  # the number's own fault
        await box.run(MARK_UNREACHABLE, {"phone": row["recipient"], "now": now, "code": refused.code})
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
        await uow.session.execute(MARK_UNREACHABLE, {"phone": recipient, "now": now, "code": error_code})
    return recipient is not None


# --- the sweeper ------------------------------------------------------------------------------

_DUE = text(
    """
SELECT id, attempts FROM notifications
 WHERE channel = ANY(:channels) AND status = 'pending' AND next_attempt_at <= :before
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
SELECT id, channel, recipient, body, claimed_at FROM notifications
 WHERE status = 'sending' AND provider_sid IS NULL AND claimed_at <= :before
 ORDER BY claimed_at LIMIT :limit
"""
)
_UNCLAIM = text(
    "UPDATE notifications SET status = 'pending', next_attempt_at = :due "
    "WHERE id = :id AND status = 'sending'"
)


async def sweep_outbox(box: Outbox, *, now: datetime, limit: int = 5000) -> dict[str, int]:
    """Expire what is too late, settle stale claims with the provider, and enqueue every SMS
    due for longer than the grace period (lost jobs, Redis outages, deferred rows)."""
    expired = await box.run(_EXPIRE, {"now": now})
    stale = await box.run(_STALE, {"before": now - box.messaging.stale, "limit": limit})
    settled = 0
    for row in stale:
        settled += await _settle(box, row, now)
    due = await box.run(_DUE, {"before": now - box.messaging.grace, "limit": limit, "channels": box.channels})
    if box.enqueuer is not None:
        for start in range(0, len(due), BATCH):
            chunk = due[start : start + BATCH]
            ids = [str(row["id"]) for row in chunk]
            await box.enqueuer.enqueue(
                outbox.SEND_JOB, *ids, job_id=outbox.job_id(chunk[0]["id"], chunk[0]["attempts"])
            )
    return {"expired": int(expired or 0), "settled": settled, "enqueued": len(due)}


async def _settle(box: Outbox, row: Any, now: datetime) -> int:
    """A row left 'sending': record the provider's message if it exists, else send it again.
    An e-mail is sent again: SMTP cannot be asked, and the resend has the same Message-ID."""
    if row["channel"] != "sms":
        await box.run(_UNCLAIM, {"id": row["id"], "due": row["claimed_at"]})
        return 1
    try:
        found = await box.sender.find_sent(row["recipient"], row["body"], row["claimed_at"])
    except SmsOutcomeUnknown:
        return 0  # the provider cannot say now: ask at the next sweep
    if found is not None:
        await _record_sent(box, [(row["id"], found)], now)
    else:  # due at once: this very sweep enqueues it
        await box.run(_UNCLAIM, {"id": row["id"], "due": row["claimed_at"]})
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
    counts = {name: int(count) for name, count in await uow.session.execute(by_status)}
    query = select(*_VIEW).where(Notification.agency_id == agency_id)
    if status:
        query = query.where(Notification.status == status)
    rows = await uow.session.execute(query.order_by(Notification.created_at.desc()).limit(limit))
    return counts, [dict(row) for row in rows.mappings()]
