"""The walk-in queue re-estimated off the request path: board counters and "soon" SMS.

Estimating every waiting person's wait is a forward simulation of the whole queue; it used to run
inside every call next, requeue, cancel…, and its cost grew with the queue. Now a change asks
for a refresh after its commit (``uow.refresh_queue``) and :class:`DebouncedQueueRefresh` runs
:func:`refresh_queue` for that agency at most once per ``delay`` in this process: a burst of
forty calls costs one estimate, and the board gets its new counters within ``delay`` (0.25 s by
default, well inside the board's one second). A request that read the queue anyway (call next,
issue) publishes its event with the cheap counters (people waiting, desks open); one that did not
(an appointment's check-in, completion, no-show) publishes its event without them; the refresh
adds a ``counters`` event with all of them and the typical wait. "Soon" SMS are recorded by the
refresh, in its own transaction, once each (outbox dedupe key).

If a process stops between a commit and its refresh, the next change of that agency (in any
process) re-estimates everything: the refresh reads the whole queue's current state, not the
changes since its last run.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.db import UnitOfWork, unit_of_work
from orchestrator.deps import Enqueuer, Publisher
from orchestrator.services.queue_common import agency_of, notify_soon
from orchestrator.services.queue_snapshot import board_stats, load_snapshot

log = logging.getLogger(__name__)


async def refresh_queue(uow: UnitOfWork, agency_id: uuid.UUID, *, now: datetime, notify: bool = True) -> int:
    """Re-estimate the agency's queue: record the "soon" SMS now due (with ``notify``) and
    publish the board's counters (``counters`` event). Returns the number of SMS recorded."""
    snapshot = await load_snapshot(uow.session, await agency_of(uow, agency_id), now)
    sent = await notify_soon(uow, snapshot) if notify else 0
    uow.publish(agency_id, {"type": "counters", "at": now.isoformat(), **board_stats(snapshot)})
    return sent


class DebouncedQueueRefresh:
    """Runs :func:`refresh_queue` per agency at most once per ``delay``, in background tasks of
    this process (requests never wait for it). ``delay=0`` runs it right after the commit that
    asked, before the request answers (tests that must see its effects deterministically)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        publisher: Publisher | None,
        enqueuer: Enqueuer | None,
        clock: Callable[[], datetime],
        delay: float,
    ) -> None:
        self._sessions, self._publisher, self._enqueuer, self._clock = sessions, publisher, enqueuer, clock
        self._delay = delay
        self._pending: dict[uuid.UUID, bool] = {}  # agency → "soon" SMS wanted by one of the changes
        self._tasks: set[asyncio.Task[None]] = set()

    async def request(self, agency_id: uuid.UUID, *, notify: bool = True) -> None:
        if self._delay <= 0:
            await self._run(agency_id, notify)
            return
        if agency_id in self._pending:  # a refresh is already due: it will see this change too
            self._pending[agency_id] |= notify
            return
        self._pending[agency_id] = notify
        task = asyncio.create_task(self._later(agency_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the refreshes already asked for (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _later(self, agency_id: uuid.UUID) -> None:
        await asyncio.sleep(self._delay)  # the debounce window: changes meanwhile share this run
        notify = self._pending.pop(agency_id)  # from here on, a change asks for the next run
        await self._run(agency_id, notify)

    async def _run(self, agency_id: uuid.UUID, notify: bool) -> None:
        try:
            async with unit_of_work(self._sessions, self._publisher, self._enqueuer) as uow:
                await refresh_queue(uow, agency_id, now=self._clock(), notify=notify)
        except Exception:
            log.exception("queue refresh failed")  # the next change of the agency retries
