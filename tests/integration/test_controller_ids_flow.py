"""The controller flow's OpenADR resource and group ids: typed in, or given with discovery."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from sim.building import SimBuilding

from .conftest import IP_DEVICES, SETPOINT, slot, wait_for
from .test_discovery_flow import _submit, _to_points
from .test_discovery_flow import mock_config_entry as mock_config_entry  # noqa: PLC0414


def _sub(entry: MockConfigEntry, address: str) -> Any:
    return next(s for s in entry.subentries.values() if s.unique_id == address)


async def test_typed_in_ids_are_checked_and_stored(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "controller"), context={"source": SOURCE_USER}
    )
    result = await _submit(hass, result["flow_id"], {"next_step_id": "manual"})
    address = IP_DEVICES[2]
    fields = {
        "address": address,
        "bulk": f"{address}, AV, 302, 10, 78, 80, 82, Zone",
        "resource_id": "x" * 129,
    }
    result = await _submit(hass, result["flow_id"], fields)
    assert result["errors"] == {"resource_id": "invalid_target_id"}
    result = await _submit(
        hass, result["flow_id"], {**fields, "resource_id": " R3 ", "group_id": "  "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    data = _sub(entry, address).data
    assert data["resource_id"] == "R3"
    assert "group_id" not in data
    # The running entry took it: an event for R3 sheds the new controller only.
    building.vtn.add_event(level=1, duration=timedelta(minutes=30), targets={"resource_id": ["R3"]})
    await wait_for(lambda: slot(building, address, SETPOINT, 10) == 78.0, what="R3 shed")
    assert slot(building, IP_DEVICES[0], SETPOINT, 10) is None


async def test_discovery_asks_for_the_ids_with_the_points(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    result = await _to_points(hass, entry, {"address": IP_DEVICES[1]})
    fields = {str(key) for key in result["data_schema"].schema}
    assert {"resource_id", "group_id"} <= fields
    flow_id = result["flow_id"]
    result = await _submit(hass, flow_id, {"objects": [SETPOINT], "group_id": "bad\nid"})
    assert result["errors"] == {"group_id": "invalid_target_id"}
    result = await _submit(hass, flow_id, {"objects": [SETPOINT], "group_id": "west"})
    assert result["step_id"] == "values"
    values = {"mode": "absolute", "level_1": 78, "level_2": 80, "level_3": 82, "priority": 10}
    result = await _submit(hass, flow_id, values)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert _sub(entry, IP_DEVICES[1]).data["group_id"] == "west"
    building.vtn.add_event(level=1, duration=timedelta(minutes=30), targets={"group_id": ["west"]})
    await wait_for(lambda: slot(building, IP_DEVICES[1], SETPOINT, 10) == 78.0, what="west shed")
    assert slot(building, IP_DEVICES[0], SETPOINT, 10) is None
