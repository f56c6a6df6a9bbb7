"""Ports: what use cases need from the outside world, and the dependencies of one process.

Use cases never see a Redis client or an arq pool. They record effects on the unit of work
(``uow.publish(...)``, ``uow.enqueue(...)``), which hands them to these ports once the transaction
has committed. The composition roots (``app.py`` for HTTP, ``worker.py`` for jobs) build the real
ports; tests pass their own ``Deps`` (recording fakes included) — no patching by string path.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from orchestrator import live
from orchestrator.scheduling.reminders import QuietHours
from orchestrator.settings import Settings

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Publisher(Protocol):
    """Live events of an agency (boards, consoles), shared by every process."""

    async def publish(self, agency_id: uuid.UUID, event: dict[str, Any]) -> None: ...

    async def latest_id(self, agency_id: uuid.UUID) -> str: ...


class Enqueuer(Protocol):
    """Background jobs. ``job_id`` makes a job unique: enqueuing it twice runs it once."""

    async def enqueue(self, job: str, *args: Any, job_id: str | None = None) -> None: ...


class QueueRefresh(Protocol):
    """Re-estimating an agency's walk-in queue (board counters, "soon" SMS) after a change:
    asked for after every commit that changes who waits or who serves; how soon and how often it
    runs is the implementation's business (``services.queue_refresh``)."""

    async def request(self, agency_id: uuid.UUID, *, notify: bool = True) -> None:
        """``notify=False``: counters only (a new ticket moves nobody forward: no "soon" SMS)."""


@dataclass(frozen=True)
class Messaging:
    """How messages to job seekers are written and paced (from ``Settings``)."""

    public_base_url: str = "http://127.0.0.1:8000"
    quiet: QuietHours = field(default_factory=QuietHours)
    reminder_offsets: tuple[timedelta, ...] = (timedelta(hours=48), timedelta(hours=2))
    per_number_per_hour: int = 6
    inbound_per_number_per_hour: int = 30
    grace: timedelta = timedelta(seconds=10)
    stale: timedelta = timedelta(seconds=120)
    email_from: str = "orchestrator@localhost"  # the From of e-mails, the organizer of invitations

    @classmethod
    def from_settings(cls, settings: Settings) -> Messaging:
        return cls(
            public_base_url=settings.public_base_url.rstrip("/"),
            quiet=QuietHours.parse(settings.quiet_hours),
            reminder_offsets=tuple(timedelta(hours=h) for h in settings.reminder_offsets_hours),
            per_number_per_hour=settings.sms_per_number_per_hour,
            inbound_per_number_per_hour=settings.sms_inbound_per_number_per_hour,
            grace=timedelta(seconds=settings.outbox_grace_seconds),
            stale=timedelta(seconds=settings.outbox_stale_seconds),
            email_from=settings.smtp_from,
        )

    def manage_link(self, token: str | None) -> str | None:
        return f"{self.public_base_url}/m/{token}" if token else None


@dataclass(frozen=True, slots=True)
class SentSms:
    """What the provider said when it took a message: its id (``SM…``) and first status."""

    sid: str
    status: str


class SmsRefused(Exception):
    """The provider did not take the message. ``permanent``: it never will (bad number, opted
    out, landline); otherwise (rate limit, 5xx, network) a later attempt may succeed."""

    def __init__(
        self, code: int | None, permanent: bool, detail: str = "", *, number_is_unreachable: bool = False
    ) -> None:
        super().__init__(f"SMS refused (code {code}): {detail}")
        self.code, self.permanent, self.number_is_unreachable = code, permanent, number_is_unreachable


class SmsOutcomeUnknown(Exception):
    """The request may have reached the provider (timeout, connection cut mid-answer): the
    message may or may not exist. Never resend blind; settle it with ``find_sent`` first."""


class SmsSender(Protocol):
    """Sends one SMS; finds one already sent (to settle a send whose outcome we did not record)."""

    async def send(self, to: str, body: str, *, status_callback: str | None) -> SentSms: ...

    async def find_sent(self, to: str, body: str, since: datetime) -> SentSms | None: ...


@dataclass(frozen=True, slots=True)
class Email:
    """One e-mail as rendered when its outbox row was written: plain text and simple HTML, and
    for appointments an iCalendar invitation (``calendar``, with its ``method``: REQUEST or
    CANCEL) sent inline and as ``invite.ics``. ``message_id`` is the row's own: a resend after
    a crash carries the same one, so mail clients show it once."""

    to: str
    subject: str
    text: str
    html: str
    message_id: str
    calendar: str | None = None
    method: str | None = None


