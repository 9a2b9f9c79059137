"""5,000 override switches are created without holding the event loop for 100 ms.

A ticker task measures the longest time the loop did not get back to it (the longest stretch
of callbacks run back to back) while the entry sets up and while points are added to the
running entry; the figures are printed (``-s``) for the record. Garbage collection is held off
while measuring: its pauses come from the size of the whole process, not from what runs.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven.const import (
    CONF_SWITCHES,
    DOMAIN,
    SWITCHES_PER_CONTROLLER,
    SWITCHES_PER_POINT,
)
from custom_components.loadshed_ven.coordinator import Topic
from custom_components.loadshed_ven.engine.points import point_from_dict
from sim.building import SimBuilding

from .conftest import IP_DEVICES, VEN_NAME, entry_data, start_entry, wait_for

POINTS = 5_000
ADDED = 1_000
# The budget for any one stretch of the loop's work. Loop debug mode (on in tests) and a busy
# test machine make stretches longer than in production, so this is an upper bound.
BUDGET_SECONDS = 0.1


def _points(count: int, first: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "address": IP_DEVICES[n % len(IP_DEVICES)],
            "object_type": "analog-value",
            "instance": 1000 + n,
            "priority": 10,
            "values": [78.0, 80.0, 82.0],
            "name": f"Zone {n}",
        }
        for n in range(first, first + count)
    ]


@dataclass
class Stretch:
    """The longest gap between two turns of a ticker task: wall time and the thread's CPU."""

    wall: float = 0.0
    cpu: float = 0.0


@asynccontextmanager
async def _longest_stretch() -> AsyncIterator[Stretch]:
    """Measures the longest time the loop ran other work before the ticker ran again.

    CPU time is what the loop's callbacks cost; wall time adds whatever else the machine ran
    meanwhile (other test processes on a shared machine).
    """
    longest = Stretch()
    stop = asyncio.Event()

    async def ticker() -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        while not stop.is_set():
            await asyncio.sleep(0)
            now_wall, now_cpu = time.perf_counter(), time.thread_time()
            longest.wall = max(longest.wall, now_wall - wall)
            longest.cpu = max(longest.cpu, now_cpu - cpu)
            wall, cpu = now_wall, now_cpu

    # A full collection of the test process's heap (Home Assistant, the simulated building,
    # pytest) pauses everything for about 250 ms whatever the loop runs: measured apart.
    gc.collect()
    gc.disable()
    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        yield longest
    finally:
        stop.set()
        await task
        gc.enable()


def _switches(hass: HomeAssistant) -> int:
    return len(hass.states.async_entity_ids("switch"))


@pytest.mark.parametrize("mode", [SWITCHES_PER_POINT, SWITCHES_PER_CONTROLLER])
async def test_thousands_of_switches_never_hold_the_loop(
    hass: HomeAssistant, building: SimBuilding, mode: str
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=VEN_NAME,
        data={**entry_data(building), "points": _points(POINTS)},
        options={CONF_SWITCHES: mode},
        unique_id=f"{building.vtn.url.lower()}|{VEN_NAME}",
    )
    entry.add_to_hass(hass)
    per_switch = 1 if mode == SWITCHES_PER_POINT else 0
    expected = (POINTS if per_switch else len(IP_DEVICES)) + 1
    try:
        began = time.perf_counter()
        async with _longest_stretch() as setup:
            data = await start_entry(hass, entry)
        set_up = time.perf_counter() - began
        assert _switches(hass) == expected

        # Every switch shows a change (a shed pass over every point pushes one).
        async with _longest_stretch() as pushed:
            data.coordinator.push(Topic.STATE)
            for _ in range(200):
                await asyncio.sleep(0)
        # Points added to the running entry (as a controller subentry does).
        added = [point_from_dict(raw) for raw in _points(ADDED, first=POINTS)]
        assert data.add_switches is not None
        async with _longest_stretch() as adding:
            await data.controller.add_points(added)
            data.add_switches(added, None)
            await wait_for(
                lambda: _switches(hass) == expected + ADDED * per_switch, what="added switches"
            )
        print(
            f"\n{mode}: set-up of {POINTS} points {set_up:.2f} s; longest loop stretch "
            f"{setup.cpu * 1000:.0f} ms CPU ({setup.wall * 1000:.0f} ms wall); adding {ADDED}: "
            f"{adding.cpu * 1000:.0f} ms CPU ({adding.wall * 1000:.0f} ms wall); a push to all: "
            f"{pushed.cpu * 1000:.0f} ms CPU ({pushed.wall * 1000:.0f} ms wall)"
        )
        assert setup.cpu < BUDGET_SECONDS
        assert adding.cpu < BUDGET_SECONDS
        assert pushed.cpu < BUDGET_SECONDS
    finally:
        assert await hass.config_entries.async_unload(entry.entry_id)
