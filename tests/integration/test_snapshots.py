"""Snapshots of what a configured entry shows Home Assistant: entities, devices, diagnostics.

A renamed entity or a changed unique id, attribute or diagnostics field shows up as a diff in
``snapshots/test_snapshots.ambr``: review it, then ``pytest --snapshot-update``.

Each test process runs its building on a loopback /16 of its own (``127.1xx``); that part of
addresses, names and entity ids is written as ``127.x`` so the snapshots hold on every run.
The config entry id is fixed. Values that depend on timing (timestamps, ports, measured
savings, how many reports went out so far) are snapshotted as their type only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any, cast
from unittest.mock import patch

import pytest
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.amber.serializer import Repr
from syrupy.types import PropertyPath, SerializableData

import custom_components.loadshed_ven as integration
from custom_components.loadshed_ven.const import DOMAIN
from custom_components.loadshed_ven.data import LoadshedData
from sim.building import SimBuilding

from .conftest import BASE_IP, SHED, VEN_NAME, entry_data, setpoints, wait_for

ENTRY_ID = "01JSNAPSH0TENTRY0000000000"
EVENT_ID = "snapshot-event"
# This process's loopback net ("127.1xx"), dotted and as it appears in entity ids.
_NET = BASE_IP.rsplit(".", 2)[0]
_NET_DOTTED, _NET_SLUG = f"{_NET}.", _NET.replace(".", "_") + "_"

# Keys whose values depend on when things happened (and the meter's ephemeral port).
_TIMESTAMPS = {"written_at", "start", "end", "started", "ended", "shed_started", "shed_ended"}
_MEASURED = {"baseline_kw", "kw_saved", "energy_kwh", "measured_seconds"}
TIMING = frozenset({*_TIMESTAMPS, *_MEASURED, "last_reset", "time", "modbus_port"})
# The meter's latest reading is settled before a snapshot; what verification last saw is not.
TIMING_PATHS = frozenset({"verification.latest_kw"})
# Entities whose state is a timestamp or a measured saving (keys of their unique ids).
TIMING_STATES = frozenset(
    {"activity", "event_start", "event_end", "kw_saved", "energy_avoided", "grid_energy"}
)


def _neutral(text: str) -> str:
    return text.replace(_NET_DOTTED, "127.x.").replace(_NET_SLUG, "127_x_")


def _match(*, data: SerializableData, path: PropertyPath) -> SerializableData:
    """Write this process's net as ``127.x``; reduce timing-dependent values to their type."""
    if isinstance(data, str):
        data = _neutral(data)
    if data is None or not path:
        return data
    if path[-1][0] in TIMING or ".".join(str(key) for key, _ in path) in TIMING_PATHS:
        return Repr(type(data).__name__)
    return data


def _match_timing_state(*, data: SerializableData, path: PropertyPath) -> SerializableData:
    """As ``_match``, and the state itself (a timestamp or a measured saving) as its type."""
    if path == (("state", str),):
        return Repr(type(data).__name__)
    return _match(data=data, path=path)


async def _diagnostics(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, entry: MockConfigEntry
) -> dict[str, Any]:
    """The diagnostics, with the reports cut to the first: how many went out is timing."""
    data: LoadshedData = entry.runtime_data
    await wait_for(lambda: bool(data.ven.recent_reports), what="a first report")
    diag: dict[str, Any] = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    diag["reports"] = [{**report, "watts": Repr("float")} for report in diag["reports"][:1]]
    return diag


class _NeutralNames:
    """The ``snapshot(name=...)`` that ``snapshot_platform`` calls, minus this process's net."""

    def __init__(self, snapshot: SnapshotAssertion) -> None:
        self._snapshot = snapshot.with_defaults(matcher=_match)

    def __call__(self, *, name: str) -> SnapshotAssertion:
        return self._snapshot(name=_neutral(name))


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Home Assistant's serializer, in ``snapshots/`` (plain syrupy would win otherwise)."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def platforms() -> list[Platform]:
    """Every platform, unless a test narrows it (``snapshot_platform`` takes one at a time)."""
    return list(integration.PLATFORMS)


