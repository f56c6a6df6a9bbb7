"""Command line: ``orchestrator run|worker|local-twilio|local-smtp|simulate|migrate|seed-demo|token``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import logging
import multiprocessing
import os
import secrets
import signal
import sys
import uuid
from datetime import timedelta
from typing import Any

import uvicorn
from litestar import Litestar

from orchestrator.app import create_app
from orchestrator.channels.twilio import free_port, local_twilio_url
from orchestrator.embedded import EmbeddedServers
from orchestrator.logs import configure_logging
from orchestrator.settings import Settings

log = logging.getLogger("orchestrator")


def _token_secret(settings: Settings) -> str:
    """The configured secret, or (development only) one generated once and kept in the data folder."""
    if settings.token_secret:
        return settings.token_secret
    if not settings.embedded:
        raise SystemExit("ORCHESTRATOR_TOKEN_SECRET must be set when using external PostgreSQL/Redis")
    path = settings.data_dir / "token-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def resolve(settings: Settings, *, need_redis: bool = True) -> tuple[Settings, EmbeddedServers | None]:
    """Start embedded servers for whatever URL is missing; return settings with every URL filled in."""
    embedded = None
    database_url, redis_url = settings.database_url, settings.redis_url
    if database_url is None or (need_redis and redis_url is None):
        embedded = EmbeddedServers(settings.data_dir)
        if database_url is None:
            database_url = embedded.start_postgres()
        if need_redis and redis_url is None:
            redis_url = embedded.start_redis()
        print(f"embedded servers: data kept in {settings.data_dir.resolve()}", flush=True)
    secret = _token_secret(settings)
    return dataclasses.replace(
        settings, database_url=database_url, redis_url=redis_url, token_secret=secret
    ), embedded


def tune_gc() -> None:
    """Fewer, cheaper garbage collections for a long-running server.

    A 28-day availability answer allocates tens of thousands of short-lived objects; with the
    default gen-0 threshold (700) the collector runs dozens of times per request and walks every
    long-lived object (app, routes, SQLAlchemy metadata) each time. Freezing what start-up built
    and raising the threshold cut the measured p95 of that request from ~115 ms to ~50 ms.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _admin_token(settings: Settings) -> str:
    from orchestrator.auth import Role, issue_token

    return issue_token(
        settings.token_secret,
        role=Role.ADMIN,
        subject="demo-admin",
        ttl=timedelta(hours=settings.token_ttl_hours),
    )


async def _seed(settings: Settings) -> uuid.UUID:
    from orchestrator.db import make_engine, make_sessionmaker
    from orchestrator.demo import seed_demo
    from orchestrator.deps import Messaging

    assert settings.database_url
    engine = make_engine(settings.database_url, pool_size=2)
    try:
        return await seed_demo(make_sessionmaker(engine), messaging=Messaging.from_settings(settings))
    finally:
        await engine.dispose()


def app_from_env() -> Litestar:
    """The app of one API process, from the environment (the factory of ``--workers N``)."""
    settings = Settings.from_env()
    configure_logging(settings.log_level, as_json=settings.log_json)  # a fresh (spawned) process
    return served_app(settings)


def served_app(settings: Settings) -> Litestar:
    """The app as a server process runs it: :func:`freeze_startup_heap` once it has started."""
    app = create_app(settings)
    app.on_startup.append(freeze_startup_heap)
    return app


def freeze_startup_heap() -> None:
    """Move every object alive after startup (modules, the app, SQLAlchemy's and our caches) out
    of the garbage collector's reach (``gc.freeze``): a full collection then walks only what
    requests allocate. Measured in ``bench/profile_paths.py``'s process (app and client) during
    walk-in handouts with 300 waiting: a full collection paused it ~100 ms before, ~2 ms after,
    and the collector's share of its CPU fell from ~4 % to ~2 %. Servers only: a test process
    creates many apps, and frozen objects are never freed."""
    gc.collect()
    gc.freeze()


def _config(settings: Settings, app: Any, *, workers: int = 1) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        factory=isinstance(app, str),
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,  # a last resort: streams end as soon as the stop begins
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )


# An idle keep-alive connection is closed after this long. It must outlast the idle timeout of
# whatever reuses connections in front of us (HTTP clients' pools: 5 s for httpx; proxies and
# load balancers: typically 60 s): with uvicorn's default 5 s, a client could send a request on
# a connection at the moment the server closed it and get a reset (seen as `httpx.ReadError` in
# the queue benchmark), and a proxy answers that with a 502.
KEEP_ALIVE_SECONDS = 75


