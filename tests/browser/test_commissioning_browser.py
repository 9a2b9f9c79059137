"""Commissioning the demo building from scratch in the Home Assistant UI, in headless Chromium.

``python -m demo --commissioning`` runs as a subprocess on addresses and ports no other test
uses: the simulated building with a BBMD site and a BACnet/IP router site, and a Home Assistant
without loadshed_ven. The test adds the integration through its config flow (VTN, BACnet with
the BBMD, meter, policy), adds controllers on the integration's page (discovered through the
BBMD, discovered on the router's network, imported from the demo's EDE file where the controller
flow offers the import) with offsets, then puts an event on the simulated VTN and checks the
controllers' priority arrays: base + offset at priority 10 while shed, NULL after the cancel.

With LOADSHED_UPDATE_SCREENSHOT=1 each step's picture goes to docs/images/commissioning-*.png
(docs/commissioning.md shows them); otherwise they stay with the test's files.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import aiohttp
import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright

from custom_components.loadshed_ven.config_flow_controller import ControllerSubentryFlow
from custom_components.loadshed_ven.const import DOMAIN
from demo.hass_api import HassApi

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

# Addresses of this test only (the dashboard test uses 127.60-61, the integration tests
# 127.100-199, tests/sim 127.78).
BASE_IP = "127.62.0.2"
ROUTER_IP = "127.63.0.1"
BBMD_IP = "127.64.0.1"
IP_ROUTER_IP = "127.65.0.1"
BBMD_PORT = 47807  # sim.bbmd.SIM_BBMD_PORT
NETWORK = 12345  # the MS/TP network (sim.building.BuildingConfig.network)
IP_NETWORK = 2000  # the BACnet/IP router's far network
REMOTE_DEVICE = "127.64.0.2"  # the first controller behind the BBMD
ROUTED_IP_DEVICE = f"{IP_NETWORK}:127.65.0.3"  # the first controller behind the IP router
MSTP_DEVICE = f"{NETWORK}:2"  # its point is typed in the first set-up
UNCONFIGURED_DEVICE = "127.62.0.4"
# Two controllers of the EDE file, by device instance.
EDE_DEVICES = {1001: "127.62.0.2", 1002: "127.62.0.3"}
EDE_FILE = ROOT / "demo" / "building.ede.csv"
SETPOINT = "analog-value,302"
PRIORITY = 10
BASE_SETPOINT = 72.0  # every simulated zone setpoint's relinquish default
OFFSETS = (2, 4, 6)  # °F added at levels 1, 2 and 3
MSTP_LEVEL_1 = 78.0
# Override switches: the typed MS/TP point, one per discovered controller, two per EDE device.
# Whether this version's controller flow imports point files; without it the walk ends before.
IMPORTS_FILES = hasattr(ControllerSubentryFlow, "async_step_import_file")
IMPORTED = EDE_DEVICES if IMPORTS_FILES else {}
OVERRIDE_SWITCHES = 1 + 2 + 2 * len(IMPORTED)
IMAGES = ROOT / "docs" / "images"
FRONTEND_ASKS = re.compile(
    r"^https://(brands\.home-assistant\.io/|raw\.githubusercontent\.com/home-assistant/frontend/)"
)
FLOW_TIMEOUT = 60_000  # ms: a step that registers with the VTN or reads a device

type FieldRole = Literal["textbox", "spinbutton", "combobox"]

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]


@pytest.fixture
def demo(socket_enabled: None, chromium: Path, tmp_path: Path) -> Iterator[Demo]:  # noqa: F811
    """``python -m demo --commissioning`` on this test's addresses and ports."""
    with run_demo(
        tmp_path,
        "--commissioning",
        "--building-base-ip",
        BASE_IP,
        "--router-ip",
        ROUTER_IP,
        "--bbmd-ip",
        BBMD_IP,
        "--ip-router-ip",
        IP_ROUTER_IP,
    ) as running:
        yield running


