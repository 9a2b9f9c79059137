"""Start the building and Home Assistant, set loadshed_ven up, and stop both in order."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Final

import aiohttp
from homeassistant.const import __version__ as HA_VERSION  # noqa: N812

from sim.building import SimBuilding
from sim.control import DEFAULT_CONTROL_PORT, ControlServer

from .building_entry import flow_answers
from .commissioning import INTEGRATIONS_PATH, instructions
from .hass_api import HassApi, HassApiError
from .hass_config import prepare_config_dir, read_marker, write_marker
from .hass_process import HassProcess
from .options import ROOT, DemoOptions

USER_NAME: Final = "Demo operator"
USERNAME: Final = "demo"
PASSWORD: Final = "demo"  # noqa: S105 - a loopback-only demo instance
START_TIMEOUT: Final = 300.0
METER_TIMEOUT: Final = 30.0
DOMAIN: Final = "loadshed_ven"  # the integration's domain (its manifest.json)


class DemoError(RuntimeError):
    """The demo cannot start; the message says why."""


def say(text: str = "") -> None:
    """Print one line for the person running the demo (unbuffered)."""
    print(text, flush=True)


async def run(options: DemoOptions) -> int:
    """Run until Ctrl-C (or SIGTERM); the process exit code."""
    started = time.monotonic()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGHUP too: Home Assistant runs in its own session and would outlive a closed terminal.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)

    if not options.building_only:
        _check_port_free(options.ha_port)
        prepare_config_dir(options.config_dir, options.ha_port, fresh=options.fresh)
    building = SimBuilding(options.building_config())
    control = ControlServer(building, port=options.control_port)
    say(f"Starting the simulated building ({options.devices}+{options.routed} controllers)...")
    try:
        await building.start()
    except (OSError, RuntimeError) as err:
        raise DemoError(
            f"the simulated building cannot start: {err}. Is another demo or `python -m sim` "
            "running? Other addresses and ports: scripts/demo --help"
        ) from err
    try:
        await control.start()
        say(f"  VTN       {building.vtn.url} (OpenADR {options.openadr})")
        say(
            f"  BACnet    {options.devices} controllers from {options.base_ip}, {options.routed} "
            f"more on network {building.config.network} behind {options.router_ip}"
        )
        if (remote := building.bacnet.remote) is not None:
            say(f"  BBMD      {remote.bbmd.address}, {len(remote.devices)} controllers behind it")
        if (site := building.bacnet.routed_ip) is not None:
            say(
                f"  BACnet/IP router {site.router.ip}, {len(site.devices)} controllers on "
                f"network {site.network}"
            )
        say(f"  Meter     Modbus TCP {building.meter.host}:{building.meter.port}, register 17")
        say(f"  Control   {control.url}")
        if options.building_only:
            say(f"Simulated building running. Put an event on it: {_event_hint(options)}")
            say("Press Ctrl-C to stop it.")
            await stop.wait()
            return 0
        return await _with_home_assistant(options, building, stop, started)
    finally:
        say("Stopping the simulated building...")
        with contextlib.suppress(Exception):
            await control.stop()
        await building.stop()
        say("Stopped.")


async def _with_home_assistant(
    options: DemoOptions, building: SimBuilding, stop: asyncio.Event, started: float
) -> int:
    hass = HassProcess(options.config_dir)
    await hass.start()
    say(f"Starting Home Assistant {HA_VERSION} (pid {hass.pid}) in {_short(options.config_dir)}")
    say(f"  its log: {_short(options.config_dir / 'home-assistant.log')}")
    try:
        async with aiohttp.ClientSession() as session:
            api = HassApi(session, f"http://127.0.0.1:{options.ha_port}")
            setup = asyncio.ensure_future(_set_up(api, hass, options, building))
            if not await _race(setup, stop, hass):
                return 0 if stop.is_set() else 1
            url = setup.result()
        say()
        say(f"Loadshed VEN demo ready in {time.monotonic() - started:.0f} s:")
        say()
        say(f"  URL:      {url}")
        say(f"  User:     {USERNAME}")
        say(f"  Password: {PASSWORD}")
        say()
        if options.commissioning:
            for line in instructions(building):
                say(line)
            say()
        say(f"Put a load-shed event on the simulated VTN: {_event_hint(options)}")
        say("Press Ctrl-C to stop Home Assistant and the building.")
        exited = asyncio.ensure_future(hass.wait())
        waiting = asyncio.ensure_future(stop.wait())
        either: list[asyncio.Future[Any]] = [exited, waiting]
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if exited.done():
            say(f"Home Assistant exited (code {exited.result()}):\n{hass.console_tail()}")
            return 1
        exited.cancel()
        return 0
    finally:
        if hass.running:
            say("Stopping Home Assistant (it releases every override first)...")
        code = await hass.stop()
        say(f"Home Assistant stopped (exit code {code}).")


async def _race(setup: asyncio.Future[str], stop: asyncio.Event, hass: HassProcess) -> bool:
    """Wait for ``setup``; False when Ctrl-C or Home Assistant exiting came first."""
    waiting = asyncio.ensure_future(stop.wait())
    exited = asyncio.ensure_future(hass.wait())
    first: list[asyncio.Future[Any]] = [setup, waiting, exited]
    await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
    for task in (waiting, exited):
        task.cancel()
    if setup.done():
        if (error := setup.exception()) is None:
            return True
        say(f"The demo could not set Home Assistant up: {error}")
        say(f"Home Assistant's last lines:\n{hass.console_tail()}")
        return False
    setup.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await setup
    if not stop.is_set():
        say(f"Home Assistant exited during start-up:\n{hass.console_tail()}")
    return False


async def _set_up(
    api: HassApi, hass: HassProcess, options: DemoOptions, building: SimBuilding
) -> str:
    """Onboard, add the entry if needed, save the dashboard; the dashboard's URL.

    The dashboard is saved with a new entry only, so edits made to it survive a restart.
    Commissioning stops after the login: the URL is then the integrations page.
    """
    await _step("Waiting for Home Assistant", api.wait_until_up(lambda: hass.running))
    await _step("Logging in", api.onboard_or_login(USER_NAME, USERNAME, PASSWORD))
    await _step("Waiting for Home Assistant to finish starting", api.wait_running())
    if options.commissioning:  # the person commissions the building in the UI
        if await api.entries(DOMAIN):
            say(
                f"loadshed_ven is already set up in {_short(options.config_dir)} (an earlier "
                "run): carry on, or start over with --fresh"
            )
        return f"{api.base_url}{INTEGRATIONS_PATH}"
    entry_id, created = await _ensure_entry(api, options, building)
    await _step("Waiting for loadshed_ven to start", api.wait_entry_loaded(DOMAIN, entry_id))
    dashboard = await _step(
        "Building the operator dashboard",
        api.call_for_response(DOMAIN, "dashboard", {"config_entry_id": entry_id}),
    )
    if created:
        await _step("Saving it as the default dashboard", api.save_default_dashboard(dashboard))
    await _wait_for_meter(api, dashboard)
    return f"{api.base_url}/lovelace/{dashboard['views'][0]['path']}"


async def _ensure_entry(
    api: HassApi, options: DemoOptions, building: SimBuilding
) -> tuple[str, bool]:
    """The demo's entry, and whether it is new.

    The entry of an earlier run against the same building is kept; otherwise it is created.
    """
    answers = flow_answers(building)
    marker = read_marker(options.config_dir)
    existing = await api.entries(DOMAIN)
    if marker.get("answers") == answers and [e["entry_id"] for e in existing] == [
        marker.get("entry_id")
    ]:
        say("Using the loadshed_ven entry of the last run")
        return str(marker["entry_id"]), False
    for entry in existing:  # made for another building (other ports or addresses)
        await _step(f"Deleting the old entry {entry['title']}", api.delete_entry(entry["entry_id"]))
    entry_id = await _step(
        "Adding loadshed_ven through its config flow", api.run_config_flow(DOMAIN, answers)
    )
    write_marker(options.config_dir, {"entry_id": entry_id, "answers": answers})
    return entry_id, True


async def _wait_for_meter(api: HassApi, dashboard: dict[str, Any]) -> None:
    """Wait until the graphed meter shows a reading, so the dashboard opens populated."""
    graphed = [
        row["entity"]
        for section in dashboard["views"][0].get("sections", [])
        for card in section.get("cards", [])
        if card.get("type") == "history-graph"
        for row in card["entities"]
    ]
    if not graphed:
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(METER_TIMEOUT):
            while await api.state(graphed[0]) in (None, "unknown", "unavailable"):  # noqa: ASYNC110
                await asyncio.sleep(0.5)


async def _step[T](what: str, work: Awaitable[T], limit: float = START_TIMEOUT) -> T:
    """Run one start-up step, saying what it is and how long it took."""
    began = time.monotonic()
    say(f"{what}...")
    try:
        async with asyncio.timeout(limit):
            result = await work
    except TimeoutError:
        raise DemoError(f"{what}: timed out") from None
    except (HassApiError, aiohttp.ClientError) as err:
        raise DemoError(f"{what}: {err}") from err
    if (took := time.monotonic() - began) >= 1:
        say(f"  ({took:.0f} s)")
    return result


def _check_port_free(port: int) -> None:
    """Refuse early when Home Assistant could not listen on ``port``."""
    with socket.socket() as sock:
        # As a server binds: a closed connection still in TIME_WAIT does not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as err:
            raise DemoError(
                f"127.0.0.1:{port} is in use ({err.strerror}); give another --ha-port"
            ) from err


def _event_hint(options: DemoOptions) -> str:
    control = (
        f" --control http://127.0.0.1:{options.control_port}"
        if options.control_port != DEFAULT_CONTROL_PORT
        else ""
    )
    return f".venv/bin/python -m sim{control} event --level 1 --duration 10m"


def _short(path: Path) -> str:
    """``path`` relative to the repository when inside it."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(ROOT))
    return str(path)
