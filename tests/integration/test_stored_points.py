"""An entry stored before today's checks: a point it holds that is now refused is skipped."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven import settings
from custom_components.loadshed_ven.const import DOMAIN
from sim.building import SimBuilding

from .conftest import IP_DEVICES, VEN_NAME, entry_data, setpoints

BEYOND_REAL: dict[str, Any] = {
    "address": IP_DEVICES[1],
    "object_type": "analog-value",
    "instance": 303,
    "priority": 10,
    "values": [78.0, 1e39, 82.0],
    "name": "Too big",
}


async def test_stored_point_beyond_real_is_skipped_and_the_rest_sheds(
    hass: HomeAssistant, building: SimBuilding, caplog: pytest.LogCaptureFixture
) -> None:
    data = entry_data(building)
    data["points"] = [*data["points"], BEYOND_REAL]
    entry = MockConfigEntry(domain=DOMAIN, title=VEN_NAME, data=data)
    entry.add_to_hass(hass)
    with caplog.at_level(logging.ERROR):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    skipped = [r for r in caplog.records if "cannot be used and is skipped" in r.getMessage()]
    assert len(skipped) == 1
    assert f"{IP_DEVICES[1]}/analog-value,303" in skipped[0].getMessage()
    assert "REAL" in skipped[0].getMessage()

    await hass.services.async_call(
        DOMAIN, "shed", {"config_entry_id": entry.entry_id, "level": 2}, blocking=True
    )
    assert setpoints(building) == [80.0] * 4  # every other point shed; no traceback
    assert await hass.config_entries.async_unload(entry.entry_id)


def test_stored_broadcast_and_malformed_points_are_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = {"address": "192.168.1.20", "object_type": "AV", "instance": 1, "priority": 10}
    data = {
        "interface": "192.168.1.5/24",
        "points": [
            {**good, "values": [78, 80, 82]},
            {**good, "address": "192.168.1.255", "values": [78, 80, 82]},
            {**good, "instance": 2, "values": [78, 80]},
            "not a point",
        ],
    }
    with caplog.at_level(logging.ERROR):
        points = settings.points(data)
    assert [p.key for p in points] == ["192.168.1.20/analog-value,1"]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3
    assert "Point 2" in messages[0]
    assert "broadcast address of 192.168.1.0/24" in messages[0]
    assert "Point 4 of the configuration (not a point definition)" in messages[2]
