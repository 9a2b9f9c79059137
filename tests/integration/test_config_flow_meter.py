"""The config flow's meter steps refuse a first reading no building could draw."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from sim.building import SimBuilding

from .test_config_flow import (  # noqa: F401 - unload_entries is an autouse fixture
    BULK,
    _bacnet_input,
    _meter_input,
    _to_bacnet,
    unload_entries,
)

POLICY = {"shed_level": 1, "normal_level": 0, "act_on_test_events": False}


async def _to_meter(hass: HomeAssistant, building: SimBuilding, source: str) -> str:
    flow_id = await _to_bacnet(hass, building)
    await hass.config_entries.flow.async_configure(flow_id, _bacnet_input())
    await hass.config_entries.flow.async_configure(flow_id, {"bulk": BULK})
    result = await hass.config_entries.flow.async_configure(flow_id, {"meter_source": source})
    assert result["step_id"] == f"meter_{source}"
    return flow_id


async def test_modbus_meter_step_refuses_implausible_reading(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    flow_id = await _to_meter(hass, building, "modbus")
    building.meter.implausible = True
    result = await hass.config_entries.flow.async_configure(flow_id, _meter_input(building))
    assert result["errors"] == {"max_kw": "meter_implausible"}
    assert result["description_placeholders"]["value"] == "1e+30"
    assert result["description_placeholders"]["limit"] == "100000"

    # A lower maximum of the user's own is applied too.
    building.meter.implausible = False
    result = await hass.config_entries.flow.async_configure(
        flow_id, _meter_input(building, max_kw=500)
    )
    assert result["errors"] == {"max_kw": "meter_implausible"}
    assert result["description_placeholders"]["limit"] == "500"

    result = await hass.config_entries.flow.async_configure(
        flow_id, _meter_input(building, max_kw=2000)
    )
    assert result["step_id"] == "policy"
    result = await hass.config_entries.flow.async_configure(flow_id, POLICY)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["max_kw"] == 2000


async def test_entity_meter_step_refuses_implausible_reading(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    hass.states.async_set("sensor.main_power", "5000", {"unit_of_measurement": "MW"})
    flow_id = await _to_meter(hass, building, "entity")
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"meter_entity": "sensor.main_power"}
    )
    assert result["errors"] == {"max_kw": "meter_implausible"}
    assert result["description_placeholders"] == {"value": "5e+06", "limit": "100000"}
    hass.states.async_set("sensor.main_power", "1.2", {"unit_of_measurement": "MW"})
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"meter_entity": "sensor.main_power"}
    )
    assert result["step_id"] == "policy"
    result = await hass.config_entries.flow.async_configure(flow_id, POLICY)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["max_kw"] == 100_000