@pytest.fixture
def mock_config_entry(
    building: SimBuilding, platforms: list[Platform]
) -> Iterator[MockConfigEntry]:
    """The simulated building's entry with a fixed id, set up with ``platforms`` only."""
    with patch.object(integration, "PLATFORMS", platforms):
        yield MockConfigEntry(
            domain=DOMAIN,
            title=VEN_NAME,
            data=entry_data(building),
            unique_id=f"{building.vtn.url.lower()}|{VEN_NAME}",
            entry_id=ENTRY_ID,
        )


@pytest.mark.parametrize(
    "platforms", [pytest.param([platform], id=platform.value) for platform in integration.PLATFORMS]
)
async def test_entities(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Registry entries and states at rest, one platform per run."""
    await hass.async_block_till_done()
    await snapshot_platform(
        hass, entity_registry, cast(SnapshotAssertion, _NeutralNames(snapshot)), ENTRY_ID
    )


async def test_devices_and_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """The devices of the entry and its diagnostics at rest."""
    devices = dr.async_entries_for_config_entry(device_registry, ENTRY_ID)
    assert len(devices) == 6
    for device in devices:
        assert device == snapshot(name=_neutral(f"device-{device.name}"), matcher=_match)
    assert await _diagnostics(hass, hass_client, init_integration) == snapshot(
        name="diagnostics", matcher=_match
    )


async def test_during_a_shed(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    building: SimBuilding,
    init_integration: MockConfigEntry,
    snapshot: SnapshotAssertion,
) -> None:
    """Every entity's state and the diagnostics once level 1 is held and verified."""
    data: LoadshedData = init_integration.runtime_data
    building.vtn.add_event(level=1, duration=timedelta(minutes=30), event_id=EVENT_ID)
    await wait_for(lambda: setpoints(building) == SHED, what="shed")
    await wait_for(
        lambda: (
            all(state.status == "held" and state.verified for state in data.point_states())
            and data.meter.latest_kw == building.meter.current_kw()
        ),
        what="every override verified and the meter caught up",
    )
    await hass.async_block_till_done()

    for entry in er.async_entries_for_config_entry(er.async_get(hass), ENTRY_ID):
        state = hass.states.get(entry.entity_id)
        assert state is not None, entry.entity_id
        timing = entry.unique_id.removeprefix(f"{ENTRY_ID}_") in TIMING_STATES
        assert state == snapshot(
            name=_neutral(f"{entry.entity_id}-state"),
            matcher=_match_timing_state if timing else _match,
        )

    assert await _diagnostics(hass, hass_client, init_integration) == snapshot(
        name="diagnostics", matcher=_match
    )


async def test_controller_devices_belong_to_their_subentries(
    hass: HomeAssistant, init_integration: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    """Each controller's device is its subentry's, named after it once it has a name."""
    entry = init_integration
    data: LoadshedData = entry.runtime_data
    by_name = {device.name: device for device in device_registry.devices.values()}
    for subentry in entry.subentries.values():
        device = by_name[f"BACnet controller {subentry.data['address']}"]  # no name given
        assert device.config_entries_subentries == {ENTRY_ID: {subentry.subentry_id}}

    subentry = next(iter(entry.subentries.values()))
    address = subentry.data["address"]
    assert hass.config_entries.async_update_subentry(
        entry, subentry, data={**subentry.data, "name": "Roof AHU"}, title="Roof AHU"
    )
    await hass.async_block_till_done()
    assert entry.runtime_data is data  # renamed live, without a reload
    renamed = [d for d in device_registry.devices.values() if d.name == "Roof AHU"]
    assert len(renamed) == 1
    assert renamed[0].config_entries_subentries == {ENTRY_ID: {subentry.subentry_id}}
    assert f"BACnet controller {address}" not in {
        device.name for device in device_registry.devices.values()
    }
