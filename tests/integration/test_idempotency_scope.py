"""Anonymous Idempotency-Keys are scoped to the client: replaying someone else's key with an
identical body never returns their appointment nor its manage token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from tests.helpers import assert_problem
from tests.integration.test_booking_api import _body, _world


@asynccontextmanager
async def _from(app, address: str) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http:
        yield http


async def test_another_client_replaying_a_key_gets_no_token(client, app):
    w = await _world(client)
    body = _body(w, "2026-03-09T10:00:00+01:00")
    key = {"Idempotency-Key": "booking-0001"}
    async with _from(app, "192.0.2.10") as owner, _from(app, "198.51.100.7") as other:
        first = await owner.post("/api/v1/appointments", json=body, headers=key)
        assert first.status_code == 201, first.text
        token = first.json()["manage_token"]

        retry = await owner.post("/api/v1/appointments", json=body, headers=key)
        assert retry.status_code == 201
        assert retry.headers["idempotent-replayed"] == "true"
        assert retry.json()["manage_token"] == token  # the owner's retry is a replay

        stolen = await other.post("/api/v1/appointments", json=body, headers=key)
        assert token not in stolen.text
        assert "idempotent-replayed" not in stolen.headers
        assert_problem(stolen, 409)  # a new booking attempt for a slot that is taken


async def test_staff_keys_stay_scoped_to_the_token_subject(client, app):
    from tests.helpers import bearer

    w = await _world(client)
    staff = {**bearer("front_desk", w["agency"]["id"]), "Idempotency-Key": "desk-key-1"}
    body = _body(w, "2026-03-09T11:00:00+01:00")
    async with _from(app, "192.0.2.10") as desk_a, _from(app, "192.0.2.11") as desk_b:
        first = await desk_a.post("/api/v1/appointments", json=body, headers=staff)
        assert first.status_code == 201, first.text
        again = await desk_b.post("/api/v1/appointments", json=body, headers=staff)
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"  # same subject, another machine
