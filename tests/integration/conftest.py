"""A loaded loadshed_ven entry wired to a small simulated building on loopback.

Each test gets its own building: 3 IP controllers, 1 controller behind the MS/TP router, a meter
and a VTN polling every second, on addresses no other test module uses.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState, ConfigFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven.const import DOMAIN
from custom_components.loadshed_ven.data import LoadshedData
from sim.building import BuildingConfig, SimBuilding
from sim.pki import SimTls
from sim.vtn import SimVtn
from sim.vtn3 import SimVtn3

# A loopback /16 of its own per test process, so concurrent runs never share a controller.
_NET = f"127.{100 + os.getpid() % 100}"
BASE_IP = f"{_NET}.0.2"
ROUTER_IP = f"{_NET}.1.1"
NETWORK = 12345
IP_DEVICES = [f"{_NET}.0.2", f"{_NET}.0.3", f"{_NET}.0.4"]
ROUTED_DEVICE = "12345:2"
ALL_DEVICES = [*IP_DEVICES, ROUTED_DEVICE]
SETPOINT = "analog-value,302"
SHED_ENABLE = "binary-value,1"
VEN_NAME = "test-ven"
# The 3.x VTN knows this VEN by VEN_NAME under these client credentials.
TEST_CLIENT_ID = "test-ven-client"
TEST_CLIENT_SECRET = "test-ven-secret"


async def wait_for(
    predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition"
) -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout} s waiting for {what}")


OPENADR_VERSIONS = pytest.mark.parametrize("openadr", ["2.0b", "3"], indirect=True)
"""Runs a test against both VTNs: a 2.0b one (openleadr) and a 3.x one (REST + OAuth2)."""


@pytest.fixture
def openadr(request: pytest.FixtureRequest) -> str:
    """The OpenADR version of the building's VTN: 2.0b unless a test asks for both."""
    return str(getattr(request, "param", "2.0b"))


@pytest.fixture
async def building(socket_enabled: None, openadr: str) -> AsyncIterator[SimBuilding]:
    """A running simulated building."""
    sim = SimBuilding(
        BuildingConfig(
            openadr=openadr,
            devices=len(IP_DEVICES),
            routed_devices=1,
            base_ip=BASE_IP,
            router_ip=ROUTER_IP,
            network=NETWORK,
            vtn_port=0,
            meter_port=0,
            poll_interval=timedelta(seconds=1),
        )
    )
    if isinstance(sim.vtn, SimVtn3):
        sim.vtn.add_client(TEST_CLIENT_ID, TEST_CLIENT_SECRET, VEN_NAME)
    await sim.start()
    yield sim
    await sim.stop()


def point_dicts() -> list[dict[str, Any]]:
    """Setpoint 78/80/82 °F at priority 10 on every controller, plus one binary point."""
    points: list[dict[str, Any]] = [
        {
            "address": address,
            "object_type": "analog-value",
            "instance": 302,
            "priority": 10,
            "values": [78.0, 80.0, 82.0],
            "name": f"Zone setpoint {address}",
        }
        for address in [*IP_DEVICES, ROUTED_DEVICE]
    ]
    points.append(
        {
            "address": IP_DEVICES[0],
            "object_type": "binary-value",
            "instance": 1,
            "priority": 12,
            "values": ["active", "active", "active"],
            "name": "Shed enable",
        }
    )
    return points


def vtn_data(building: SimBuilding) -> dict[str, Any]:
    """The VTN part of the entry's data, for the building's 2.0b or 3.x VTN."""
    vtn = building.vtn
    if isinstance(vtn, SimVtn3):
        return {
            "openadr_version": "3",
            "vtn_url": vtn.url,
            "ven_name": VEN_NAME,
            "client_id": TEST_CLIENT_ID,
            "client_secret": TEST_CLIENT_SECRET,
            "token_url": vtn.token_url,
            "poll_interval": 1,
        }
    return {"vtn_url": vtn.url, "ven_name": VEN_NAME}


def entry_data(building: SimBuilding) -> dict[str, Any]:
    """Config entry data as the config flow stores it, pointing at ``building``."""
    return {
        **vtn_data(building),
        "interface": "127.0.0.1/32",
        "port": 0,  # ephemeral: a client on 47808 would answer itself on loopback
        "device_instance": 3990001,
        "routers": f"{NETWORK}={ROUTER_IP}",
        "point_mode": "bulk",
        "points": point_dicts(),
        "meter_source": "modbus",
        "host": "127.0.0.1",
        "modbus_port": building.meter.port,
        "unit_id": 1,
        "register": 17,
        "register_type": "input",
        "data_type": "float32",
        "word_order": "big",
        "scale": 1.0,
        "meter_interval": 1,
        "shed_level": 1,
        "normal_level": 0,
        "act_on_test_events": False,
    }


