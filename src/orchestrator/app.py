"""HTTP composition root: ``create_app(settings, deps)`` builds the Litestar application."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import re
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from orchestrator import __version__
from orchestrator.auth import InvalidToken, Principal, read_token
from orchestrator.channels.calendar import appointment_ics_alias
from orchestrator.channels.overload import shed_load
from orchestrator.channels.ratelimit import rate_limit
from orchestrator.db import UnitOfWork, connection_lost, constraint_name, sqlstate, unit_of_work
from orchestrator.deps import Clock, Deps, Messaging
from orchestrator.errors import DomainError
from orchestrator.logs import request_id_middleware
from orchestrator.scheduling.transitions import BadTransition
from orchestrator.schemas import edge_violation
from orchestrator.services.queue_refresh import DebouncedQueueRefresh
from orchestrator.settings import Settings

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem(status: int, title: str, detail: str, **extra: Any) -> Response[dict[str, Any]]:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return Response(body, status_code=status, media_type=PROBLEM_JSON)


def _domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    return problem(exc.status, exc.title, exc.detail, code=exc.code, **exc.extra)


def _bad_transition(_: Request[Any, Any, Any], exc: BadTransition) -> Response[dict[str, Any]]:
    return problem(409, "Conflict", str(exc), code="bad_transition", status_now=exc.current.value)


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    extra: dict[str, Any] = {}
    status = exc.status_code
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        errors = [_validation_error(e) for e in exc.extra if isinstance(e, dict)]
        extra["errors"] = [{"field": field, "message": message} for field, message, _ in errors]
        if errors and all(edge for _, _, edge in errors):
            status = 422  # well-formed, but breaks the text/time rule
    title = {
        400: "Bad request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not found",
        422: "Unprocessable content",
    }.get(status, "Error")
    return problem(status, title, exc.detail, **extra)


def _validation_error(error: dict[str, Any]) -> tuple[str | None, Any, bool]:
    """(field, message, broke the text/time rule) of one Litestar validation error."""
    message = error.get("message")
    plain = edge_violation(str(message))
    return _error_field(error), plain or message, plain is not None


def _error_field(error: dict[str, Any]) -> str | None:
    # Litestar names the whole body "data" when the error is not tied to one field (a missing or
    # unknown field, or a check in a body's ``__post_init__``); the message names the field then.
    key = error.get("key")
    if key and key != "data":
        # a nested object's unknown/missing field: Litestar gives the object as key ("job_seeker")
        named = _NAMED_FIELD.search(str(error.get("message", "")))
        return f"{key}.{named.group(1)}" if named else str(key)
    return _field_from_message(str(error.get("message", ""))) or key


_NAMED_FIELD = re.compile(r"(?:missing required field|contains unknown field) `([^`]+)`")
_PREFIXED_FIELD = re.compile(r"^([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*): ")  # "end: must be after start"


def _field_from_message(message: str) -> str | None:
    # msgspec says "... - at `$.job_seeker.phone`"; an unknown or missing field inside a nested
    # object is "Object contains unknown field `x` - at `$.job_seeker`" → "job_seeker.x"
    marker = "at `$."
    path = message.split(marker, 1)[1].rstrip("`") if marker in message else None
    if match := _NAMED_FIELD.search(message):
        return f"{path}.{match.group(1)}" if path else match.group(1)
    prefixed = _PREFIXED_FIELD.match(message)
    if path:  # a nested body's own check names its field: "name: …" at `$.job_seeker`
        return f"{path}.{prefixed.group(1)}" if prefixed else path
    return prefixed.group(1) if prefixed else None


RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected
TAKEN_BY_A_CONCURRENT_REQUEST = {"uq_agencies_sms_number": "another agency already uses this SMS number"}


def _unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    if isinstance(exc, DBAPIError) and sqlstate(exc) in RETRYABLE_SQLSTATES:
        response = problem(409, "Conflict", "concurrent update, try again", code="retry")
        response.headers["Retry-After"] = "1"
        return response
    if isinstance(exc, DBAPIError) and (
        taken := TAKEN_BY_A_CONCURRENT_REQUEST.get(constraint_name(exc) or "")
    ):
        # checked by the service first; only a concurrent twin that committed meanwhile lands here
        return problem(409, "Conflict", taken, code="conflict")
    if connection_lost(exc):  # nothing was committed: the transaction died with its connection
        log.warning("database connection lost during a request")
        response = problem(503, "Service unavailable", "database connection lost, try again", code="retry")
        response.headers["Retry-After"] = "1"
        return response
    # no personal data: engines hide bound parameters, the log formatter hides driver messages
    log.exception("unhandled error", extra={"sqlstate": sqlstate(exc)})
    return problem(500, "Internal server error", "unexpected error; it has been logged")


@get("/health", tags=["operations"], include_in_schema=True)
async def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok", "version": __version__}


@get(
    "/ready",
    tags=["operations"],
    responses={503: ResponseSpec(data_container=dict[str, str], description="unavailable")},
)
async def ready(deps: NamedDependency[Deps]) -> Response[dict[str, Any]]:
    """PostgreSQL and Redis are reachable (503 otherwise)."""
    checks: dict[str, str] = {}
    try:
        async with deps.sessions() as session:
            await session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        await deps.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return Response(
        {"status": "ok" if healthy else "unavailable", **checks}, status_code=200 if healthy else 503
    )


SWAGGER_ASSETS = "/schema/assets"
# Swagger UI 5 (OpenAPI 3.1) as shipped in the swagger-ui-py wheel: no CDN, no npm
SWAGGER_UI_FILES = Path(str(resources.files("swagger_ui") / "static"))


def _offline_swagger() -> SwaggerRenderPlugin:
    """Swagger UI at /schema and /schema/swagger, its assets served by the app itself (from the
    ``swagger-ui-py`` wheel): the docs work without internet and load nothing from a CDN."""
    return SwaggerRenderPlugin(
        path=["/", "/swagger"],
        js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
        css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{SWAGGER_ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{SWAGGER_ASSETS}/favicon-32x32.png'>",
    )


def _end_streams_on_stop_signals(deps: Deps) -> None:
    """When the server process is told to stop, end its SSE streams at once (they would hold the
    graceful shutdown until its timeout, then be cancelled with a traceback each). The server
    installed its SIGINT/SIGTERM handlers before the app starts: ours runs first, then theirs."""
    if threading.current_thread() is not threading.main_thread():
        return  # signals reach the main thread only (an app run by a test client elsewhere)
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if callable(previous):
            signal.signal(sig, functools.partial(_stop_then, deps, previous))


def _stop_then(
    deps: Deps, previous: Callable[[int, FrameType | None], Any], sig: int, frame: FrameType | None
) -> None:
    deps.stop_streams()
    previous(sig, frame)


def create_app(
    settings: Settings, deps: Deps | None = None, *, route_handlers: list[Any] | None = None
) -> Litestar:
    """Build the application. Without ``deps`` the real engine and Redis are created from settings."""
    from orchestrator.channels import admin, calendar, callbacks, capacity, manage, sms, voice, walkin, web

    owned = deps is None
    resolved: dict[str, Deps] = {"deps": deps or Deps.from_settings(settings)}
    resolved["deps"].messaging = Messaging.from_settings(settings)
    refresh = resolved["deps"].queue_refresh
    if refresh is None:
        d = resolved["deps"]
        refresh = d.queue_refresh = DebouncedQueueRefresh(
            d.sessions, d.publisher, d.enqueuer, lambda: resolved["deps"].clock(), d.board_refresh_seconds
        )

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        _end_streams_on_stop_signals(resolved["deps"])
        try:
            yield
        finally:
            if isinstance(refresh, DebouncedQueueRefresh):
                await refresh.drain()  # the last changes' counters and SMS, before the engine closes
            if owned:
                await resolved["deps"].close()

    def provide_deps() -> Deps:
        return resolved["deps"]

    def provide_clock() -> Clock:
        return resolved["deps"].clock

    async def provide_uow() -> AsyncIterator[UnitOfWork]:
        deps = resolved["deps"]
        async with unit_of_work(
            deps.sessions, deps.publisher, deps.enqueuer, deps.queue_refresh, deps.messaging
        ) as uow:
            yield uow

    def provide_principal(request: Request[Any, Any, Any]) -> Principal | None:
        header = request.headers.get("authorization")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(status_code=401, detail="Authorization must be 'Bearer <token>'")
        try:
            return read_token(settings.token_secret, token.strip())
        except InvalidToken as exc:
            raise HTTPException(status_code=401, detail="invalid or expired token") from exc

    def provide_settings() -> Settings:
        return settings

    def provide_idempotency_scope(
        request: Request[Any, Any, Any], principal: NamedDependency[Principal | None]
    ) -> str:
        """Whose Idempotency-Keys a request may replay: the token's subject, or for anonymous
        callers their client address (keyed-hashed: an address is personal data)."""
        if principal is not None:
            return principal.actor
        client = request.client.host if request.client else "unknown"
        digest = hmac.new(settings.token_secret.encode(), client.encode(), hashlib.sha256).hexdigest()
        return f"anonymous:{digest[:40]}"

    public_limit = rate_limit(
        resolved["deps"].redis,
        settings.public_rate_limit_per_minute,
        settings.token_secret,
        clock=lambda: resolved["deps"].clock(),
    )
    handlers: list[Any] = [
        health,
        ready,
        create_static_files_router(
            path=SWAGGER_ASSETS,
            directories=[SWAGGER_UI_FILES],
            include_in_schema=False,
            name="swagger-assets",
        ),
        *admin.HANDLERS,
        web.router(public_limit),
        callbacks.router(public_limit),
        *callbacks.STAFF_HANDLERS,
        *walkin.HANDLERS,
        *sms.HANDLERS,
        *manage.HANDLERS,
        *voice.HANDLERS,
        *calendar.HANDLERS,
        *capacity.HANDLERS,
        *(route_handlers or []),
    ]
    app = Litestar(
        route_handlers=handlers,
        dependencies={
            "deps": Provide(provide_deps, sync_to_thread=False),
            "clock": Provide(provide_clock, sync_to_thread=False),
            "uow": Provide(provide_uow),
            "principal": Provide(provide_principal, sync_to_thread=False),
            "settings": Provide(provide_settings, sync_to_thread=False),
            "idempotency_scope": Provide(provide_idempotency_scope, sync_to_thread=False),
        },
        exception_handlers={
            DomainError: _domain_error,
            BadTransition: _bad_transition,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="orchestrator",
            version=__version__,
            path="/schema",
            components=Components(
                security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")}
            ),
            render_plugins=[_offline_swagger()],
        ),
        logging_config=None,  # logging is configured once by the CLI (JSON, request ids)
        debug=False,
    )
    # Around the whole ASGI handler, not as route middleware: unmatched routes (404/405) get a
    # request id and an access line too.
    app.asgi_handler = shed_load(settings.max_in_flight)(
        request_id_middleware(appointment_ics_alias(app.asgi_handler))
    )
    return app
