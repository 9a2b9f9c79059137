"""A hostile VTN against a real Home Assistant process: the process must survive what it serves.

A body that makes a library crash the interpreter (SIGSEGV inside libxml2) would also kill an
in-process test run, so Home Assistant runs here as a child process (``demo.hass_process``)
with the entry already stored, polling the simulated VTN of a small building that runs in the
test. The VTN answers polls with exact bytes: an oadrDistributeEvent behind a DTD declaring an
internal entity, then one behind a "billion laughs" DTD. Afterwards the process must still run
and answer HTTP, nothing may have been written for those events, and a following ordinary event
must be shed. Stopping Home Assistant then releases everything. Started again while the VTN
serves the same bodies to its first requests (where a crash would become a crash loop), it comes
up, survives them and sheds the running event again.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from homeassistant.helpers.json import json_bytes
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven.const import DOMAIN
from demo.hass_config import INTEGRATION
from demo.hass_process import HassProcess
from sim.building import BuildingConfig, SimBuilding
from sim.vtn_raw import billion_laughs, distribution_xml, draft_event, with_internal_entity
from tests.integration.conftest import entry_data

pytestmark = pytest.mark.timeout(180)

# Addresses of this test only (integration tests use 127.100-199, the browser test 127.60/61).
BASE_IP = "127.66.0.2"
ROUTER_IP = "127.67.0.1"
NETWORK = 12366
SETPOINT = "analog-value,302"
PRIORITY = 10
VEN_NAME = "crash-test-ven"
START_TIMEOUT = 90.0
# The VEN polls every second: this many seconds cover a few polls after a body was served.
AFTER_SERVED = 3.0

CONFIGURATION = """\
homeassistant:
  name: Crash test
  latitude: 0
  longitude: 0
  elevation: 0
  unit_system: metric
  time_zone: UTC
  country: US
  currency: USD
  internal_url: http://127.0.0.1:{port}

http:
  server_host: 127.0.0.1
  server_port: {port}

api:

logger:
  default: warning
  logs:
    custom_components.loadshed_ven: info
    # The camera helper loads with the HTTP stack and misses an optional JPEG library.
    homeassistant.components.camera.img_util: critical
"""


def _free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _points(building: SimBuilding) -> list[dict[str, Any]]:
    return [
        {
            "address": device.address,
            "object_type": "analog-value",
            "instance": 302,
            "priority": PRIORITY,
            "values": [78.0, 80.0, 82.0],
            "name": f"Zone setpoint {device.address}",
        }
        for device in building.bacnet.devices
    ]


def _write_config(config_dir: Path, port: int, building: SimBuilding) -> None:
    """A minimal configuration with the entry stored, as after its config flow."""
    (config_dir / "configuration.yaml").write_text(CONFIGURATION.format(port=port))
    components = config_dir / "custom_components"
    components.mkdir()
    (components / "loadshed_ven").symlink_to(INTEGRATION, target_is_directory=True)
    data = {
        **entry_data(building),
        "ven_name": VEN_NAME,
        "routers": f"{NETWORK}={ROUTER_IP}",
        "points": _points(building),
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


@pytest.fixture
async def building(socket_enabled: None) -> AsyncIterator[SimBuilding]:
    """Two controllers on IP and one behind a router, a meter, a VTN polled every second."""
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
        )
    )
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


def _setpoints(building: SimBuilding) -> list[object]:
    return [device.priority_array(SETPOINT)[PRIORITY - 1] for device in building.bacnet.devices]


async def _fail_if_dead(hass: HassProcess, what: str) -> None:
    if not hass.running:
        code = await hass.wait()
        pytest.fail(f"Home Assistant died (exit code {code}) {what}:\n{hass.console_tail(40)}")


async def _until(
    what: str, predicate: Callable[[], bool], hass: HassProcess, timeout: float = 20.0
) -> None:
    """Wait for ``predicate``; fail at once, with its last lines, if Home Assistant died."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await _fail_if_dead(hass, f"waiting for {what}")
            await asyncio.sleep(0.1)


async def _answers_http(base_url: str) -> bool:
    """Whether Home Assistant's HTTP API answers (401 without a token is an answer)."""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{base_url}/api/", timeout=aiohttp.ClientTimeout(total=5)) as response,
        ):
            return response.status in (200, 401)
    except (aiohttp.ClientError, TimeoutError):
        return False


async def _alive(hass: HassProcess, base_url: str, what: str) -> None:
    await _fail_if_dead(hass, f"after {what}")
    assert await _answers_http(base_url), f"Home Assistant stopped answering HTTP after {what}"


async def test_hass_survives_dtd_bodies_and_sheds_the_next_event(
    building: SimBuilding, hass_process: tuple[HassProcess, str]
) -> None:
    hass, base_url = hass_process
    vtn = building.vtn
    ven_id = vtn.ven_id_for(VEN_NAME)
    await _until("registration", lambda: bool(vtn.registered_vens()), hass, START_TIMEOUT)
    async with asyncio.timeout(START_TIMEOUT):
        while not await _answers_http(base_url):
            await _fail_if_dead(hass, "starting")
            await asyncio.sleep(0.2)

    hostile: dict[str, Callable[[str], str]] = {
        "an internal entity": lambda xml: with_internal_entity(xml, "dtd-entity"),
        "billion laughs": billion_laughs,
    }
    for number, (what, mutate) in enumerate(hostile.items()):
        event = draft_event(level=3, duration=timedelta(minutes=30), event_id="dtd-entity")
        body = mutate(distribution_xml(vtn.vtn_id, ven_id, [event], request_id=f"r{number}"))
        assert "<!DOCTYPE" in body
        vtn.serve_raw(body, ven_id=ven_id)
        await _until(f"the body with {what} served", lambda: vtn.raw_pending == 0, hass)
        await asyncio.sleep(AFTER_SERVED)
        await _alive(hass, base_url, f"a DTD with {what}")
        assert _setpoints(building) == [None] * 3, f"acted on the event behind {what}"
        assert [o for o in vtn.opts if o.event_id == "dtd-entity"] == []

    event_id = vtn.add_event(level=2, duration=timedelta(minutes=30))
    await _until("the next event shed", lambda: _setpoints(building) == [80.0] * 3, hass)
    await _until("its optIn", lambda: any(o.event_id == event_id for o in vtn.opts), hass)
    assert {o.opt_type for o in vtn.opts if o.event_id == event_id} == {"optIn"}
    await _alive(hass, base_url, "the valid event")

    assert await hass.stop(grace=30) == 0
    assert _setpoints(building) == [None] * 3  # released on the way down

    # A restart meets the same bodies first: at its event sync and at its first polls.
    for service in ("EiEvent", "OadrPoll"):
        vtn.serve_raw(body, service=service, ven_id=ven_id)
    vtn.distribute_every_poll = True  # the running event reaches it after the hostile bodies
    again = HassProcess(hass.config_dir)
    await again.start()
    try:
        await _until("re-registration", lambda: vtn.registered_vens()[0].registrations == 2, again)
        await _until("both bodies served", lambda: vtn.raw_pending == 0, again, START_TIMEOUT)
        await _until("the event shed again", lambda: _setpoints(building) == [80.0] * 3, again)
        await _alive(again, base_url, "a restart into the same bodies")
    finally:
        await again.stop(grace=30)
    assert _setpoints(building) == [None] * 3
