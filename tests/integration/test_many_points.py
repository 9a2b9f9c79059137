"""A building with hundreds of points sets up without holding the event loop for long."""

from __future__ import annotations

import asyncio
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven.const import DOMAIN
from custom_components.loadshed_ven.switch import ADD_BATCH
from sim.building import SimBuilding

from .conftest import IP_DEVICES, VEN_NAME, entry_data

POINTS = 4 * ADD_BATCH + 50


def _many_points() -> list[dict[str, Any]]:
    return [
        {
            "address": IP_DEVICES[n % len(IP_DEVICES)],
            "object_type": "analog-value",
            "instance": 1000 + n,
            "priority": 10,
            "values": [78.0, 80.0, 82.0],
            "name": f"Zone {n}",
        }
        for n in range(POINTS)
    ]


async def test_many_points_are_added_in_batches_that_let_the_loop_run(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    """Every switch is created, and other callbacks run between the batches."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=VEN_NAME,
        data={**entry_data(building), "points": _many_points()},
        unique_id=f"{building.vtn.url.lower()}|{VEN_NAME}",
    )
    entry.add_to_hass(hass)
    seen: list[int] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        # Runs whenever the loop is free: records how many switches exist at that moment.
        while not stop.is_set():
            seen.append(len(hass.states.async_entity_ids("switch")))
            await asyncio.sleep(0)

    task = hass.async_create_background_task(ticker(), "ticker")
    try:
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    finally:
        stop.set()
        await task
    assert entry.state is ConfigEntryState.LOADED
    # The override switches plus the participation switch.
    assert len(hass.states.async_entity_ids("switch")) == POINTS + 1
    partial = {count for count in seen if 1 < count < POINTS + 1}
    assert len(partial) >= 3, sorted(set(seen))
    assert await hass.config_entries.async_unload(entry.entry_id)