class Walk:
    """The page, and numbered screenshots of each step."""

    def __init__(self, page: Page, demo: Demo, images: Path) -> None:
        """Pictures go to ``images``."""
        self.page = page
        self.demo = demo
        self.images = images
        self.shots: list[Path] = []

    @property
    def dialog(self) -> Locator:
        """The open config (or subentry) flow dialog."""
        return self.page.locator("dialog-data-entry-flow")

    def shot(self, step: str) -> None:
        """Picture the page as ``commissioning-<n>-<step>.png``."""
        path = self.images / f"commissioning-{len(self.shots) + 1}-{step}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.wait_for_timeout(500)  # a field's label floats up after it is filled
        self.page.screenshot(path=str(path))
        assert path.stat().st_size > 10_000
        self.shots.append(path)

    def field(self, role: FieldRole, name: str) -> Locator:
        """A form field of the dialog by its label (``name`` is a prefix of the label)."""
        return self.dialog.get_by_role(role, name=re.compile("^" + re.escape(name)))

    def choose(self, name: str, option: str) -> None:
        """Pick ``option`` in the dialog's drop-down labelled ``name``."""
        self.field("combobox", name).click()
        self.page.get_by_role("option", name=option).click()

    def submit(self, heading: str | re.Pattern[str]) -> None:
        """Submit the dialog's form; wait for the next step's heading."""
        self.dialog.get_by_role("button", name="Submit").click()
        self.expect_step(heading)

    def expect_step(self, heading: str | re.Pattern[str]) -> None:
        """Wait until the dialog shows the step headed ``heading``."""
        expect(self.dialog.get_by_role("heading", name=heading)).to_be_visible(timeout=FLOW_TIMEOUT)

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 60) -> None:
        """Poll ``check`` until true."""
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.3)

    def slot(self, address: str) -> Any:
        """The simulated controller's priority-10 slot of its zone setpoint."""
        device = self.demo.control_api("GET", f"/devices/{address}")
        return device["objects"][SETPOINT]["priority_array"][PRIORITY - 1]


def _log_in(walk: Walk) -> None:
    page, demo = walk.page, walk.demo
    page.goto(demo.url)
    page.locator("input[name=username]").fill(demo.username)
    page.locator("input[name=password]").fill(demo.password)
    page.keyboard.press("Enter")
    expect(page).to_have_url(demo.url, timeout=60_000)
    expect(page.get_by_role("button", name="Add integration")).to_be_visible(timeout=60_000)


def _set_up_integration(walk: Walk, printed: dict[str, str]) -> None:
    """Settings > Devices & services > Add integration, every step of the config flow."""
    page = walk.page
    page.get_by_role("button", name="Add integration").click()
    page.get_by_role("textbox", name="Search for a brand name").fill("Loadshed")
    page.get_by_text("Loadshed VEN", exact=True).click()
    walk.expect_step("Which OpenADR version does the VTN speak?")
    walk.dialog.get_by_text("OpenADR 2.0b (XML, certificates)").click()
    walk.expect_step("Connect to the OpenADR 2.0b VTN")
    walk.field("textbox", "VTN URL").fill(printed["vtn_url"])
    walk.field("textbox", "VEN name").fill("Demo building")
    walk.shot("vtn")
    walk.submit("BACnet network")

    walk.field("textbox", "Local address").fill("127.0.0.1/32")
    walk.field("spinbutton", "UDP port").fill("0")
    walk.field("textbox", "Routers").fill(f"{NETWORK}={ROUTER_IP}\n{IP_NETWORK}={IP_ROUTER_IP}")
    walk.field("textbox", "BBMD address").fill(BBMD_IP)
    walk.field("spinbutton", "BBMD UDP port").fill(str(BBMD_PORT))
    typed_points = walk.field("combobox", "How to enter override points")
    if typed_points.count():  # the first set-up takes typed points too: the MS/TP units'
        walk.choose("How to enter override points", "A list of points")
    walk.shot("bacnet")
    if typed_points.count():
        walk.submit("Override points")
        walk.field("textbox", "Points").fill(
            f"{MSTP_DEVICE}, AV, 302, 10, 78, 80, 82, RTU supply air setpoint"
        )
        walk.submit("Building meter")
    else:
        walk.expect_step("Building meter")
    walk.submit("Modbus TCP meter")
    walk.field("textbox", "Host").fill("127.0.0.1")
    walk.field("spinbutton", "Port").fill(printed["meter_port"])
    walk.field("spinbutton", "Read every").fill("2")
    walk.shot("meter")
    walk.submit("Shed policy")
    walk.submit("Success!")
    walk.dialog.get_by_role("button", name="Finish").click()
    expect(page).to_have_url(re.compile(r"/config/integrations/integration/loadshed_ven"))
    expect(page.get_by_text("Demo building", exact=True)).to_be_visible()


