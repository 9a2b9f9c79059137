"""The generated dashboard of a 550-point, 500-controller building, in headless Chromium.

``python -m demo`` runs with 450 controllers on BACnet/IP (one zone setpoint each) and 50 rooftop
units behind the MS/TP router (two points each), on addresses no other test uses. Two controllers
are offline when an event starts: the summary must count and name their failed points, and list
their switches; turning one off once the controller is back releases it on the controller. A
rooftop unit's row opens its subview, whose switches act on that unit.

With LOADSHED_UPDATE_SCREENSHOT=1 the picture goes to docs/images/dashboard-500.png
(docs/operation.md shows it); otherwise it stays with the test's files.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from .test_demo_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    UPDATE_SCREENSHOT,
    Demo,
    _off_loopback_sockets,
    _only_loopback,
    chromium,  # noqa: F401 - the fixture
    run_demo,
)

SCREENSHOT = ROOT / "docs" / "images" / "dashboard-500.png"
# Addresses of this test only (the other browser tests use 127.60-65).
BASE_IP = "127.66.0.2"
ROUTER_IP = "127.67.0.1"
IP_CONTROLLERS = 450
ROUTED_CONTROLLERS = 50
POINTS = IP_CONTROLLERS + 2 * ROUTED_CONTROLLERS
OFFLINE = ("127.66.0.5", "127.66.0.9")
ROOFTOP = "12345:2"  # the first unit behind the router
SETPOINT = "analog-value,302"
ECONOMIZER = "binary-value,1"

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]


@pytest.fixture
def demo(socket_enabled: None, chromium: Path, tmp_path: Path) -> Iterator[Demo]:  # noqa: F811
    """``python -m demo`` with 500 controllers, on this test's own addresses and ports."""
    with run_demo(
        tmp_path,
        "--building-base-ip",
        BASE_IP,
        "--router-ip",
        ROUTER_IP,
        "--devices",
        str(IP_CONTROLLERS),
        "--routed",
        str(ROUTED_CONTROLLERS),
    ) as running:
        yield running


def _slot(demo: Demo, address: str, obj: str, priority: int) -> Any:
    device = demo.control_api("GET", f"/devices/{address}")
    return device["objects"][obj]["priority_array"][priority - 1]


def _wait_slot(demo: Demo, address: str, obj: str, priority: int, value: Any) -> None:
    deadline = time.monotonic() + 20
    while _slot(demo, address, obj, priority) != value and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _slot(demo, address, obj, priority) == value, (address, obj)


def _row_switch(page: Page, card: Any, name: str) -> Any:
    return card.locator("hui-toggle-entity-row", has_text=name).locator("input[role=switch]")


def test_summary_failed_points_and_subviews_at_500_controllers(demo: Demo, tmp_path: Path) -> None:
    blocked: list[str] = []
    for address in OFFLINE:
        demo.control_api("POST", f"/devices/{address}", {"offline": True})
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1100})
            context.route("**/*", _only_loopback(blocked))
            page = context.new_page()
            page.goto(demo.url)
            page.locator("input[name=username]").fill(demo.username)
            page.locator("input[name=password]").fill(demo.password)
            page.keyboard.press("Enter")
            expect(page).to_have_url(demo.url, timeout=60_000)
            summary = page.locator("hui-markdown-card")
            expect(summary).to_contain_text(f"{POINTS}", timeout=60_000)
            # One compact list, not one section per controller.
            expect(page.get_by_text(f"Controllers ({IP_CONTROLLERS + ROUTED_CONTROLLERS})"))
            assert page.locator("hui-grid-section").count() < 40

            demo.control_api("POST", "/events", {"level": 1, "duration": 600})
            _wait_slot(demo, "127.66.0.2", SETPOINT, 10, 78.0)
            # The summary counts and names the failed points, with why.
            failed_table = summary.locator("table").nth(1)
            for address in OFFLINE:
                expect(failed_table).to_contain_text(f"BACnet controller {address}", timeout=60_000)
            expect(failed_table).to_contain_text("offline")
            expect(summary.locator("table").first).to_contain_text(f"{POINTS - 2}", timeout=60_000)
            # ... and lists their switches, on: the value may be in the slot.
            failed = page.locator("hui-entity-filter-card")
            expect(failed.locator("input[role=switch]")).to_have_count(2, timeout=30_000)
            expect(failed.locator("input[role=switch][aria-checked=true]")).to_have_count(2)
            # The picture starts at the summary: the failed points and the controller list.
            page.mouse.move(700, 600)
            page.mouse.wheel(0, 580)
            page.wait_for_timeout(2_000)
            update = os.environ.get(UPDATE_SCREENSHOT) == "1"
            screenshot = SCREENSHOT if update else tmp_path / "dashboard-500.png"
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot))
            assert screenshot.stat().st_size > 10_000

            # Back online, the operator releases one failed point from the list.
            demo.control_api("POST", f"/devices/{OFFLINE[0]}", {"offline": False})
            _row_switch(page, failed, OFFLINE[0]).click()
            _wait_slot(demo, OFFLINE[0], SETPOINT, 10, None)
            expect(failed.locator("input[role=switch]")).to_have_count(1, timeout=30_000)

            # A rooftop unit's row opens its subview (a relative path in the same dashboard).
            name = f"BACnet controller {ROOFTOP}"
            row = page.locator("hui-button-row").filter(has=page.get_by_text(name, exact=True))
            row.locator("mwc-button, ha-button").click()
            expect(page).to_have_url(f"{demo.url}-bacnet-controller-12345-2", timeout=30_000)
            switches = page.locator("hui-toggle-entity-row input[role=switch]")
            expect(switches).to_have_count(2, timeout=30_000)
            expect(page.locator("input[role=switch][aria-checked=true]")).to_have_count(2)
            economizer = page.locator("hui-toggle-entity-row", has_text="Economizer")
            economizer.locator("input[role=switch]").click()
            _wait_slot(demo, ROOFTOP, ECONOMIZER, 12, None)
            assert _slot(demo, ROOFTOP, SETPOINT, 10) == 78.0

            for pid in (demo.hass_pid, demo.process.pid):
                assert _off_loopback_sockets(pid) == [], pid
        finally:
            browser.close()
    assert blocked == [], f"the page tried to leave loopback: {blocked}"
    demo.process.send_signal(signal.SIGINT)
    assert demo.process.wait(60) == 0, demo.log.read_text()[-5000:]
