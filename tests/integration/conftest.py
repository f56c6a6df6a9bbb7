"""Fixtures of the integration tests that need data other connections can see (committed), and
the local Twilio over real HTTP."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator

import pytest
import uvicorn

from orchestrator.channels.local_twilio import LocalTwilio, create_local_twilio_app
from orchestrator.channels.twilio import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from tests.conftest import _drop_database, _free_port, _recreate_database, _with_database


@pytest.fixture(scope="module")
def committed_url(servers) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A migrated database of its own for the module, for workers and other processes."""
    from orchestrator.migrate import upgrade

    name = f"orchestrator_outbox_{uuid.uuid4().hex[:8]}"
    asyncio.run(_recreate_database(servers.admin_url, name))
    url = _with_database(servers.admin_url, name)
    upgrade(url)
    yield url
    asyncio.run(_drop_database(servers.admin_url, name))


@pytest.fixture
def local_twilio() -> Iterator[tuple[LocalTwilio, str]]:
    """The local Twilio (no status callbacks), served over real HTTP from a thread."""
    fake = LocalTwilio(LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN, callbacks=False)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_local_twilio_app(fake), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:  # a condition: the socket is bound
        thread.join(0.01)
    yield fake, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
