"""The BACnet step's BBMD fields: stored, refused with clear errors, pre-filled on reconfigure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven import validation
from custom_components.loadshed_ven.const import DOMAIN
from sim.building import SimBuilding
from sim.vtn import SimVtn

from .conftest import BASE_IP, start_vtn_flow
from .test_config_flow import BULK, _bacnet_input, _finish, _meter_input, _to_bacnet, _vtn_input

_NET = BASE_IP.rsplit(".", 2)[0]
BBMD_IP = f"{_NET}.60.1"  # nothing answers there: registration is the entities' business
_POINT_FIELDS = ("point_mode", "check_reachable")


@pytest.fixture(autouse=True)
async def unload_entries(hass: HomeAssistant, building: SimBuilding) -> AsyncIterator[None]:
    """Entries created by a flow run for real; unload them while the building still runs."""
    yield
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            await hass.config_entries.async_unload(entry.entry_id)


def _suggested(result: dict[str, Any]) -> dict[str, Any]:
    """What a form pre-fills: each field's suggested value."""
    schema: vol.Schema = result["data_schema"]
    return {str(key): (key.description or {}).get("suggested_value") for key in schema.schema}


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"bbmd_address": "bbmd.site.local"}, {"bbmd_address": "bbmd_invalid_address"}),
        ({"bbmd_address": "10.1.2"}, {"bbmd_address": "bbmd_invalid_address"}),
        ({"bbmd_address": "255.255.255.255"}, {"bbmd_address": "bbmd_not_a_device"}),
        ({"bbmd_address": "224.0.0.1"}, {"bbmd_address": "bbmd_not_a_device"}),
        (
            {"interface": "127.0.0.1/24", "bbmd_address": "127.0.0.255"},
            {"bbmd_address": "bbmd_not_a_device"},
        ),
        (
            {"port": 47815, "bbmd_address": "127.0.0.1", "bbmd_port": 47815},
            {"bbmd_address": "bbmd_is_self"},
        ),
    ],
)
async def test_bad_bbmd_fields_then_recovery(
    hass: HomeAssistant, building: SimBuilding, fields: dict[str, Any], errors: dict[str, str]
) -> None:
    flow_id = await _to_bacnet(hass, building)
    result = await hass.config_entries.flow.async_configure(flow_id, _bacnet_input(**fields))
    assert result["errors"] == errors
    result = await hass.config_entries.flow.async_configure(
        flow_id, _bacnet_input(bbmd_address=f" {BBMD_IP} ", bbmd_port=47809, bbmd_ttl=120)
    )
    assert result["step_id"] == "points_bulk", result.get("errors")
    result = await hass.config_entries.flow.async_configure(flow_id, {"bulk": BULK})
    result = await _finish(hass, flow_id, building)
    data = result["data"]
    assert (data["bbmd_address"], data["bbmd_port"], data["bbmd_ttl"]) == (BBMD_IP, 47809, 120)
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    bbmd = entry.runtime_data.settings.interface.bbmd
    assert bbmd is not None
    assert (bbmd.address, bbmd.port, bbmd.ttl) == (BBMD_IP, 47809, 120)


async def test_without_a_bbmd_nothing_is_stored(hass: HomeAssistant, building: SimBuilding) -> None:
    flow_id = await _to_bacnet(hass, building)
    # The form sends the port and TTL defaults even with the address left empty.
    result = await hass.config_entries.flow.async_configure(
        flow_id, _bacnet_input(bbmd_port=47808, bbmd_ttl=900)
    )
    result = await hass.config_entries.flow.async_configure(flow_id, {"bulk": BULK})
    result = await _finish(hass, flow_id, building)
    assert not {"bbmd_address", "bbmd_port", "bbmd_ttl"} & set(result["data"])
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    await hass.async_block_till_done()
    assert entry.runtime_data.settings.interface.bbmd is None


@pytest.mark.parametrize(
    ("fields", "field", "key"),
    [
        ({"bbmd_port": 0}, "bbmd_port", "bbmd_invalid_port"),
        ({"bbmd_ttl": 29}, "bbmd_ttl", "bbmd_invalid_ttl"),
        ({"bbmd_ttl": 65536}, "bbmd_ttl", "bbmd_invalid_ttl"),
    ],
)
def test_out_of_range_port_and_ttl(fields: dict[str, Any], field: str, key: str) -> None:
    """The form's number boxes keep these out; stored data that bypassed them is still refused."""
    with pytest.raises(validation.FlowError) as caught:
        validation.validate_bacnet(_bacnet_input(bbmd_address=BBMD_IP, **fields))
    assert (caught.value.field, caught.value.key) == (field, key)


async def test_reconfigure_prefills_the_bbmd(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    bbmd = {"bbmd_address": BBMD_IP, "bbmd_port": 47809, "bbmd_ttl": 300}
    hass.config_entries.async_update_entry(entry, data={**entry.data, **bbmd})
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    result = await entry.start_reconfigure_flow(hass)
    flow_id = result["flow_id"]
    result = await hass.config_entries.flow.async_configure(flow_id, _vtn_input(building))
    assert result["step_id"] == "bacnet"
    suggested = _suggested(result)
    assert {key: suggested[key] for key in bbmd} == bbmd
    fields = {k: v for k, v in _bacnet_input(**bbmd).items() if k not in _POINT_FIELDS}
    result = await hass.config_entries.flow.async_configure(flow_id, fields)
    assert result["step_id"] == "meter", result.get("errors")
    result = await hass.config_entries.flow.async_configure(flow_id, {"meter_source": "modbus"})
    result = await hass.config_entries.flow.async_configure(
        flow_id, _meter_input(building, scale=2.0)
    )
    assert result["reason"] == "reconfigure_successful"
    assert {key: entry.data[key] for key in bbmd} == bbmd
    assert entry.data["scale"] == 2.0


async def test_reconfiguring_the_only_user_of_a_stack_may_change_its_bbmd(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """The entry's own stack restarts on reload: another BBMD (or none) is no conflict."""
    stored = dict(init_integration.data)
    bacnet = validation.validate_bacnet(_bacnet_input(bbmd_address=BBMD_IP))
    with pytest.raises(validation.FlowError) as caught:
        await validation.check_port_free(hass, bacnet)
    assert caught.value.key == "stack_bbmd_conflict"
    await validation.check_port_free(hass, bacnet, replacing=stored)
    other = validation.validate_bacnet(_bacnet_input(device_instance=3990002))
    await validation.check_port_free(hass, other, replacing=stored)
    # Another entry's stack (or a second user of this one) still conflicts.
    elsewhere = {**stored, "device_instance": 3990003}
    with pytest.raises(validation.FlowError):
        await validation.check_port_free(hass, bacnet, replacing=elsewhere)


async def test_a_shared_stack_must_use_the_same_bbmd(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    vtn = SimVtn()
    await vtn.start()
    try:
        result = await start_vtn_flow(hass)
        flow_id = result["flow_id"]
        result = await hass.config_entries.flow.async_configure(
            flow_id, {"vtn_url": vtn.url, "ven_name": "second-building"}
        )
        # The first entry's stack runs on 127.0.0.1:0 without a BBMD.
        result = await hass.config_entries.flow.async_configure(
            flow_id, _bacnet_input(bbmd_address=BBMD_IP)
        )
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"bbmd_address": "stack_bbmd_conflict"}
        assert result["description_placeholders"]["bbmd"] == "no BBMD"
        result = await hass.config_entries.flow.async_configure(flow_id, _bacnet_input())
        assert result["step_id"] == "points_bulk"
    finally:
        await vtn.stop()
