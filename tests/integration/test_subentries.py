"""Controller subentries: added, edited and removed without touching the VTN or the rest."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven.data import LoadshedData
from sim.building import SimBuilding

from .conftest import (
    ALL_DEVICES,
    IP_DEVICES,
    SETPOINT,
    ledger_records,
    point_key,
    slot,
    wait_for,
)


def _subentry_id(entry: MockConfigEntry, address: str) -> str:
    return next(s.subentry_id for s in entry.subentries.values() if s.unique_id == address)


async def _add(
    hass: HomeAssistant, entry: MockConfigEntry, user_input: dict[str, str]
) -> dict[str, Any]:
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "controller"), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"next_step_id": "manual"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "manual"
    return dict(await hass.config_entries.subentries.async_configure(result["flow_id"], user_input))


async def test_remove_and_add_a_controller_during_a_shed(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    registrations = len(building.vtn.registered_vens())
    building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: slot(building, IP_DEVICES[2], SETPOINT, 10) == 78.0, what="shed")

    data: LoadshedData = entry.runtime_data
    switch_id = f"{entry.entry_id}_{IP_DEVICES[2]}/{SETPOINT}"
    registry = er.async_get(hass)
    assert registry.async_get_entity_id("switch", "loadshed_ven", switch_id) is not None

    # Removing a controller releases its override and removes its switch, in the running
    # entry: no reload, the event goes on for the other controllers.
    hass.config_entries.async_remove_subentry(entry, _subentry_id(entry, IP_DEVICES[2]))
    await hass.async_block_till_done()
    assert entry.runtime_data is data
    assert slot(building, IP_DEVICES[2], SETPOINT, 10) is None
    assert f"{IP_DEVICES[2]}/{SETPOINT}" not in {s.point.key for s in data.point_states()}
    assert registry.async_get_entity_id("switch", "loadshed_ven", switch_id) is None
    kept = [a for a in ALL_DEVICES if a != IP_DEVICES[2]]
    assert all(slot(building, a, SETPOINT, 10) == 78.0 for a in kept)
    assert data.connected

    # A line for another device is refused; a known address aborts; a new controller is added.
    line = f"{IP_DEVICES[2]}, AV, 302, 10, 78, Zone 3"
    result = await _add(
        hass, entry, {"address": IP_DEVICES[2], "bulk": f"{IP_DEVICES[1]}, AV, 302, 10, 78"}
    )
    assert result["errors"] == {"bulk": "point_of_another_controller"}
    result = await _add(hass, entry, {"address": "not-an-address", "bulk": line})
    assert result["errors"] == {"address": "invalid_address"}
    result = await _add(
        hass, entry, {"address": IP_DEVICES[1], "bulk": line.replace(IP_DEVICES[2], IP_DEVICES[1])}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    result = await _add(hass, entry, {"address": IP_DEVICES[2], "name": "AHU 3", "bulk": line})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "AHU 3"
    await hass.async_block_till_done()
    # Added to the running entry, and shed at once: the event is still in force.
    assert entry.runtime_data is data
    await wait_for(lambda: slot(building, IP_DEVICES[2], SETPOINT, 10) == 78.0, what="shed")
    state = hass.states.get(registry.async_get_entity_id("switch", "loadshed_ven", switch_id) or "")
    assert state is not None
    await wait_for(
        lambda: (hass.states.get(state.entity_id) or state).state == "on", what="switch on"
    )
    subentry_id = _subentry_id(entry, IP_DEVICES[2])
    switch = next(
        e
        for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        if e.unique_id == f"{entry.entry_id}_{IP_DEVICES[2]}/{SETPOINT}"
    )
    assert switch.config_subentry_id == subentry_id
    assert len(building.vtn.registered_vens()) == registrations  # the VTN was not contacted


async def test_reconfigure_a_controller_prefilled(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    data: LoadshedData = entry.runtime_data
    subentry_id = _subentry_id(entry, IP_DEVICES[0])
    result = await entry.start_subentry_reconfigure_flow(hass, "controller", subentry_id)
    assert result["step_id"] == "manual"
    suggested = {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if key.description
    }
    assert suggested["address"] == IP_DEVICES[0]
    assert suggested["bulk"].splitlines() == [
        f"{IP_DEVICES[0]}, analog-value, 302, 10, 78.0, 80.0, 82.0, Zone setpoint {IP_DEVICES[0]}",
        f"{IP_DEVICES[0]}, binary-value, 1, 12, active, active, active, Shed enable",
    ]
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"address": IP_DEVICES[0], "name": "AHU 1", "bulk": suggested["bulk"].splitlines()[0]},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.subentries[subentry_id].title == "AHU 1"
    assert len(entry.subentries[subentry_id].data["points"]) == 1
    await hass.async_block_till_done()
    # A point removed: applied to the running entry.
    assert entry.runtime_data is data
    keys = {s.point.key for s in data.point_states()}
    assert f"{IP_DEVICES[0]}/binary-value,1" not in keys
    assert len(keys) == 4

    # A point's definition changed (its values): the entry reloads to apply it.
    result = await entry.start_subentry_reconfigure_flow(hass, "controller", subentry_id)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"address": IP_DEVICES[0], "bulk": f"{IP_DEVICES[0]}, AV, 302, 10, 75"},
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data is not data
    state = entry.runtime_data.controller.state(f"{IP_DEVICES[0]}/{SETPOINT}")
    assert state.point.values == (75.0, 75.0, 75.0)


@pytest.mark.usefixtures("quick_recovery")
async def test_removed_controller_that_cannot_be_released_stays_in_the_ledger(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    init_integration: MockConfigEntry,
) -> None:
    entry = init_integration
    data: LoadshedData = entry.runtime_data
    building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: slot(building, IP_DEVICES[2], SETPOINT, 10) == 78.0, what="shed")
    building.bacnet.device(IP_DEVICES[2]).deny_writes(SETPOINT)  # the release is refused

    hass.config_entries.async_remove_subentry(entry, _subentry_id(entry, IP_DEVICES[2]))
    await hass.async_block_till_done()
    # Not applied live: the entry reloaded, and the override is still tracked.
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data is not data
    assert slot(building, IP_DEVICES[2], SETPOINT, 10) == 78.0
    key = point_key(IP_DEVICES[2])
    assert key not in {s.point.key for s in entry.runtime_data.point_states()}
    assert key in {s.point.key for s in entry.runtime_data.ledger.pending}
    assert key in _ledger_keys(hass_storage, entry)

    building.bacnet.device(IP_DEVICES[2]).allow_writes(SETPOINT)
    await wait_for(lambda: slot(building, IP_DEVICES[2], SETPOINT, 10) is None, what="released")
    await wait_for(lambda: key not in _ledger_keys(hass_storage, entry), what="ledger settled")


def _ledger_keys(hass_storage: dict[str, Any], entry: MockConfigEntry) -> set[str]:
    return {
        f"{r['point']['address']}/{r['point']['object_type']},{r['point']['instance']}"
        for r in ledger_records(hass_storage, entry)
    }