def _local_twilio_server(settings: Settings) -> uvicorn.Server | None:
    """The local Twilio's HTTP server, when no Twilio account is configured."""
    from urllib.parse import urlsplit

    from orchestrator.channels.local_twilio import LocalTwilio, create_local_twilio_app
    from orchestrator.channels.twilio import credentials

    url = local_twilio_url(settings)
    if url is None:
        return None
    parts = urlsplit(url)
    twilio = LocalTwilio(*credentials(settings))
    config = uvicorn.Config(
        create_local_twilio_app(twilio),
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 80,
        log_config=None,
        access_log=False,
    )
    return uvicorn.Server(config)


async def _serve_quietly(server: uvicorn.Server) -> None:
    """The local Twilio: if it cannot start (its port taken), the API still serves; texts then
    wait and are retried (the worker logs why)."""
    try:
        await server.serve()
    except (OSError, SystemExit):
        logging.getLogger(__name__).error("the local Twilio could not start; texts will wait")


async def _serve(settings: Settings, *, with_worker: bool) -> None:
    """One process: the API, (unless told otherwise) an arq worker, and (without a Twilio
    account) the local Twilio, on the same event loop."""
    from orchestrator.worker import build_worker

    server = uvicorn.Server(_config(settings, served_app(settings)))
    tune_gc()
    twilio = _local_twilio_server(settings)
    twilio_task = asyncio.create_task(_serve_quietly(twilio)) if twilio is not None else None
    worker = build_worker(settings, handle_signals=False) if with_worker else None
    worker_task = asyncio.create_task(worker.async_run()) if worker is not None else None
    try:
        await server.serve()
    finally:
        if worker_task is not None and worker is not None:
            worker_task.cancel()
            await worker.close()
        if twilio is not None and twilio_task is not None:
            twilio.should_exit = True
            await asyncio.gather(twilio_task, return_exceptions=True)


def _serve_processes(settings: Settings, workers: int, *, with_worker: bool) -> None:
    """``workers`` API processes sharing one listening socket (uvicorn's supervisor restarts a
    dead one), plus one arq worker process. They share nothing but PostgreSQL and Redis."""
    from uvicorn.supervisors import Multiprocess

    # the children build their settings from the environment: hand them what was resolved here
    os.environ.update(
        {
            "ORCHESTRATOR_DATABASE_URL": settings.database_url or "",
            "ORCHESTRATOR_REDIS_URL": settings.redis_url or "",
            "ORCHESTRATOR_TOKEN_SECRET": settings.token_secret,
            "ORCHESTRATOR_HOST": settings.host,
            "ORCHESTRATOR_PORT": str(settings.port),
            "ORCHESTRATOR_TWILIO_API_URL": settings.twilio_api_url,
        }
    )
    config = _config(settings, "orchestrator.cli:app_from_env", workers=workers)
    spawn = multiprocessing.get_context("spawn")
    jobs = spawn.Process(target=_run_worker, args=(settings,), name="arq")
    twilio = spawn.Process(target=_run_local_twilio, args=(settings,), name="local-twilio")
    if with_worker:
        jobs.start()
    if settings.local_twilio:
        twilio.start()
    try:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    finally:
        for process in (jobs, twilio):
            if process.is_alive():
                process.terminate()  # arq finishes the job in hand on SIGTERM
            if process.pid is not None:
                process.join(timeout=30)


def _run_local_twilio(settings: Settings) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor stops us with SIGTERM
    server = _local_twilio_server(settings)
    if server is not None:
        server.run()


def _run_worker(settings: Settings) -> None:

    configure_logging(settings.log_level, as_json=settings.log_json)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor stops us with SIGTERM
    tune_gc()
    _run_arq(settings)


def _run_arq(settings: Settings) -> None:
    """The arq worker until a stop signal. Jobs cut short by the stop are run again by arq
    later (they are idempotent); arq then ends with a CancelledError, which is no failure."""
    from orchestrator.worker import build_worker

    try:
        build_worker(settings).run()
    except asyncio.CancelledError:
        logging.getLogger(__name__).info("worker stopped with jobs in progress; they will run again")