def _add_controller(walk: Walk, path: str) -> None:
    """The building's menu > Add BACnet controller > ``path`` of its first step."""
    page = walk.page
    # The building's own row comes first; its controllers' rows follow.
    page.get_by_role("button", name="Menu").first.click()
    page.get_by_role("menuitem", name="Add BACnet controller").click()
    walk.expect_step("Add a BACnet controller")
    walk.dialog.get_by_text(path, exact=True).click()


def _discover_and_pick(
    walk: Walk, address: str, *, network: int | None = None, shots: tuple[str, ...] = ()
) -> None:
    """Discover (everywhere, or on ``network``), pick the controller at ``address``, pick its
    zone setpoint and give it the offsets; ``shots`` names the pictures of these steps."""
    _add_controller(walk, "Discover and pick points")
    walk.expect_step("Discover BACnet controllers")
    if network is not None:
        walk.field("spinbutton", "Routed network number").fill(str(network))
    pictures = iter(shots)
    if step := next(pictures, None):
        walk.shot(step)
    walk.submit("Pick a controller")
    walk.dialog.get_by_role("radio", name=re.compile(rf" at {re.escape(address)}$")).check()
    if step := next(pictures, None):
        walk.shot(step)
    walk.submit("Pick the points to shed")
    setpoint = walk.dialog.get_by_role("checkbox", name=re.compile("^Zone Cooling Setpoint"))
    setpoint.check()
    expect(walk.dialog.get_by_role("checkbox", checked=True)).to_have_count(1)
    if step := next(pictures, None):
        walk.shot(step)
    walk.submit(re.compile("^Level values"))
    walk.dialog.get_by_role("radio", name="Offsets from the value in force").check()
    for level, offset in zip((1, 2, 3), OFFSETS, strict=True):
        walk.field("spinbutton", f"Level {level}").fill(str(offset))
    walk.field("spinbutton", "Write priority").fill(str(PRIORITY))
    if step := next(pictures, None):
        walk.shot(step)
    walk.submit("Success!")
    walk.dialog.get_by_role("button", name="Finish").click()
    expect(walk.dialog).to_be_hidden()


def _import_ede(walk: Walk) -> None:
    """Import the demo's EDE file; give two of its devices their addresses."""
    _add_controller(walk, "Import a point file (CSV or EDE)")
    walk.expect_step("Import a point file")
    walk.dialog.locator("input[type=file]").set_input_files(str(EDE_FILE))
    expect(walk.dialog.get_by_text(EDE_FILE.name)).to_be_visible(timeout=FLOW_TIMEOUT)
    walk.shot("import-file")
    walk.submit("Device addresses")
    addresses = walk.field("textbox", "Device addresses")
    lines = addresses.input_value().splitlines()
    for instance, address in EDE_DEVICES.items():
        lines = [
            re.sub(rf"^{instance} =[^#]*", f"{instance} = {address}  ", line) for line in lines
        ]
    addresses.fill("\n".join(lines))
    addresses.press("Control+Home")  # back to the first lines, for the picture
    walk.shot("import-addresses")
    walk.submit(re.compile(rf"^Import {len(EDE_DEVICES)} controller"))
    walk.shot("import-confirm")
    walk.submit("Success!")
    walk.dialog.get_by_role("button", name="Finish").click()
    expect(walk.dialog).to_be_hidden()


