"""The public display board in a real browser (Debian chromium driven by Playwright).

A call made through the API must appear on the board — number, desk and a screen-reader
announcement — within one second.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.auth import Role
from tests.helpers import ADMIN, bearer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.browser


def _chromium() -> str:
    path = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Debian chromium is required in CI (apt-get install chromium)")
        pytest.skip("no /usr/bin/chromium: install Debian chromium to run the browser tests")
    return path


def _agency(http: httpx.Client) -> dict[str, Any]:
    r = http.post(
        "/api/v1/agencies", json={"name": "Agence Lyon Part-Dieu", "timezone": "Europe/Paris"}, headers=ADMIN
    )
    assert r.status_code == 201, r.text
    agency_id = r.json()["id"]
    r = http.post(
        f"/api/v1/agencies/{agency_id}/services",
        json={"name": "Accueil", "duration_minutes": 15, "ticket_prefix": "A"},
        headers=ADMIN,
    )
    service_id = r.json()["id"]
    r = http.post(
        f"/api/v1/agencies/{agency_id}/counsellors",
        json={"name": "Camille", "email": "camille@example.org", "languages": ["fr"]},
        headers=ADMIN,
    )
    counsellor = r.json()
    headers = bearer(Role.COUNSELLOR, agency_id, counsellor["id"])
    r = http.post(
        f"/api/v1/counsellors/{counsellor['id']}/desk",
        json={"on_desk": True, "desk_label": "3"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return {
        "id": agency_id,
        "service_id": service_id,
        "counsellor": counsellor,
        "headers": headers,
        "front": bearer(Role.FRONT_DESK, agency_id),
    }


def test_a_call_appears_on_the_board_within_a_second(live_server):
    from playwright.sync_api import expect, sync_playwright

    executable = _chromium()
    with httpx.Client(base_url=live_server.base_url, timeout=10) as http, sync_playwright() as pw:
        agency = _agency(http)
        issue = {
            "service_id": agency["service_id"],
            "job_seeker": {"name": "Awa Traoré", "phone": "0612345678"},
        }
        tickets = [
            http.post(f"/api/v1/agencies/{agency['id']}/tickets", json=issue, headers=agency["front"]).json()
            for _ in range(2)
        ]
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{live_server.base_url}/agencies/{agency['id']}/board")
            expect(page.locator("html")).to_have_attribute("lang", "fr")
            page.wait_for_selector("body[data-ready='true']", timeout=5000)  # snapshot received
            expect(page.locator("#waiting-count")).to_have_text("2")
            expect(page.locator("#status")).to_have_text("En direct")

            r = http.post(f"/api/v1/counsellors/{agency['counsellor']['id']}/next", headers=agency["headers"])
            assert r.status_code == 200 and r.json()["number"] == tickets[0]["number"] == "A001"
            first_row = page.locator("#calls-body tr").first
            expect(first_row.locator(".number")).to_have_text("A001", timeout=1000)
            expect(first_row.locator(".desk")).to_have_text("3", timeout=1000)
            expect(page.locator("#announcer")).to_have_text("Ticket A001, guichet 3", timeout=1000)
            expect(page.locator("#announcer")).to_have_attribute("aria-live", "polite")
            expect(page.locator("#waiting-count")).to_have_text("1", timeout=1000)

            # the next call goes on top; personal data never reaches the page
            r = http.post(f"/api/v1/tickets/{tickets[0]['id']}/start", headers=agency["headers"])
            r = http.post(f"/api/v1/tickets/{tickets[0]['id']}/complete", headers=agency["headers"])
            assert r.status_code == 200
            r = http.post(f"/api/v1/counsellors/{agency['counsellor']['id']}/next", headers=agency["headers"])
            assert r.json()["number"] == "A002"
            expect(page.locator("#calls-body tr").first.locator(".number")).to_have_text("A002", timeout=1000)
            expect(page.locator("#calls-body tr")).to_have_count(2)
            content = page.content()
            assert "Awa" not in content and "0612345678" not in content and "+33" not in content

            # a reload starts from the snapshot: the same calls, newest first
            page.reload()
            page.wait_for_selector("body[data-ready='true']", timeout=5000)
            expect(page.locator("#calls-body tr .number")).to_have_text(["A002", "A001"])
        finally:
            browser.close()