@pytest.fixture
def mock_config_entry(building: SimBuilding) -> MockConfigEntry:
    """An entry for the simulated building."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=VEN_NAME,
        data=entry_data(building),
        unique_id=f"{building.vtn.url.lower()}|{VEN_NAME}",
    )


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, building: SimBuilding, mock_config_entry: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """The entry, loaded and registered with the simulated VTN."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.LOADED
    data: LoadshedData = mock_config_entry.runtime_data
    await wait_for(lambda: data.connected, what="VEN registered")
    yield mock_config_entry
    # Unload while the building still runs (HA's own teardown comes after the building's).
    if mock_config_entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(mock_config_entry.entry_id)


def slot(building: SimBuilding, address: str, obj: str, priority: int) -> Any:
    """What the simulated controller's priority array holds at ``priority``."""
    return building.bacnet.device(address).priority_array(obj)[priority - 1]


# ---- Fault injection: shared by the fault matrix and the ledger tests --------------------------

import functools  # noqa: E402

from custom_components.loadshed_ven import level_driver, override_ledger, settings  # noqa: E402
from custom_components.loadshed_ven.bacnet import LocalInterface  # noqa: E402
from custom_components.loadshed_ven.override_ledger import storage_key  # noqa: E402


def setpoints(building: SimBuilding) -> list[object]:
    """Slot 10 of the zone setpoint on every controller, in ``ALL_DEVICES`` order."""
    return [slot(building, address, SETPOINT, 10) for address in ALL_DEVICES]


# What ``setpoints`` reads while level 1 is held, and once everything is released.
SHED = [78.0] * 4
RELEASED: list[object] = [None] * 4


def point_key(address: str, obj: str = SETPOINT) -> str:
    """The key of a configured point (its switch's unique id without the entry id)."""
    return f"{address}/{obj}"


def ledger_records(hass_storage: dict[str, Any], entry: MockConfigEntry) -> list[dict[str, Any]]:
    """The override ledger records Home Assistant's Store holds for ``entry``."""
    stored = hass_storage.get(storage_key(entry.entry_id))
    return [] if stored is None else list(stored["data"]["records"])


@pytest.fixture
def quick_recovery(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seconds instead of minutes: override retries after 0.5 s doubling to 2 s (not 10 s to
    5 min), and a silent controller is given up after 1 s (one try) instead of 6 s (two)."""
    monkeypatch.setattr(override_ledger, "RETRY_INITIAL_SECONDS", 0.5)
    monkeypatch.setattr(override_ledger, "RETRY_CAP_SECONDS", 2.0)
    monkeypatch.setattr(
        settings,
        "LocalInterface",
        functools.partial(LocalInterface, apdu_timeout_ms=1000, apdu_retries=0),
    )


@pytest.fixture(autouse=True)
def release_at_once_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry without a release window releases at once, as these tests expect; the tests of
    the staggered release set the window in the entry."""
    monkeypatch.setattr(level_driver, "DEFAULT_RELEASE_WINDOW", 0)


@pytest.fixture
async def added_entry(
    hass: HomeAssistant, building: SimBuilding, mock_config_entry: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """The entry, added but not set up; unloaded at the end while the building still runs."""
    mock_config_entry.add_to_hass(hass)
    yield mock_config_entry
    if mock_config_entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(mock_config_entry.entry_id)


async def start_entry(hass: HomeAssistant, entry: MockConfigEntry) -> LoadshedData:
    """Set ``entry`` up (Home Assistant starting) and wait until the VEN is registered."""
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    data: LoadshedData = entry.runtime_data
    await wait_for(lambda: data.connected, what="VEN registered")
    return data


async def crash_entry(
    hass: HomeAssistant, entry: MockConfigEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Take ``entry`` down the way a dying process does: nothing is released or saved.

    The VEN, the timers and the retries stop (a dead process runs nothing), but not one
    override is released and the ledger stays exactly as the running entry last saved it.
    The rest of the unload only frees this process's resources (sockets, entities).
    """

    async def die(data: LoadshedData, _why: str) -> None:
        await data.driver.async_stop()
        await data.ven.stop()
        await data.ledger.async_stop()

    with monkeypatch.context() as patch:
        patch.setattr(LoadshedData, "stop_and_release", die)
        assert await hass.config_entries.async_unload(entry.entry_id)


def tls_entry(
    building: SimBuilding, vtn: SimVtn, pki: SimTls, *, vtn_fingerprint: str
) -> MockConfigEntry:
    """An entry using ``vtn`` over https with ``pki``'s VEN certificate, key and CA."""
    assert pki.ven_cert is not None
    assert pki.ven_key is not None
    data = {
        **entry_data(building),
        "vtn_url": vtn.url,
        "cert": pki.ven_cert.read_text(),
        "key": pki.ven_key.read_text(),
        "ca": pki.ca_cert.read_text(),
        "vtn_fingerprint": vtn_fingerprint,
    }
    if pki.passphrase:
        data["passphrase"] = pki.passphrase
    return MockConfigEntry(
        domain=DOMAIN, title=VEN_NAME, data=data, unique_id=f"{vtn.url.lower()}|{VEN_NAME}"
    )


async def start_vtn_flow(hass: HomeAssistant, step: str = "openadr2") -> ConfigFlowResult:
    """A new entry's config flow, past the version menu: the form of ``step``."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["openadr2", "openadr3"]
    return await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": step})
