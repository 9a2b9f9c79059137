"""A hostile OpenADR 3.x VTN against a real Home Assistant process: it must survive what it serves.

As for 2.0b (``test_hass_survives_hostile_vtn``), Home Assistant runs as a child process with the
entry already stored, polling the simulated 3.1.0 VTN of a small building that runs in the test.
The VTN answers event listings with exact bytes: JSON nested 100,000 deep, numbers that Python
cannot hold or that overflow to infinity, a 30 MB string, invalid UTF-8, 100,000 events, an
event with 100,000 intervals, NaN/Infinity and ``null``. While each is served, nothing may be
written; afterwards the process must still run and answer HTTP, and an ordinary event must be
shed (and released when cancelled). Stopping Home Assistant releases everything. Started again
while the VTN serves the worst bodies to its first listings (where a crash would become a crash
loop), it comes up, survives them and sheds the running event. An event with a duplicate key
(readers disagree on its level) has a test of its own: it is refused, not acted on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from homeassistant.helpers.json import json_bytes
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven.const import DOMAIN
from demo.hass_config import INTEGRATION
from demo.hass_process import HassProcess
from sim.building import BuildingConfig, SimBuilding
from sim.vtn3 import PATH_PREFIX, SimVtn3
from sim.vtn_records import iso
from tests.crash.test_hass_survives_hostile_vtn import (
    CONFIGURATION,
    _alive,
    _answers_http,
    _fail_if_dead,
    _free_tcp_port,
    _points,
    _setpoints,
    _until,
)
from tests.integration.conftest import TEST_CLIENT_ID, TEST_CLIENT_SECRET, entry_data

pytestmark = pytest.mark.timeout(180)

# Addresses of this test only (integration tests use 127.100-199, the 2.0b crash test 127.66/67).
BASE_IP = "127.70.0.2"
ROUTER_IP = "127.71.0.1"
NETWORK = 12370
VEN_NAME = "crash-test-ven3"
START_TIMEOUT = 90.0
# Each hostile body answers this many listings (the VEN lists every second), so an event acted
# on from the first one would still be written when the last one is served.
SERVED = 2
# After the last one: long enough for the VEN to act on it, had it taken anything from it.
AFTER_SERVED = 1.0
HOSTILE_ID = "hostile"
SHED = 78.0  # the setpoint value of level 1 (level 3, the hostile events' level, is 82.0)


def _write_config(config_dir: Path, port: int, building: SimBuilding) -> None:
    """A minimal configuration with the 3.x entry stored, as after its config flow."""
    (config_dir / "configuration.yaml").write_text(CONFIGURATION.format(port=port))
    components = config_dir / "custom_components"
    components.mkdir()
    (components / "loadshed_ven").symlink_to(INTEGRATION, target_is_directory=True)
    data = {
        **entry_data(building),
        "ven_name": VEN_NAME,
        "routers": f"{NETWORK}={ROUTER_IP}",
        "points": _points(building),
        "release_window": 0,  # a cancel releases at once, not in waves over minutes
    }
    entry = MockConfigEntry(
        domain=DOMAIN, title=VEN_NAME, data=data, unique_id=f"{building.vtn.url}|{VEN_NAME}"
    )
    storage = config_dir / ".storage"
    storage.mkdir()
    stored = {
        "version": 1,
        "minor_version": 5,
        "key": "core.config_entries",
        "data": {"entries": [json.loads(json_bytes(entry.as_dict()))]},
    }
    (storage / "core.config_entries").write_text(json.dumps(stored))


def _event_text(program_id: str, value: str = "3", intervals: str | None = None) -> str:
    """A running level-3 event for every VEN, as JSON text with ``value`` as its SIMPLE value.

    ``value`` and ``intervals`` are spliced in as raw JSON text, so they may be anything.
    """
    now = datetime.now(UTC)
    event = {
        "id": HOSTILE_ID,
        "createdDateTime": iso(now),
        "modificationDateTime": iso(now),
        "objectType": "EVENT",
        "programID": program_id,
        "eventName": "hostile event",
        "priority": None,
        "targets": None,
        "intervalPeriod": {"start": iso(now - timedelta(minutes=1)), "duration": "PT30M"},
        "intervals": "@INTERVALS@",
    }
    default = '[{"id": 0, "payloads": [{"type": "SIMPLE", "values": [@VALUE@]}]}]'
    text = json.dumps(event).replace('"@INTERVALS@"', intervals or default)
    return text.replace("@VALUE@", value)


def _hostile_bodies(program_id: str) -> dict[str, bytes]:
    """Every hostile listing by name; each would shed at level 3 if its event were taken."""

    def listing(value: str = "3", intervals: str | None = None) -> bytes:
        return f"[{_event_text(program_id, value, intervals)}]".encode()

    many_intervals = ", ".join(
        ['{"id": 0, "payloads": [{"type": "SIMPLE", "values": [3]}]}']
        + [f'{{"id": {n}}}' for n in range(1, 100_000)]
    )
    many_events = ", ".join(f'{{"id": "e{n}"}}' for n in range(100_000))
    return {
        "JSON nested 100,000 deep": b"[" * 100_000,
        "a number of 1,000,000 digits": listing("9" * 1_000_000),
        "1e999999": listing("1e999999"),
        "a 30 MB string": listing(f'"{"x" * 30_000_000}"'),
        "invalid UTF-8": listing().replace(b"hostile event", b"hostile \xff\xed\xa0\x80"),
        "100,000 events": f"[{many_events}]".encode(),
        "an event with 100,000 intervals": listing(intervals=f"[{many_intervals}]"),
        "NaN": listing("NaN"),
        "Infinity": listing("Infinity"),
        "-Infinity": listing("-Infinity"),
        "null": b"null",
    }


def _duplicate_keys_body(program_id: str) -> bytes:
    """An event whose SIMPLE value is given twice: level 0 to a first-wins reader, 3 to Python."""
    text = f"[{_event_text(program_id)}]"
    return text.replace('"values": [3]', '"values": [0], "values": [3]').encode()


# Served again to the first listings after a restart.
WORST = (
    "JSON nested 100,000 deep",
    "a number of 1,000,000 digits",
    "a 30 MB string",
    "invalid UTF-8",
    "100,000 events",
    "an event with 100,000 intervals",
)


@pytest.fixture
async def building(socket_enabled: None) -> AsyncIterator[SimBuilding]:
    """Two controllers on IP and one behind a router, a meter, a 3.1.0 VTN that knows this VEN."""
    sim = SimBuilding(
        BuildingConfig(
            devices=2,
            routed_devices=1,
            base_ip=BASE_IP,
            router_ip=ROUTER_IP,
            network=NETWORK,
            vtn_port=0,
            meter_port=0,
            poll_interval=timedelta(seconds=1),
            openadr="3",
        )
    )
    assert isinstance(sim.vtn, SimVtn3)
    sim.vtn.add_client(TEST_CLIENT_ID, TEST_CLIENT_SECRET, VEN_NAME)
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def hass_process(
    building: SimBuilding, tmp_path: Path
) -> AsyncIterator[tuple[HassProcess, str]]:
    """Home Assistant in its own process with the entry for ``building``; its base URL."""
    port = _free_tcp_port()
    _write_config(tmp_path, port, building)
    process = HassProcess(tmp_path)
    await process.start()
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        await process.stop(grace=30)


async def _wait(
    what: str, predicate: Callable[[], bool], hass: HassProcess, timeout: float = 20.0
) -> None:
    """:func:`_until`; on a timeout, fail with the last lines Home Assistant printed."""
    try:
        await _until(what, predicate, hass, timeout)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}:\n{hass.console_tail(40)}")


async def _nothing_written_while(
    what: str, vtn: SimVtn3, building: SimBuilding, hass: HassProcess
) -> None:
    """Watch the setpoints until the queued bodies were served and a little longer."""
    seen: set[object] = set()

    def served() -> bool:
        seen.update(_setpoints(building))
        return vtn.raw_pending == 0

    await _wait(f"{what} served", served, hass, START_TIMEOUT)
    async with asyncio.timeout(AFTER_SERVED + 1):
        loop = asyncio.get_running_loop()
        until = loop.time() + AFTER_SERVED
        while loop.time() < until:
            await _fail_if_dead(hass, f"after {what}")
            seen.update(_setpoints(building))
            await asyncio.sleep(0.05)
    assert seen == {None}, f"wrote {sorted(map(str, seen))} for {what}"


async def _sheds_ordinary_event(vtn: SimVtn3, building: SimBuilding, hass: HassProcess) -> str:
    event_id = vtn.add_event(level=1, duration=timedelta(minutes=30))
    await _wait("an ordinary event shed", lambda: _setpoints(building) == [SHED] * 3, hass)
    return event_id


async def _listing_started(building: SimBuilding, hass: HassProcess, base_url: str) -> SimVtn3:
    """Wait until Home Assistant answers HTTP and its VEN listed events once; the VTN."""
    vtn = building.vtn
    assert isinstance(vtn, SimVtn3)
    await _wait("a token", lambda: bool(vtn.registered_vens()), hass, START_TIMEOUT)
    async with asyncio.timeout(START_TIMEOUT):
        while not await _answers_http(base_url):
            await _fail_if_dead(hass, "starting")
            await asyncio.sleep(0.2)
    await _wait("a first listing", lambda: ("GET", PATH_PREFIX + "/events") in vtn.requests, hass)
    return vtn


async def test_hass_survives_hostile_3x_bodies_and_sheds_the_next_event(
    building: SimBuilding, hass_process: tuple[HassProcess, str]
) -> None:
    hass, base_url = hass_process
    vtn = await _listing_started(building, hass, base_url)
    bodies = _hostile_bodies(vtn.program_id)
    for what, body in bodies.items():
        vtn.serve_raw(body, times=SERVED)
        await _nothing_written_while(what, vtn, building, hass)
        await _alive(hass, base_url, what)
        event_id = await _sheds_ordinary_event(vtn, building, hass)
        vtn.cancel_event(event_id)
        await _wait(f"release after {what}", lambda: _setpoints(building) == [None] * 3, hass)

    event_id = await _sheds_ordinary_event(vtn, building, hass)
    await _wait("its optIn", lambda: any(o.event_id == event_id for o in vtn.opts), hass)
    assert {o.opt_type for o in vtn.opts if o.event_id == event_id} == {"optIn"}
    assert await hass.stop(grace=30) == 0
    assert _setpoints(building) == [None] * 3  # released on the way down
    hass.console_log.replace(hass.config_dir / "hass-console-first.log")  # kept for a post-mortem

    # A restart meets the worst bodies at its first listings; the event runs on behind them.
    for what in WORST:
        vtn.serve_raw(bodies[what])
    tokens = vtn.tokens_issued
    again = HassProcess(hass.config_dir)
    await again.start()
    try:
        await _wait("a new token", lambda: vtn.tokens_issued > tokens, again, START_TIMEOUT)
        await _wait("the worst bodies served", lambda: vtn.raw_pending == 0, again, START_TIMEOUT)
        await _wait("the event shed again", lambda: _setpoints(building) == [SHED] * 3, again)
        await _alive(again, base_url, "a restart into the worst bodies")
    finally:
        await again.stop(grace=30)
    assert _setpoints(building) == [None] * 3


async def test_an_event_with_duplicate_keys_is_not_acted_on(
    building: SimBuilding, hass_process: tuple[HassProcess, str]
) -> None:
    hass, base_url = hass_process
    vtn = await _listing_started(building, hass, base_url)
    vtn.serve_raw(_duplicate_keys_body(vtn.program_id), times=SERVED)
    await _nothing_written_while("duplicate keys", vtn, building, hass)
    await _alive(hass, base_url, "duplicate keys")
    await _sheds_ordinary_event(vtn, building, hass)
