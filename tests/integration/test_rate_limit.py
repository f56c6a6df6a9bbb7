"""The public rate limit: per client address, a clear 429 with Retry-After, forged tokens get no
pass, and nothing survives in Redis once the client is back to a full budget."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.helpers import assert_problem, bearer
from tests.integration.test_booking_api import MON_0309, _world

LIMIT = 3


def _address() -> str:
    octets = uuid.uuid4().bytes
    return f"10.{octets[0]}.{octets[1]}.{octets[2]}"


@pytest.fixture
async def limited(settings, deps) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:  # type: ignore[no-untyped-def]
    from orchestrator.app import create_app

    app = create_app(dataclasses.replace(settings, public_rate_limit_per_minute=LIMIT), deps)
    address = _address()
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http:
        yield http, address


async def _exhaust(http: httpx.AsyncClient, params: dict[str, Any]) -> httpx.Response:
    for _ in range(LIMIT):
        assert (await http.get("/api/v1/availability", params=params)).status_code == 200
    return await http.get("/api/v1/availability", params=params)


async def test_429_says_when_to_retry(client, limited, clock):
    http, _ = limited
    w = await _world(client)
    params = {"agency_id": w["agency"]["id"], "service_id": w["service"]["id"], **MON_0309}
    r = await _exhaust(http, params)
    body = assert_problem(r, 429)
    assert body["title"] == "Too many requests"
    assert body["code"] == "rate_limited"
    assert r.headers["retry-after"] == "20"  # 3 a minute: the next one is allowed 20 s later
    assert r.headers["ratelimit-limit"] == str(LIMIT)
    clock.advance(seconds=19)
    assert_problem(await http.get("/api/v1/availability", params=params), 429)
    clock.advance(seconds=1)
    assert (await http.get("/api/v1/availability", params=params)).status_code == 200


async def test_a_forged_or_expired_bearer_gets_no_pass(client, limited):
    http, _ = limited
    w = await _world(client)
    params = {"agency_id": w["agency"]["id"], "service_id": w["service"]["id"], **MON_0309}
    await _exhaust(http, params)
    for header in ("Bearer forged.token.value", "Bearer " + "x" * 40, "Basic abc"):
        assert_problem(
            await http.get("/api/v1/availability", params=params, headers={"Authorization": header}), 429
        )
    staff = bearer("front_desk", w["agency"]["id"])
    assert (await http.get("/api/v1/availability", params=params, headers=staff)).status_code == 200


async def test_clients_have_separate_budgets_and_no_stale_state(client, limited, redis, settings, deps):
    http, address = limited
    w = await _world(client)
    params = {"agency_id": w["agency"]["id"], "service_id": w["service"]["id"], **MON_0309}
    await _exhaust(http, params)
    ttl_ms = await redis.pttl(f"orchestrator:ratelimit:{address}")
    assert 0 < ttl_ms <= 60_000  # the key disappears once the budget is full again
    from orchestrator.app import create_app

    other = httpx.ASGITransport(
        app=create_app(dataclasses.replace(settings, public_rate_limit_per_minute=LIMIT), deps),
        client=(_address(), 40000),
    )
    async with httpx.AsyncClient(transport=other, base_url="http://testserver.local") as neighbour:
        assert (await neighbour.get("/api/v1/availability", params=params)).status_code == 200