def _shed_and_release(walk: Walk) -> None:
    """An event on the simulated VTN: base + offset at priority 10; its cancel: NULL again."""
    demo = walk.demo
    shed = BASE_SETPOINT + OFFSETS[0]
    expected: dict[str, float | None] = {
        REMOTE_DEVICE: shed,
        ROUTED_IP_DEVICE: shed,
        MSTP_DEVICE: MSTP_LEVEL_1,
        **dict.fromkeys(IMPORTED.values(), shed),
    }
    event = demo.control_api("POST", "/events", {"level": 1, "duration": 600})
    walk.wait_for("the shed", lambda: {a: walk.slot(a) for a in expected} == expected, timeout=90)
    assert walk.slot(UNCONFIGURED_DEVICE) is None
    # The overview Home Assistant makes up by itself: every override switch on ("Toggle ... off"
    # is the label of a switch that is on), the building's "Take part in the event" aside.
    page = walk.page
    page.goto(demo.url.split("/config/", 1)[0] + "/lovelace/0")
    overrides = page.get_by_role("switch", name=re.compile(r"^Toggle (?!Demo building ).* off$"))
    expect(overrides).to_have_count(OVERRIDE_SWITCHES, timeout=30_000)
    page.wait_for_timeout(2_000)  # let the icons load, for the picture
    walk.shot("shed")
    demo.control_api("POST", f"/events/{event['event_id']}/cancel")
    # The cancel releases in waves over the default release window (5 minutes): the first wave
    # at once, the others later, so the load does not all come back together.
    walk.wait_for(
        "the first release wave",
        lambda: any(walk.slot(a) is None for a in expected),
        timeout=90,
    )
    assert any(walk.slot(a) is not None for a in expected), "everything was released at once"
    # Release all takes what the waves still hold, at once.
    _release_all(demo)
    walk.wait_for("the release", lambda: all(walk.slot(a) is None for a in expected), timeout=90)


def _release_all(demo: Demo) -> None:
    """Perform ``loadshed_ven.release_all`` through Home Assistant's API, as the demo's user."""
    base_url = demo.url.split("/config/", 1)[0]

    async def release() -> None:
        async with aiohttp.ClientSession() as session:
            api = HassApi(session, base_url)
            await api.onboard_or_login("Demo", demo.username, demo.password)
            (entry,) = await api.entries(DOMAIN)
            data = {"config_entry_id": entry["entry_id"]}
            await api.call_for_response(DOMAIN, "release_all", data)

    # Playwright's sync API runs an event loop in this thread: the call gets a thread of its own.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, release()).result(timeout=60)


def _printed(demo: Demo) -> dict[str, str]:
    """What the demo printed for the person commissioning."""
    text = demo.log.read_text()
    vtn = re.search(r"VTN URL\s+(\S+)", text)
    meter = re.search(r"Meter\s+Modbus TCP 127\.0\.0\.1 port (\d+)", text)
    assert vtn, text
    assert meter, text
    return {"vtn_url": vtn.group(1), "meter_port": meter.group(1)}


def test_engineer_commissions_the_building_in_the_ui(demo: Demo, tmp_path: Path) -> None:
    update = os.environ.get(UPDATE_SCREENSHOT) == "1"
    blocked: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.route("**/*", _only_loopback(blocked))
            walk = Walk(context.new_page(), demo, IMAGES if update else tmp_path / "images")
            _log_in(walk)
            _set_up_integration(walk, _printed(demo))
            # Behind the BBMD: found by a plain discovery once Home Assistant is registered.
            _discover_and_pick(
                walk,
                REMOTE_DEVICE,
                shots=("discover", "pick-controller", "pick-points", "offsets"),
            )
            # Behind the BACnet/IP router: a discovery on its network.
            _discover_and_pick(walk, ROUTED_IP_DEVICE, network=IP_NETWORK)
            if IMPORTS_FILES:
                _import_ede(walk)
            walk.page.mouse.move(700, 950)  # no hover highlight in the picture
            walk.shot("controllers")
            _shed_and_release(walk)

            # Home Assistant and the building never left loopback.
            for pid in (demo.hass_pid, demo.process.pid):
                assert _off_loopback_sockets(pid) == [], pid
        finally:
            browser.close()
    # The integration pages ask for brand logos and the add-integration dialog for a source
    # file on GitHub: blocked like anything off loopback, and nothing else may be asked for.
    left = [url for url in blocked if not FRONTEND_ASKS.match(url)]
    assert left == [], f"the page tried to leave loopback: {left}"
