"""Per-client rate limit for public endpoints: one Redis round trip, nothing stale after a minute.

The generic cell rate algorithm (GCRA): each client address has a "theoretical arrival time"
in Redis; a request is allowed while that time is less than one period ahead of now, and moves it
one interval (period / limit) further. It spreads a budget of N requests a minute without the
burst at a fixed window's edge, gives an exact ``Retry-After``, and its key expires as soon as the
client is back to a full budget, so a restart never inherits stale counters. The script runs in
one ``EVALSHA``. Callers with a *valid* bearer token (staff, kiosks) are not throttled; a forged
or expired token is throttled like anyone else (and then refused by the handler).

If Redis is unreachable the limiter lets requests through (and logs it): booking must not stop
because the limiter's store is down.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from datetime import datetime

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send
from redis.asyncio import Redis
from redis.exceptions import RedisError

from orchestrator.auth import InvalidToken, read_token

log = logging.getLogger(__name__)

PERIOD_MS = 60_000
KEY_PREFIX = "orchestrator:ratelimit:"
_GCRA = """
local now, interval, period = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > period then return {0, new_tat - now - period} end
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, math.ceil(new_tat - now)))
return {1, math.floor((period - (new_tat - now)) / interval)}
"""


def rate_limit(
    redis: Redis, per_minute: int, token_secret: str, clock: Callable[[], datetime]
) -> Callable[[ASGIApp], ASGIApp]:
    """Route middleware: at most ``per_minute`` requests a minute per client address."""
    script = redis.register_script(_GCRA)
    interval = PERIOD_MS / per_minute

    def middleware(app: ASGIApp) -> ASGIApp:
        async def limited(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP or _has_valid_token(scope, token_secret):
                await app(scope, receive, send)
                return
            client = (scope.get("client") or ("unknown", 0))[0]
            now_ms = int(clock().timestamp() * 1000)
            try:
                allowed, value = await script(keys=[KEY_PREFIX + client], args=[now_ms, interval, PERIOD_MS])
            except RedisError:
                log.warning("rate limiter unavailable; request let through")
                await app(scope, receive, send)
                return
            if allowed:
                await app(scope, receive, send)
            else:
                await _too_many(send, per_minute, retry_after=max(1, math.ceil(int(value) / 1000)))

        return limited

    return middleware


def _has_valid_token(scope: Scope, secret: str) -> bool:
    header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    try:
        read_token(secret, token.strip())
    except InvalidToken:
        return False
    return True


async def _too_many(send: Send, per_minute: int, *, retry_after: int) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": "Too many requests",
            "status": 429,
            "detail": f"at most {per_minute} requests a minute from one client; retry in {retry_after} s",
            "code": "rate_limited",
            "retry_after_seconds": retry_after,
        }
    ).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after).encode()),
        (b"ratelimit-limit", str(per_minute).encode()),
        (b"ratelimit-remaining", b"0"),
        (b"ratelimit-reset", str(retry_after).encode()),
    ]
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": 429, "headers": headers}
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(start)
    await send(end)
