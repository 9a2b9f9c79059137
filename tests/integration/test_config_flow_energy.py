"""The Modbus meter step's optional energy register: checked with a real read, stored, cleared."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven.const import DOMAIN
from sim.building import SimBuilding

from .conftest import wait_for
from .test_config_flow import (  # noqa: F401 - unload_entries is an autouse fixture
    _bacnet_input,
    _meter_input,
    _vtn_input,
    unload_entries,
)
from .test_config_flow_meter import POLICY, _to_meter
from .test_platforms import entity_id, state_of


async def test_energy_register_is_read_before_it_is_stored(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    flow_id = await _to_meter(hass, building, "modbus")
    result = await hass.config_entries.flow.async_configure(
        flow_id, _meter_input(building, energy_register=4000)
    )
    assert result["errors"] == {"energy_register": "energy_register_failed"}
    assert "register 4000" in result["description_placeholders"]["error"]

    building.meter.nan = True  # the power and the count both unusable: the power is named
    result = await hass.config_entries.flow.async_configure(
        flow_id, _meter_input(building, energy_register=19)
    )
    assert result["errors"] == {"max_kw": "meter_implausible"}
    building.meter.nan = False

    result = await hass.config_entries.flow.async_configure(
        flow_id, _meter_input(building, energy_register=19)
    )
    assert result["step_id"] == "policy"
    result = await hass.config_entries.flow.async_configure(flow_id, POLICY)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["energy_register"] == 19

    # The entry reads the register: its sensor shows the meter's own count.
    entry = result["result"]
    await hass.async_block_till_done()
    sensor = entity_id(hass, entry, "sensor", "grid_energy")
    await wait_for(lambda: state_of(hass, sensor) not in ("unknown", "unavailable"))
    assert float(state_of(hass, sensor)) >= 250_000.0


async def test_without_energy_register_nothing_is_stored(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    flow_id = await _to_meter(hass, building, "modbus")
    result = await hass.config_entries.flow.async_configure(flow_id, _meter_input(building))
    result = await hass.config_entries.flow.async_configure(flow_id, POLICY)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert "energy_register" not in result["data"]


async def test_reconfigure_can_clear_the_energy_register(
    hass: HomeAssistant, building: SimBuilding, mock_config_entry: MockConfigEntry
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=mock_config_entry.title,
        data={**mock_config_entry.data, "energy_register": 19},
        unique_id=mock_config_entry.unique_id,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.runtime_data.meter.has_energy_register

    result = await entry.start_reconfigure_flow(hass)
    flow_id = result["flow_id"]
    await hass.config_entries.flow.async_configure(flow_id, _vtn_input(building))
    bacnet = {
        k: v for k, v in _bacnet_input().items() if k not in ("point_mode", "check_reachable")
    }
    await hass.config_entries.flow.async_configure(flow_id, bacnet)
    await hass.config_entries.flow.async_configure(flow_id, {"meter_source": "modbus"})
    result = await hass.config_entries.flow.async_configure(flow_id, _meter_input(building))
    assert result["reason"] == "reconfigure_successful"
    assert "energy_register" not in entry.data
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert not entry.runtime_data.meter.has_energy_register