def cmd_run(args: argparse.Namespace, settings: Settings) -> None:
    from orchestrator.migrate import upgrade

    settings = dataclasses.replace(settings, host=args.host or settings.host, port=args.port or settings.port)
    settings, embedded = resolve(settings)
    if (twilio_url := local_twilio_url(settings)) is not None:  # the worker and the app use it too
        settings = dataclasses.replace(settings, twilio_api_url=twilio_url)
    settings, smtp = _local_smtp(settings) if not args.no_worker else (settings, None)
    assert settings.database_url
    upgrade(settings.database_url)
    agency_id = asyncio.run(_seed(settings)) if args.demo else None
    base = f"http://{settings.host}:{settings.port}"
    print(f"\norchestrator is serving on {base}", flush=True)
    print(f"  API docs:   {base}/schema/swagger   (OpenAPI JSON: {base}/schema/openapi.json)")
    print(f"  readiness:  {base}/ready")
    if twilio_url is not None:
        print(f"  SMS:        no Twilio account set: the local Twilio at {twilio_url} takes them")
        print(f"              (texts taken: {twilio_url}/_local/messages)")
    if smtp is not None:
        print(f"  e-mail:     no SMTP server set: the local one on {settings.smtp_host}:{settings.smtp_port}")
        print(f"              keeps each message as a .eml file in {(settings.data_dir / 'mail').resolve()}")
    if agency_id:
        print(f"  demo agency: {agency_id}  ->  {base}/api/v1/agencies/{agency_id}")
        print(f"  messages sent or waiting (staff): {base}/api/v1/agencies/{agency_id}/messages")
        print(
            f"  demo admin token (valid {settings.token_ttl_hours} h):\n    {_admin_token(settings)}\n",
            flush=True,
        )
    workers = args.workers or (1 if embedded is not None else os.cpu_count() or 1)
    try:
        if workers == 1:
            asyncio.run(_serve(settings, with_worker=not args.no_worker))
        else:
            print(
                f"  {workers} API processes and {'an' if not args.no_worker else 'no'} arq worker", flush=True
            )
            _serve_processes(settings, workers, with_worker=not args.no_worker)
    finally:
        if smtp is not None:
            smtp.stop()
        if embedded is not None:
            embedded.stop_redis()


def _local_smtp(settings: Settings) -> tuple[Settings, Any]:
    """Without an SMTP server configured, start the local one (its own thread; the port two
    after the API's, or any free port) and point the settings at it."""
    if not settings.local_smtp:
        return settings, None
    from orchestrator.channels.local_smtp import start_local_smtp

    port = free_port(settings.host, settings.port + 2)
    controller, _ = start_local_smtp(settings.host, port, settings.data_dir / "mail")
    return dataclasses.replace(settings, smtp_host=settings.host, smtp_port=port, smtp_tls="none"), controller


