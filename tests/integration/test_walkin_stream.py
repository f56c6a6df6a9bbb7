"""Live queue events over Server-Sent Events, and the public display board page.

SSE needs a real streaming server (httpx's ASGI transport buffers whole responses), so the
test app — same rolled-back database, Redis and FakeClock — is served by uvicorn on the test's
own event loop.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from orchestrator import live
from tests.helpers import assert_problem
from tests.integration.test_walkin_queue import call_next, front, issue, open_agency

WAIT = 5.0  # seconds: generous upper bound for an event to arrive (a condition wait, not a sleep)


@pytest.fixture
async def served(app) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, lifespan="on", timeout_graceful_shutdown=2
        )
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class EventReader:
    """Parses an SSE response into (event, id, data) tuples."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()
        self.comments: list[str] = []

    async def next(self) -> tuple[str, str | None, dict[str, Any]]:
        event, event_id, data = "message", None, []
        async with asyncio.timeout(WAIT):
            async for line in self.lines:
                if line == "":
                    if data:
                        return event, event_id, json.loads("\n".join(data))
                    event, event_id = "message", None
                    continue
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "event":
                    event = value
                elif name == "id":
                    event_id = value
                elif name == "data":
                    data.append(value)
        raise AssertionError("stream ended")

    async def comment(self, text: str) -> None:
        """Wait for a comment line (keep-alive) to arrive."""
        async with asyncio.timeout(WAIT):
            async for line in self.lines:
                if line.startswith(":") and line[1:].strip() == text:
                    return
        raise AssertionError("stream ended")

    async def until(self, kind: str) -> tuple[str | None, dict[str, Any]]:
        while True:
            event, event_id, data = await self.next()
            if event == kind:
                return event_id, data


async def test_stream_sends_a_snapshot_then_live_events_without_personal_data(client, served):
    setup = await open_agency(client, desks=1)
    agency_id = setup["id"]
    counsellor = setup["counsellors"][0]
    await issue(client, agency_id, setup["service"]["id"])
    async with (
        httpx.AsyncClient(base_url=served, timeout=WAIT) as http,
        http.stream(
            "GET",
            f"/api/v1/agencies/{agency_id}/queue/stream",  # no token: the board is public
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = EventReader(response)
        event, snapshot_id, snapshot = await reader.next()
        assert event == "snapshot" and snapshot_id
        assert (
            snapshot["waiting_count"] == 1
            and snapshot["calls"] == []
            and snapshot["typical_wait_minutes"] == 0
        )
        await issue(
            client,
            agency_id,
            setup["service"]["id"],
            job_seeker={"name": "Awa Traoré", "phone": "0612345678"},
        )
        _, issued = await reader.until("issued")
        assert issued["number"] == "A002" and issued["waiting_count"] == 2
        await call_next(client, counsellor)
        called_id, called = await reader.until("called")
        assert (called["number"], called["label"], called["desk"], called["kind"]) == (
            "A001",
            "A001",
            "1",
            "ticket",
        )
        assert called["waiting_count"] == 1
        assert called_id is not None and called_id > snapshot_id
    text = json.dumps([snapshot, issued, called])
    assert "Awa" not in text and "0612345678" not in text and "+336" not in text


async def test_reconnecting_with_last_event_id_replays_what_was_missed(client, served, clock):
    setup = await open_agency(client, desks=2)
    agency_id = setup["id"]
    one, two = setup["counsellors"]
    url = f"/api/v1/agencies/{agency_id}/queue/stream"
    async with httpx.AsyncClient(base_url=served, timeout=WAIT) as http:
        async with http.stream("GET", url) as response:
            reader = EventReader(response)
            await reader.until("snapshot")
            await issue(client, agency_id, setup["service"]["id"])
            seen_id, _ = await reader.until("issued")
        # disconnected: two more things happen
        await issue(client, agency_id, setup["service"]["id"])
        await call_next(client, one)
        clock.advance(seconds=30)
        await call_next(client, two)
        async with http.stream("GET", url, headers={"Last-Event-ID": str(seen_id)}) as response:
            reader = EventReader(response)
            replayed = []
            while len(replayed) < 3:  # the queue refresh's "counters" events come in between
                if (event := await reader.next())[0] != "counters":
                    replayed.append(event)
        assert [(e, d.get("number")) for e, _, d in replayed] == [
            ("issued", "A002"),
            ("called", "A001"),
            ("called", "A002"),
        ]
        # an id the stream no longer holds (or never held) gets a fresh snapshot instead
        async with http.stream("GET", url, params={"last_event_id": "1-0"}) as response:
            event, _, snapshot = await EventReader(response).next()
        assert event == "snapshot" and [c["label"] for c in snapshot["calls"]] == ["A002", "A001"]


async def test_stream_ends_when_the_client_disconnects(client, served):
    setup = await open_agency(client, desks=1)
    before = live.open_streams
    async with (
        httpx.AsyncClient(base_url=served, timeout=WAIT) as http,
        http.stream("GET", f"/api/v1/agencies/{setup['id']}/queue/stream") as response,
    ):
        await EventReader(response).until("snapshot")
        assert live.open_streams == before + 1
    deadline = time.monotonic() + WAIT
    while live.open_streams != before:  # the server notices the disconnect and ends the generator
        assert time.monotonic() < deadline, "stream still open after the client left"
        await asyncio.sleep(0.02)


async def test_keep_alive_comments(client, served, deps):
    deps.sse_keepalive_ms = 50
    setup = await open_agency(client, desks=1)
    async with (
        httpx.AsyncClient(base_url=served, timeout=WAIT) as http,
        http.stream("GET", f"/api/v1/agencies/{setup['id']}/queue/stream") as response,
    ):
        reader = EventReader(response)
        await reader.until("snapshot")
        await reader.comment("keep-alive")  # nothing happens: the stream still speaks


async def test_stream_of_unknown_agency_is_404(client):
    import uuid

    assert_problem(await client.get(f"/api/v1/agencies/{uuid.uuid4()}/queue/stream"), 404)


async def test_board_page(client):
    setup = await open_agency(client, desks=1)
    r = await client.get(f"/agencies/{setup['id']}/board")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert '<html lang="fr">' in page and 'aria-live="polite"' in page
    assert f"/api/v1/agencies/{setup['id']}/queue/stream" in page and "EventSource" in page
    assert "Agence Test" in page and "http://" not in page and "https://" not in page  # no external assets
    policy = r.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    import uuid

    assert (await client.get(f"/agencies/{uuid.uuid4()}/board")).status_code == 404
    _ = front  # the board needs no token


async def test_board_escapes_the_agency_name(client):
    from tests.helpers import ADMIN

    r = await client.post(
        "/api/v1/agencies",
        json={"name": "<script>alert(1)</script>", "timezone": "Europe/Paris"},
        headers=ADMIN,
    )
    page = (await client.get(f"/agencies/{r.json()['id']}/board")).text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