class EmailRefused(Exception):
    """The mail server did not take the message. ``permanent`` (5xx: no such mailbox, refused):
    it never will; otherwise (4xx, connection refused, timeout) a later attempt may succeed."""

    def __init__(self, code: int | None, permanent: bool, detail: str = "") -> None:
        super().__init__(f"e-mail refused (code {code}): {detail}")
        self.code, self.permanent = code, permanent


class EmailSender(Protocol):
    """Hands one e-mail to the mail server; returns its Message-ID."""

    async def send(self, email: Email) -> str: ...


class VoiceDialer(Protocol):
    """Rings ``to`` (the counsellor) and, once answered, connects them to ``person``, showing
    ``caller_id``; returns the provider's call id."""

    async def bridge(self, to: str, person: str, caller_id: str, *, status_callback: str) -> str: ...


@dataclass(frozen=True, slots=True)
class BusyTime:
    """An external calendar's busy time over a window, and the validators to ask again."""

    spans: list[tuple[datetime, datetime]]
    etag: str | None
    last_modified: str | None


class CalendarUnchanged(Exception):
    """The calendar has not changed since the validators given (HTTP 304)."""


class CalendarError(Exception):
    """The calendar could not be read (refused address, timeout, too big, not iCalendar…)."""


class CalendarFetcher(Protocol):
    async def busy(
        self, url: str, *, etag: str | None, last_modified: str | None, since: datetime, until: datetime
    ) -> BusyTime: ...


@dataclass(frozen=True)
class RedisPublisher:
    redis: Redis

    async def publish(self, agency_id: uuid.UUID, event: dict[str, Any]) -> None:
        await live.publish(self.redis, agency_id, event)

    async def latest_id(self, agency_id: uuid.UUID) -> str:
        return await live.latest_id(self.redis, agency_id)


@dataclass(frozen=True)
class ArqEnqueuer:
    """arq's queue on the same Redis (``queue``: the key the workers read, see ``Settings.job_queue``)."""

    redis: Redis
    queue: str = "arq:queue"

    async def enqueue(self, job: str, *args: Any, job_id: str | None = None) -> None:
        from arq.connections import ArqRedis

        pool = ArqRedis(connection_pool=self.redis.connection_pool)
        await pool.enqueue_job(job, *args, _job_id=job_id, _queue_name=self.queue)


@dataclass
class Deps:
    """Everything a process needs from the outside world; tests pass their own."""

    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    clock: Clock = utc_now
    engine: AsyncEngine | None = None
    publisher: Publisher | None = None  # default: live events on ``redis``
    enqueuer: Enqueuer | None = None  # default: arq on ``redis``
    queue_refresh: QueueRefresh | None = None  # default (set by the app): debounced, in-process
    messaging: Messaging = field(default_factory=Messaging)
    board_refresh_seconds: float = 0.25  # at most this long between a change and the new counters
    # set when the server starts stopping: open SSE streams end at once instead of being cut
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    sse_keepalive_ms: int = 15_000  # a comment at least this often keeps proxies from closing a stream
    sse_max_seconds: float = 300.0  # streams end after this long; clients reconnect with Last-Event-ID

    def stop_streams(self) -> None:
        """End the open SSE streams (called from a signal handler: scheduled thread-safely)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop runs here (yet): nothing is waiting on the event
            self.closing.set()
            return
        loop.call_soon_threadsafe(self.closing.set)

    def __post_init__(self) -> None:
        if self.publisher is None:
            self.publisher = RedisPublisher(self.redis)
        if self.enqueuer is None:
            self.enqueuer = ArqEnqueuer(self.redis)

    @classmethod
    def from_settings(cls, settings: Settings) -> Deps:
        from orchestrator.db import make_engine, make_sessionmaker  # db imports these ports

        if not settings.database_url or not settings.redis_url:
            raise RuntimeError("database_url and redis_url must be resolved before building the app")
        engine = make_engine(settings.database_url)
        redis = Redis.from_url(settings.redis_url)
        return cls(
            sessions=make_sessionmaker(engine),
            redis=redis,
            engine=engine,
            enqueuer=ArqEnqueuer(redis, settings.job_queue),
            messaging=Messaging.from_settings(settings),
        )

    async def close(self) -> None:
        await self.redis.aclose()
        if self.engine is not None:
            await self.engine.dispose()