def cmd_local_smtp(args: argparse.Namespace, settings: Settings) -> None:
    """The local SMTP server alone (``ORCHESTRATOR_SMTP_HOST`` of the workers points here)."""
    import threading

    from orchestrator.channels.local_smtp import start_local_smtp

    controller, _ = start_local_smtp(args.host, args.port, settings.data_dir / "mail")
    maildir = settings.data_dir / "mail"
    print(f"local SMTP server on {args.host}:{args.port}; messages kept in {maildir}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> None:
    """Siloed against unified on the same simulated days (a database only with ``--agency``)."""
    from pathlib import Path

    from orchestrator import simulate

    profiles = simulate.profiles_named(
        args.profile or ([] if args.agency else ["all"]), [Path(f) for f in args.profile_file or []]
    )
    if args.agency:
        profiles.append(simulate.profile_of(asyncio.run(_agency_profile(settings, args.agency))))
    plot_to = Path(args.plot) if args.plot else None
    simulate.run(profiles, days=args.days, seed=args.seed, as_json=args.json, plot_to=plot_to)


async def _agency_profile(settings: Settings, agency_id: uuid.UUID) -> dict[str, Any]:
    from orchestrator.db import make_engine, make_sessionmaker, unit_of_work
    from orchestrator.deps import utc_now
    from orchestrator.services.capacity import simulation_profile

    settings, embedded = resolve(settings, need_redis=False)
    assert settings.database_url
    engine = make_engine(settings.database_url)
    try:
        async with unit_of_work(make_sessionmaker(engine)) as uow:
            return await simulation_profile(uow, agency_id, now=utc_now())
    finally:
        await engine.dispose()
        del embedded


def cmd_worker(_: argparse.Namespace, settings: Settings) -> None:
    settings, embedded = resolve(settings)
    tune_gc()
    _run_arq(settings)
    del embedded


def cmd_local_twilio(args: argparse.Namespace, settings: Settings) -> None:
    """The local Twilio alone (``ORCHESTRATOR_TWILIO_API_URL`` of the workers points here)."""
    settings = dataclasses.replace(settings, twilio_api_url=f"http://{args.host}:{args.port}")
    server = _local_twilio_server(settings)
    if server is None:
        raise SystemExit("a Twilio account is configured: the local Twilio is not needed")
    server.run()


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    from orchestrator import migrate

    settings, embedded = resolve(settings, need_redis=False)
    assert settings.database_url
    if args.downgrade:
        migrate.downgrade(settings.database_url, args.downgrade)
    else:
        migrate.upgrade(settings.database_url, args.revision)
    print("migrations applied")
    del embedded


def cmd_seed_demo(_: argparse.Namespace, settings: Settings) -> None:
    from orchestrator.migrate import upgrade

    settings, embedded = resolve(settings, need_redis=False)
    assert settings.database_url
    upgrade(settings.database_url)
    print(f"demo agency: {asyncio.run(_seed(settings))}")
    del embedded


def cmd_token_create(args: argparse.Namespace, settings: Settings) -> None:
    from orchestrator.auth import Role, issue_token

    try:
        token = issue_token(
            _token_secret(settings),
            role=Role(args.role),
            subject=args.subject or f"cli-{args.role}",
            agency_id=args.agency,
            counsellor_id=args.counsellor,
            ttl=timedelta(hours=args.ttl_hours or settings.token_ttl_hours),
        )
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from exc
    print(token)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="orchestrator", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run", help="serve the API with an in-process worker (embedded servers if no URL set)"
    )
    run.add_argument("--demo", action="store_true", help="seed the demo agency and print an admin token")
    run.add_argument("--host", help="bind address (default ORCHESTRATOR_HOST or 127.0.0.1)")
    run.add_argument("--port", type=int, help="port (default ORCHESTRATOR_PORT or 8000)")
    run.add_argument(
        "--no-worker", action="store_true", help="serve HTTP only (run `orchestrator worker` apart)"
    )
    run.add_argument(
        "--workers",
        type=int,
        choices=range(1, 65),
        metavar="N",
        help="API processes (default: 1 with the embedded servers, one per core otherwise)",
    )
    run.set_defaults(func=cmd_run)

    sub.add_parser("worker", help="run the arq worker only").set_defaults(func=cmd_worker)
    local = sub.add_parser("local-twilio", help="serve the local Twilio (demo, tests, compose)")
    local.add_argument("--host", default="127.0.0.1")
    local.add_argument("--port", type=int, default=8001)
    local.set_defaults(func=cmd_local_twilio)
    smtp = sub.add_parser("local-smtp", help="serve the local SMTP server (demo, compose)")
    smtp.add_argument("--host", default="127.0.0.1")
    smtp.add_argument("--port", type=int, default=8002)
    smtp.set_defaults(func=cmd_local_smtp)

    sim = sub.add_parser("simulate", help="simulate agency days: siloed against unified")
    sim.add_argument(
        "--profile", action="append", help="small_rural, large_urban, walk_in_heavy or all (default)"
    )
    sim.add_argument("--profile-file", action="append", metavar="FILE", help="a profile as JSON (README)")
    sim.add_argument(
        "--agency", type=uuid.UUID, help="a profile learned from this agency's history (database)"
    )
    sim.add_argument("--days", type=int, default=20, help="working days to simulate (default 20)")
    sim.add_argument("--seed", type=int, default=1, help="the random seed (same seed, same days)")
    sim.add_argument("--json", action="store_true", help="print the report as JSON")
    sim.add_argument("--plot", metavar="FILE.png", help="draw waits over the day per policy (matplotlib)")
    sim.set_defaults(func=cmd_simulate)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--revision", default="head", help="target revision (default head)")
    migrate.add_argument("--downgrade", metavar="REV", help="downgrade to REV instead (e.g. base)")
    migrate.set_defaults(func=cmd_migrate)

    sub.add_parser("seed-demo", help="create the demo agency (idempotent)").set_defaults(func=cmd_seed_demo)

    token = sub.add_parser("token", help="bearer tokens").add_subparsers(dest="token_command", required=True)
    create = token.add_parser("create", help="print a signed bearer token")
    create.add_argument(
        "--role", required=True, choices=["admin", "manager", "front_desk", "kiosk", "counsellor"]
    )
    create.add_argument("--agency", type=uuid.UUID, help="agency id (every role but admin)")
    create.add_argument("--counsellor", type=uuid.UUID, help="counsellor id (role counsellor)")
    create.add_argument("--subject", help="who the token is for (audit name; no personal data)")
    create.add_argument("--ttl-hours", type=int, help="lifetime in hours")
    create.set_defaults(func=cmd_token_create)
    return root


def main(argv: list[str] | None = None) -> None:
    from orchestrator.logs import configure_logging

    args = parser().parse_args(argv)
    # uvicorn re-raises SIGTERM after a graceful shutdown: exit normally so that atexit hooks
    # (which stop the embedded PostgreSQL and Redis) still run.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    settings = Settings.from_env()
    configure_logging(settings.log_level, as_json=settings.log_json)
    try:
        args.func(args, settings)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
