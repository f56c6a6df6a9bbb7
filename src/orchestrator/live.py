"""Live queue events: one Redis Stream per agency, shared by every API process.

Services publish *after commit* (``uow.after_commit``), so a client never sees an event for a
change that was rolled back. Each event's stream id (``1712345678901-0``) is its SSE ``id``: a
client that reconnects with ``Last-Event-ID`` gets every event after it replayed from the stream,
as long as that id is still retained (``MAXLEN ~ 5000`` per agency); otherwise it gets a fresh
``snapshot``. Events carry ticket numbers, desks and counters only — never names or phones.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

from redis.asyncio import Redis

MAXLEN = 5000
_ID = re.compile(r"^\d{1,20}-\d{1,20}$")

# Open SSE streams in this process (an operations gauge; also lets tests see streams end).
open_streams = 0


def stream_key(agency_id: uuid.UUID) -> str:
    return f"orchestrator:queue:{agency_id}:events"


def valid_id(value: str | None) -> bool:
    return value is not None and bool(_ID.match(value))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def publish(redis: Redis, agency_id: uuid.UUID, event: dict[str, Any]) -> str:
    """Append an event; returns its id."""
    entry_id = await redis.xadd(
        stream_key(agency_id),
        {"data": json.dumps(event, separators=(",", ":"))},
        maxlen=MAXLEN,
        approximate=True,
    )
    return _text(entry_id)


async def latest_id(redis: Redis, agency_id: uuid.UUID) -> str:
    """Id of the newest event, ``0-0`` when there is none yet."""
    entries = await redis.xrevrange(stream_key(agency_id), count=1)
    return _text(entries[0][0]) if entries else "0-0"


async def retained(redis: Redis, agency_id: uuid.UUID, event_id: str) -> bool:
    """True if ``event_id`` is still in the stream, so everything after it can be replayed."""
    if not valid_id(event_id):
        return False
    return bool(await redis.xrange(stream_key(agency_id), min=event_id, max=event_id, count=1))


def _decode(entries: Any) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for entry_id, fields in entries:
        raw = fields.get(b"data", fields.get("data"))
        try:
            payload = json.loads(raw) if raw is not None else {}
        except ValueError:
            payload = {}
        out.append((_text(entry_id), payload if isinstance(payload, dict) else {}))
    return out


async def read_after(
    redis: Redis,
    agency_id: uuid.UUID,
    after: str,
    *,
    block_ms: int,
    count: int = 100,
    closing: asyncio.Event | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Events after ``after`` (waiting up to ``block_ms`` for the first one); [] on timeout, or
    as soon as ``closing`` is set (the server is stopping: streams end at once, cleanly)."""
    key = stream_key(agency_id)
    read = asyncio.ensure_future(redis.xread({key: after}, count=count, block=block_ms))
    if closing is not None:
        stop = asyncio.ensure_future(closing.wait())
        await asyncio.wait({read, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not read.done():
            read.cancel()  # redis-py drops the connection of a cancelled blocking read
            return []
    result = await read
    if not result:
        return []
    return _decode(result[0][1])
