"""Engine, sessions and the unit of work (one per request or job).

Services never commit. The unit of work commits once, then runs after-commit hooks
(enqueue jobs, publish live events). On error it rolls back and drops the hooks.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from orchestrator.deps import Enqueuer, Messaging, Publisher, QueueRefresh
from orchestrator.repositories.writes import NewRow, write_together

log = logging.getLogger(__name__)

AfterCommit = Callable[[], Awaitable[None]]


def to_async_url(url: str) -> str:
    """Turn a plain ``postgresql://`` URL into the SQLAlchemy asyncpg form."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("database URL must start with postgresql://")


def sqlstate(exc: BaseException) -> str | None:
    """PostgreSQL's SQLSTATE of a database error (SQLAlchemy wraps the asyncpg error)."""
    orig = getattr(exc, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None)):
        if (state := getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)) is not None:
            return str(state)
    return None


def constraint_name(exc: BaseException) -> str | None:
    """The constraint a database error names (asyncpg gives it apart from the message)."""
    orig = getattr(exc, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None)):
        if (name := getattr(candidate, "constraint_name", None)) is not None:
            return str(name)
    return None


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """The engine of a process. No ``pool_pre_ping`` (a round trip on every checkout): a pooled
    connection whose socket the server closed is noticed locally and replaced (``_drop_closed``);
    one lost in the middle of a request is a 503 the client retries (``connection_lost``)."""
    # hide_parameters: errors and tracebacks never carry bound values (names, phone numbers)
    engine = create_async_engine(
        to_async_url(url), pool_size=pool_size, max_overflow=20, hide_parameters=True
    )
    event.listen(engine.sync_engine, "checkout", _drop_closed)
    return engine


def _drop_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout hook: a connection the server has closed (restart, idle timeout,
    ``pg_terminate_backend``) is discarded and the pool hands out another, without a round trip."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise DisconnectionError("connection closed by the server")


def connection_lost(exc: BaseException) -> bool:
    """The database connection died under a statement (the request may be retried)."""
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@dataclass
class UnitOfWork:
    """One transaction, and the effects to run once it has committed (see ``deps`` for the ports)."""

    session: AsyncSession
    publisher: Publisher | None = None
    enqueuer: Enqueuer | None = None
    queue_refresh: QueueRefresh | None = None
    messaging: Messaging = field(default_factory=Messaging)
    _after_commit: list[AfterCommit] = field(default_factory=list)
    _new_rows: list[NewRow] = field(default_factory=list)

    def add_rows(self, *rows: NewRow) -> None:
        """Insert ``rows`` at commit, after the session's own changes, in one statement (audit
        rows: no ORM unit-of-work for them)."""
        self._new_rows.extend(rows)

    def after_commit(self, hook: AfterCommit) -> None:
        """Run ``hook`` once the transaction has committed (never if it rolls back)."""
        self._after_commit.append(hook)

    def publish(self, agency_id: uuid.UUID, event: dict[str, Any]) -> None:
        """Publish a live event of the agency after commit (dropped if nothing listens: a job)."""
        publisher = self.publisher
        if publisher is not None:
            self.after_commit(lambda: publisher.publish(agency_id, event))

    def refresh_queue(self, agency_id: uuid.UUID, *, notify: bool = True) -> None:
        """Have the agency's queue re-estimated after commit (counters, and "soon" SMS unless
        ``notify`` is False), off the request path."""
        refresh = self.queue_refresh
        if refresh is not None:
            self.after_commit(lambda: refresh.request(agency_id, notify=notify))

    async def reads_only(self) -> None:
        """Declare, before its first statement, that this unit only reads: its statements then
        run without BEGIN and COMMIT (two round trips fewer), each with its own snapshot — what
        READ COMMITTED gives statements inside a transaction anyway. A write would commit at
        once, statement by statement, so only handlers that never write call this. (A session
        bound to a connection, not the engine, joins that connection's transaction: unchanged.)"""
        if not isinstance(self.session.bind, AsyncConnection):
            await self.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})

    async def latest_event_id(self, agency_id: uuid.UUID) -> str:
        """Id of the agency's newest live event ("0-0" if none): a client replays from there."""
        return await self.publisher.latest_id(agency_id) if self.publisher is not None else "0-0"

    def enqueue(self, job: str, *args: Any, job_id: str | None = None) -> None:
        """Enqueue a background job after commit (the outbox sweeper retries what is lost)."""
        enqueuer = self.enqueuer
        if enqueuer is not None:
            self.after_commit(lambda: enqueuer.enqueue(job, *args, job_id=job_id))

    async def commit(self) -> None:
        if self._new_rows:
            rows, self._new_rows = self._new_rows, []
            await self.session.flush()  # the rows may reference what the session adds
            await write_together(self.session, rows)
        await self.session.commit()
        hooks, self._after_commit = self._after_commit, []
        for hook in hooks:
            try:
                await hook()
            except Exception:
                # the work is committed; a failed hook (e.g. Redis down) is retried by the sweepers
                log.exception("after-commit hook failed")


@asynccontextmanager
async def unit_of_work(
    sessions: async_sessionmaker[AsyncSession],
    publisher: Publisher | None = None,
    enqueuer: Enqueuer | None = None,
    queue_refresh: QueueRefresh | None = None,
    messaging: Messaging | None = None,
) -> AsyncIterator[UnitOfWork]:
    """Open a session; commit and run hooks on success, roll back on any exception."""
    async with sessions() as session:
        uow = UnitOfWork(session, publisher, enqueuer, queue_refresh, messaging or Messaging())
        try:
            yield uow
        except BaseException:
            await session.rollback()
            raise
        await uow.commit()
