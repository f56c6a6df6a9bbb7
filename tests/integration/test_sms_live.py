"""The whole loop on a real `orchestrator run` (API, worker and local Twilio, no Twilio account):
a web booking commits its confirmation; the worker sends it through the SDK to the local Twilio,
which posts signed status callbacks back to the API; the row ends `delivered`."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import httpx

from tests.helpers import live_agency_slots


async def test_a_booking_confirmation_is_delivered_through_the_local_twilio(live_server):
    twilio = live_server.twilio_url
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        agency, service, slots = await live_agency_slots(http, name="Agence SMS", modes=["phone"])
        r = await http.post(
            "/api/v1/appointments",
            json={
                "agency_id": agency["id"],
                "service_id": service["id"],
                "starts_at": slots[0]["starts_at"],
                "mode": "phone",
                "job_seeker": {"phone": "+33614141414", "preferred_channel": "sms", "language": "en"},
            },
        )
        assert r.status_code == 201, r.text
        appointment = r.json()["id"]

    conn = await asyncpg.connect(live_server.database_url)
    try:
        deadline = time.monotonic() + 30
        while True:  # polling a condition: the callbacks have come back
            status = await conn.fetchval(
                "SELECT status FROM notifications WHERE appointment_id = $1 AND kind = 'appointment.confirmed'",
                uuid.UUID(appointment),
            )
            if status == "delivered":
                break
            assert time.monotonic() < deadline, f"still {status}"
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    async with httpx.AsyncClient() as http:
        taken = [m for m in (await http.get(twilio + "/_local/messages")).json() if m["to"] == "+33614141414"]
    assert len(taken) == 1 and taken[0]["body"].startswith("Agence SMS: appointment confirmed")
