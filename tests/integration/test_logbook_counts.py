"""How many logbook entries one whole shed of the 58-point building writes.

The building is the one ``python -m sim`` runs: 50 controllers with a zone setpoint each, and 4
rooftop units behind the MS/TP router with a supply air setpoint and an economizer enable each.
The logbook is read through its websocket API, as the frontend reads it: the VEN's own entries
(its bus events) and the state lines of the entry's entities.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.loadshed_ven.bus_events import (
    EVENT_RELEASE_COMPLETED,
    EVENT_SHED_ENDED,
    EVENT_SHED_STARTED,
)
from custom_components.loadshed_ven.const import DOMAIN
from custom_components.loadshed_ven.data import LoadshedData
from custom_components.loadshed_ven.engine import release_waves
from custom_components.loadshed_ven.unique_ids import controller_device_id
from sim.building import BuildingConfig, SimBuilding

from .conftest import (
    BASE_IP,
    IP_DEVICES,
    NETWORK,
    ROUTER_IP,
    SETPOINT,
    VEN_NAME,
    crash_entry,
    entry_data,
    point_key,
    slot,
    start_entry,
    wait_for,
)
from .test_logbook import (  # noqa: F401 - the fixtures are used by name
    Entries,
    auto_enable_custom_integrations,
    logbook,
    logbook_entries,
    logbook_lines,
)

ZONES = 50
RTUS = 4
POINTS = ZONES + 2 * RTUS
# The VEN's own logbook entries one whole shed may write, besides one per failure.
BUDGET = 10


@pytest.fixture
async def campus(socket_enabled: None) -> AsyncIterator[SimBuilding]:
    """The simulated building of ``python -m sim`` (50 + 4 controllers), on this test's /16."""
    sim = SimBuilding(
        BuildingConfig(
            devices=ZONES,
            routed_devices=RTUS,
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


def campus_points(building: SimBuilding) -> list[dict[str, Any]]:
    """Zone setpoints on the IP controllers; supply air and economizer on the rooftop units."""
    points: list[dict[str, Any]] = []
    for device in building.bacnet.devices:
        address = device.address
        setpoint = {"address": address, "object_type": "analog-value", "instance": 302}
        if ":" not in address:
            name = f"Zone cooling setpoint {address}"
            points.append({**setpoint, "priority": 10, "values": [78.0, 80.0, 82.0], "name": name})
            continue
        name = f"Supply air setpoint {address}"
        points.append({**setpoint, "priority": 10, "values": [78.0, 80.0, 82.0], "name": name})
        points.append(
            {
                "address": address,
                "object_type": "binary-value",
                "instance": 1,
                "priority": 12,
                "values": ["active", "active", "active"],
                "name": f"Economizer shed enable {address}",
            }
        )
    return points


@pytest.fixture
def campus_options() -> dict[str, Any]:
    """Everything released at once: the whole shed fits in a few seconds."""
    return {"release_window": 0}


@pytest.fixture
async def campus_entry(
    hass: HomeAssistant, campus: SimBuilding, campus_options: dict[str, Any]
) -> AsyncIterator[MockConfigEntry]:
    """The VEN for the whole building, loaded and registered with its VTN."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=VEN_NAME,
        data={**entry_data(campus), "points": campus_points(campus)},
        options=campus_options,
        unique_id=f"{campus.vtn.url.lower()}|{VEN_NAME}",
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    data: LoadshedData = entry.runtime_data
    await wait_for(lambda: data.connected, what="VEN registered")
    yield entry
    if entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(entry.entry_id)


def ours(hass: HomeAssistant, entry: MockConfigEntry, entries: Entries) -> Entries:
    """The lines of ``entry``: its described bus events and its entities' state lines."""
    registry = er.async_get(hass)
    entities = {e.entity_id for e in er.async_entries_for_config_entry(registry, entry.entry_id)}
    return [
        line
        for line in entries
        if line.get("domain") == DOMAIN or line.get("entity_id") in entities
    ]


def summary(lines: Entries) -> list[str]:
    """Each line in short, for assertion messages."""
    return [
        f"{line.get('entity_id')}: {line.get('message') or line.get('state')}" for line in lines
    ]


async def test_one_shed_of_the_whole_building_is_a_few_lines(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    device_registry: dr.DeviceRegistry,
    campus: SimBuilding,
    campus_entry: MockConfigEntry,
) -> None:
    """Start, end and the refusing point: not a line per point written or released."""
    entry = campus_entry
    zones = [d.address for d in campus.bacnet.devices if ":" not in d.address]
    refusing = zones[7]
    campus.bacnet.device(refusing).deny_writes(SETPOINT)
    # The person who commissioned the building named that controller.
    wanted = (DOMAIN, controller_device_id(entry.entry_id, refusing))
    (device,) = [
        d
        for d in dr.async_entries_for_config_entry(device_registry, entry.entry_id)
        if wanted in d.identifiers
    ]
    device_registry.async_update_device(device.id, name_by_user="Library AHU-7")
    shed: dict[str, dict[str, Any]] = {}

    @callback
    def record(event: Event) -> None:
        shed[event.event_type] = dict(event.data)

    hass.bus.async_listen(EVENT_SHED_STARTED, record)
    hass.bus.async_listen(EVENT_SHED_ENDED, record)
    since = dt_util.utcnow()
    event_id = campus.vtn.add_event(level=1, duration=timedelta(seconds=6))
    await wait_for(lambda: EVENT_SHED_STARTED in shed, timeout=30, what="shed started")
    # Every zone but the refusing one holds the shed value in our slot, on the controller.
    held = [address for address in zones if slot(campus, address, SETPOINT, 10) == 78.0]
    assert len(held) == ZONES - 1
    assert refusing not in held
    await wait_for(lambda: EVENT_SHED_ENDED in shed, timeout=30, what="shed ended")
    assert all(slot(campus, address, SETPOINT, 10) is None for address in zones)

    # Automations get the counts.
    counts = ("written", "verified", "owned", "released", "failed")
    assert [shed[EVENT_SHED_STARTED][name] for name in counts] == [POINTS - 1, POINTS - 1, 0, 0, 1]
    assert [shed[EVENT_SHED_ENDED][name] for name in counts] == [0, 0, 0, POINTS, 0]

    lines = ours(hass, entry, await logbook_lines(hass, hass_ws_client, since))
    entries = [line for line in lines if line.get("domain") == DOMAIN]
    failures = [line for line in entries if line["message"].startswith("could not verify")]
    assert len(failures) == 1, summary(entries)
    assert len(entries) <= BUDGET + len(failures), summary(entries)
    (failed,) = failures
    assert failed["message"] == (
        f"could not verify Zone cooling setpoint {refusing} on Library AHU-7: the controller"
        f" refused the write (access_denied) for event {event_id} (by the VTN)"
    )
    messages = [line["message"] for line in entries]
    assert messages[0] == (
        f"started shedding at level 1 for event {event_id} (by the VTN):"
        f" {POINTS - 1} of {POINTS} points verified, 1 failed"
    )
    assert f"stopped shedding for event {event_id} (as scheduled): {POINTS} points released" in (
        messages
    )
    # The point that had failed is told released; the others are only counted.
    released = [m for m in messages if m.startswith("released")]
    assert released == [
        f"released Zone cooling setpoint {refusing} on Library AHU-7 for event {event_id}"
        " (as scheduled)"
    ]
    # No switch of ours went through unknown or unavailable on the way.
    switches = [line for line in lines if str(line.get("entity_id")).startswith("switch.")]
    assert not [
        line
        for line in switches
        if "state" in line
        and line["state"] in ("unknown", "unavailable")
        and "take_part" not in line["entity_id"]
    ], summary(switches)


@pytest.mark.parametrize("campus_options", [{"release_window": 0.05}])  # 3 s
async def test_a_staggered_release_adds_one_line_when_it_is_done(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    campus: SimBuilding,
    campus_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Waves a second apart: the end of the shed and the end of its release, not each wave."""
    monkeypatch.setattr(release_waves, "WAVE_SPACING", timedelta(seconds=1))
    zones = [d.address for d in campus.bacnet.devices if ":" not in d.address]
    done: list[dict[str, Any]] = []

    @callback
    def record(event: Event) -> None:
        done.append(dict(event.data))

    hass.bus.async_listen(EVENT_RELEASE_COMPLETED, record)
    since = dt_util.utcnow()
    event_id = campus.vtn.add_event(level=1, duration=timedelta(seconds=4))
    await wait_for(lambda: bool(done), timeout=40, what="release completed")
    assert all(slot(campus, address, SETPOINT, 10) is None for address in zones)
    assert done[0]["released"] == POINTS
    assert done[0]["failed"] == 0

    lines = ours(hass, campus_entry, await logbook_lines(hass, hass_ws_client, since))
    entries = [line for line in lines if line.get("domain") == DOMAIN]
    messages = [line["message"] for line in entries]
    assert len(entries) <= BUDGET, messages
    assert messages[-1] == (
        f"finished releasing in waves for event {event_id} (as scheduled): {POINTS} points released"
    )
    waves = [line for line in lines if line.get("entity_id") == "event.test_ven_activity"]
    assert len(waves) >= 3, summary(lines)  # the waves are on the activity entity


@pytest.mark.usefixtures("quick_recovery")
async def test_a_restart_mid_shed_shows_no_switch_unknown_or_unavailable(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    campus: SimBuilding,
    campus_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Home Assistant dies mid-shed and starts again with one controller silent.

    The switches come back from the state Home Assistant restores for them (``unavailable``)
    and go straight to what the controllers were read to hold after the restart (the ledger
    settles what the earlier run left): off, or on for the point whose controller does not
    answer (it may still hold our value), never through ``unknown``.
    """
    entry = campus_entry
    zones = [d.address for d in campus.bacnet.devices if ":" not in d.address]
    silent = campus.bacnet.device(zones[3])
    campus.vtn.add_event(level=1, duration=timedelta(minutes=10))
    await wait_for(
        lambda: all(slot(campus, address, SETPOINT, 10) == 78.0 for address in zones),
        timeout=30,
        what="shed",
    )
    await crash_entry(hass, entry, monkeypatch)
    silent.offline = True
    since = dt_util.utcnow()
    data = await start_entry(hass, entry)
    key = point_key(zones[3])
    await wait_for(lambda: data.controller.state(key).failure is not None, what="silent point")
    silent.offline = False
    lines = ours(hass, entry, await logbook_lines(hass, hass_ws_client, since))
    override = [
        line
        for line in lines
        if "state" in line and line["entity_id"].startswith("switch.bacnet_controller")
    ]
    assert len({line["entity_id"] for line in override}) >= POINTS - 1, summary(override)
    assert not [line for line in override if line["state"] in ("unknown", "unavailable")], summary(
        override
    )
    switch = er.async_get(hass).async_get_entity_id("switch", DOMAIN, f"{entry.entry_id}_{key}")
    assert next(line["state"] for line in override if line["entity_id"] == switch) == "on"


async def test_a_point_overridden_at_a_higher_priority_is_told_once(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    building: SimBuilding,
    init_integration: MockConfigEntry,
) -> None:
    """Someone else holds priority 8: counted as owned, and one line names the point."""
    owned = IP_DEVICES[1]
    building.bacnet.device(owned).write_local(SETPOINT, 74.0, 8)
    started: list[dict[str, Any]] = []

    @callback
    def record(event: Event) -> None:
        started.append(dict(event.data))

    hass.bus.async_listen(EVENT_SHED_STARTED, record)
    since = dt_util.utcnow()
    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=10))
    await wait_for(lambda: bool(started), what="shed started")
    # Our value is in our slot; the other writer's still wins.
    assert slot(building, owned, SETPOINT, 10) == 78.0
    assert slot(building, owned, SETPOINT, 8) == 74.0
    assert [started[0][name] for name in ("written", "verified", "owned", "failed")] == [5, 4, 1, 0]

    entries = await logbook_entries(hass, hass_ws_client, since)
    messages = [entry["message"] for entry in entries]
    assert messages == [
        f"started shedding at level 1 for event {event_id} (by the VTN): 4 of 5 points verified,"
        " 1 overridden at a higher priority",
        f"Zone setpoint {owned} on BACnet controller {owned} is overridden at priority 8 for event"
        f" {event_id} (by the VTN)",
    ]
