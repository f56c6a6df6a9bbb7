"""The API docs work offline, and the board's clock shows the agency's time, in a real browser."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.e2e.test_board import CHROMIUM_ARGS, _chromium
from tests.helpers import ADMIN

pytestmark = pytest.mark.browser


def test_swagger_ui_renders_with_every_outside_request_blocked(live_server):
    from playwright.sync_api import sync_playwright

    local = urlsplit(live_server.base_url).netloc
    outside: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()

            def only_local(route, request) -> None:  # type: ignore[no-untyped-def]
                if urlsplit(request.url).netloc == local or request.url.startswith("data:"):
                    route.continue_()
                else:
                    outside.append(request.url)
                    route.abort()

            page.route("**/*", only_local)
            page.goto(f"{live_server.base_url}/schema/swagger")
            page.wait_for_selector(".opblock-summary-path", timeout=10_000)  # operations rendered
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            assert any("/api/v1/appointments" in p for p in paths), paths
        finally:
            browser.close()
    assert outside == []


def test_docs_page_references_only_its_own_assets(live_server):
    with httpx.Client(base_url=live_server.base_url, timeout=10) as http:
        page = http.get("/schema/swagger").text
        assert "http://" not in page and "https://" not in page
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
            r = http.get(f"/schema/assets/{asset}")
            assert r.status_code == 200 and len(r.content) > 1000, asset


def test_the_board_clock_shows_the_agency_time_not_the_browser_time(live_server):
    from playwright.sync_api import sync_playwright

    with httpx.Client(base_url=live_server.base_url, timeout=10) as http, sync_playwright() as pw:
        r = http.post(
            "/api/v1/agencies", json={"name": "Nouméa", "timezone": "Pacific/Noumea"}, headers=ADMIN
        )
        agency = r.json()
        browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(timezone_id="America/New_York").new_page()
            before = datetime.now(UTC)
            page.goto(f"{live_server.base_url}/agencies/{agency['id']}/board")
            shown = page.locator("#clock").inner_text()
            after = datetime.now(UTC)
        finally:
            browser.close()
    noumea = {moment.astimezone(ZoneInfo("Pacific/Noumea")).strftime("%H:%M") for moment in (before, after)}
    new_york = {
        moment.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") for moment in (before, after)
    }
    assert shown in noumea, (shown, noumea)
    assert shown not in new_york
