"""Stopping a server with display boards connected: the streams end at once and cleanly (no
cancelled-task tracebacks, no "athrow(): asynchronous generator is already running"), exit 0."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import httpx
import psutil
import pytest

from tests.conftest import ROOT, _drop_database, _free_port, _recreate_database, _with_database
from tests.helpers import ADMIN, SECRET


def _wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:  # poll a condition with a deadline, not a sleep for synchronisation
        assert proc.poll() is None, "the server exited early"
        try:
            with urllib.request.urlopen(base + "/ready", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            assert time.monotonic() < deadline, "the server never became ready"
            time.sleep(0.1)


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_with_open_streams_stops_cleanly(servers, tmp_path, workers):
    name = f"orchestrator_shutdown_{os.getpid()}"
    asyncio.run(_recreate_database(servers.admin_url, name))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    env = {
        **os.environ,
        "ORCHESTRATOR_DATABASE_URL": _with_database(servers.admin_url, name),
        "ORCHESTRATOR_REDIS_URL": servers.redis_url,
        "ORCHESTRATOR_TOKEN_SECRET": SECRET,
        "ORCHESTRATOR_PORT": str(port),
        "ORCHESTRATOR_JOB_QUEUE": f"test:shutdown:{os.getpid()}:{workers}",  # its own jobs only
    }
    try:
        with open(log_path, "w") as log:
            command = [sys.executable, "-m", "orchestrator.cli", "run", "--workers", str(workers)]
            # its own process group: if the test fails, every process of the server goes with it
            proc = subprocess.Popen(
                command, env=env, stdout=log, stderr=log, cwd=ROOT, start_new_session=True
            )
            try:
                _wait_ready(base, proc)
                if workers > 1:  # that many API processes, the arq worker and the local Twilio
                    spawned = [
                        c
                        for c in psutil.Process(proc.pid).children()
                        if "--multiprocessing-fork" in c.cmdline()
                    ]
                    assert len(spawned) == workers + 2  # no Twilio account: the local one runs too
                agency = httpx.post(
                    base + "/api/v1/agencies",
                    json={"name": "Board", "timezone": "Europe/Paris"},
                    headers=ADMIN,
                ).json()
                opened = threading.Barrier(4)
                ended: list[str] = []

                def watch() -> None:
                    with httpx.stream(
                        "GET", f"{base}/api/v1/agencies/{agency['id']}/queue/stream", timeout=30
                    ) as r:
                        lines = r.iter_lines()
                        next(lines)  # the stream is open
                        opened.wait()
                        ended.extend(lines)  # returns when the server ends the stream

                watchers = [threading.Thread(target=watch) for _ in range(3)]
                for watcher in watchers:
                    watcher.start()
                opened.wait(timeout=30)
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=30) == 0
                for watcher in watchers:
                    watcher.join(timeout=30)
                    assert not watcher.is_alive()
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # a no-op when it stopped cleanly
                proc.wait(timeout=30)
    finally:
        asyncio.run(_drop_database(servers.admin_url, name))
    output = log_path.read_text()
    assert "Traceback" not in output, output[-3000:]
    assert "athrow" not in output and "timeout graceful shutdown exceeded" not in output
