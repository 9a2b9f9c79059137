"""The config flow's point steps refuse what could never be written as defined."""

from __future__ import annotations

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from sim.building import SimBuilding

from .conftest import IP_DEVICES
from .test_config_flow import (  # noqa: F401 - unload_entries is an autouse fixture
    BULK,
    _bacnet_input,
    _to_bacnet,
    unload_entries,
)

# The interface's own /24: its network and directed-broadcast addresses are refused.
INTERFACE = "127.0.0.1/24"


async def _points_step(hass: HomeAssistant, building: SimBuilding, mode: str) -> str:
    flow_id = await _to_bacnet(hass, building)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _bacnet_input(interface=INTERFACE, point_mode=mode)
    )
    assert result["step_id"] == f"points_{mode}", result.get("errors")
    return flow_id


async def _abort(hass: HomeAssistant, flow_id: str) -> None:
    hass.config_entries.flow.async_abort(flow_id)
    await hass.async_block_till_done()


async def test_bacnet_step_refuses_value_beyond_real(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    flow_id = await _points_step(hass, building, "bulk")
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"bulk": BULK + f"\n{IP_DEVICES[0]}, AV, 303, 10, 78, 1e39, 80"}
    )
    assert result["errors"] == {"bulk": "invalid_points"}
    errors = result["description_placeholders"]["errors"]
    assert "line 6" in errors
    assert "1e+39" in errors
    assert "REAL" in errors
    # The largest REAL is fine; the flow moves on once the line is corrected.
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"bulk": BULK + f"\n{IP_DEVICES[0]}, AV, 303, 10, 78, 3.4e38, 80"}
    )
    assert result["step_id"] == "meter"
    await _abort(hass, flow_id)


async def test_seed_step_refuses_value_beyond_real(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    flow_id = await _points_step(hass, building, "seed")
    seed = {
        "addresses": IP_DEVICES[0],
        "object_type": "analog-value",
        "instance": 302,
        "priority": 10,
        "value": "-1e39",
    }
    result = await hass.config_entries.flow.async_configure(flow_id, seed)
    assert result["errors"] == {"value": "invalid_point_definition"}
    assert "REAL" in result["description_placeholders"]["error"]
    result = await hass.config_entries.flow.async_configure(flow_id, {**seed, "value": "-1e38"})
    assert result["step_id"] == "meter"
    await _abort(hass, flow_id)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.255", "broadcast address of 127.0.0.0/24"),
        ("127.0.0.255:47809", "broadcast address of 127.0.0.0/24"),
        ("127.0.0.0", "network address of 127.0.0.0/24"),
    ],
)
async def test_bacnet_step_refuses_directed_broadcast(
    hass: HomeAssistant, building: SimBuilding, address: str, why: str
) -> None:
    flow_id = await _points_step(hass, building, "bulk")
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"bulk": f"{BULK}\n\n{address}, BV, 1, 12, active"}
    )
    assert result["errors"] == {"bulk": "invalid_points"}
    errors = result["description_placeholders"]["errors"]
    assert f"line 7: address '{address}'" in errors
    assert why in errors
    result = await hass.config_entries.flow.async_configure(flow_id, {"bulk": BULK})
    assert result["step_id"] == "meter"
    await _abort(hass, flow_id)


async def test_seed_step_refuses_directed_broadcast(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    flow_id = await _points_step(hass, building, "seed")
    seed = {
        "addresses": f"{IP_DEVICES[0]}\n127.0.0.5, 127.0.0.255",
        "object_type": "analog-value",
        "instance": 302,
        "priority": 10,
        "value": "80",
    }
    result = await hass.config_entries.flow.async_configure(flow_id, seed)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"addresses": "invalid_points"}
    assert "line 2: address '127.0.0.255'" in result["description_placeholders"]["errors"]
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**seed, "addresses": f"{IP_DEVICES[0]}\n127.0.0.5"}
    )
    assert result["step_id"] == "meter"
    await _abort(hass, flow_id)
