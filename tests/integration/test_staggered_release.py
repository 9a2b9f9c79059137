"""Staggered release on the simulated building: an event's end releases the points in waves.

The entry's release window is 1 minute: the 5 points of the building are released in 3 waves,
at the end and 30 s and 60 s after it. In the documented order (trunk, controller, key; numbers
compare as numbers, so the IP controllers 127.x come before the routed network 12345) they are
dealt to the waves round-robin:

* wave 1 (at the end): the setpoints of the 1st and 3rd IP controllers;
* wave 2 (+30 s): the binary point of the 1st IP controller and the routed controller's setpoint;
* wave 3 (+60 s): the setpoint of the 2nd IP controller.

Time is moved on with ``async_fire_time_changed``; what is checked is the controllers' priority
arrays, the override ledger and the bus events.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from homeassistant.core import Event, HomeAssistant, callback
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.loadshed_ven.bus_events import EVENT_RELEASE_WAVE
from custom_components.loadshed_ven.const import DOMAIN
from custom_components.loadshed_ven.data import LoadshedData
from sim.building import SimBuilding

from .conftest import (
    IP_DEVICES,
    ROUTED_DEVICE,
    SETPOINT,
    SHED_ENABLE,
    VEN_NAME,
    crash_entry,
    entry_data,
    ledger_records,
    point_key,
    slot,
    start_entry,
    wait_for,
)
from .fault_helpers import entity_of, nothing_of_ours_left, shed_verified

# (address, object, priority, level 1's value) of each wave, in wave order.
WAVES: list[list[tuple[str, str, int, object]]] = [
    [(IP_DEVICES[0], SETPOINT, 10, 78.0), (IP_DEVICES[2], SETPOINT, 10, 78.0)],
    [(IP_DEVICES[0], SHED_ENABLE, 12, "active"), (ROUTED_DEVICE, SETPOINT, 10, 78.0)],
    [(IP_DEVICES[1], SETPOINT, 10, 78.0)],
]


@pytest.fixture
def mock_config_entry(building: SimBuilding) -> MockConfigEntry:
    """The building's entry, with a release window of 1 minute."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=VEN_NAME,
        data={**entry_data(building), "release_window": 1},
        unique_id=f"{building.vtn.url.lower()}|{VEN_NAME}",
    )


def released_waves(building: SimBuilding) -> list[bool | None]:
    """Per wave: True when all its slots are NULL, False when all hold level 1, else None."""
    result: list[bool | None] = []
    for wave in WAVES:
        held = [slot(building, address, obj, prio) for address, obj, prio, _ in wave]
        if all(value is None for value in held):
            result.append(True)
        elif held == [value for *_, value in wave]:
            result.append(False)
        else:
            result.append(None)
    return result


def wave_keys(index: int) -> set[str]:
    return {point_key(address, obj) for address, obj, *_ in WAVES[index]}


class WaveEvents:
    """Collects the entry's ``release_wave`` bus events."""

    def __init__(self, hass: HomeAssistant) -> None:
        self.events: list[dict[str, Any]] = []
        self.unsubscribe = hass.bus.async_listen(EVENT_RELEASE_WAVE, self._heard)

    @callback
    def _heard(self, event: Event) -> None:
        self.events.append(dict(event.data))

    @property
    def next_wave(self) -> datetime:
        due = self.events[-1]["next_wave"]
        assert isinstance(due, str)
        return datetime.fromisoformat(due)


async def shed_then_end(
    hass: HomeAssistant, building: SimBuilding, entry: MockConfigEntry
) -> tuple[LoadshedData, WaveEvents]:
    """Start the entry, shed at level 1 for 3 s and wait for the first wave at its end."""
    data = await start_entry(hass, entry)
    waves = WaveEvents(hass)
    entry.async_on_unload(waves.unsubscribe)
    building.vtn.add_event(level=1, duration=timedelta(seconds=3))
    await shed_verified(building, data)
    await wait_for(lambda: len(waves.events) == 1, what="the first wave")
    assert released_waves(building) == [True, False, False]
    first = waves.events[0]
    assert (first["wave"], first["waves"], first["released"], first["total"]) == (1, 3, 2, 5)
    assert first["cancelled"] is False
    assert data.driver.release_progress == (2, 5)
    return data, waves


async def fire_at(hass: HomeAssistant, when: datetime) -> None:
    """Move Home Assistant's timers on to ``when`` and let what they start run."""
    async_fire_time_changed(hass, when)
    await hass.async_block_till_done()


async def test_an_events_end_releases_in_waves_at_their_due_times(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    added_entry: MockConfigEntry,
) -> None:
    data, waves = await shed_then_end(hass, building, added_entry)
    # The points not due yet hold our value, and the ledger tracks them.
    held = {r["key"] for r in ledger_records(hass_storage, added_entry)}
    assert held == wave_keys(1) | wave_keys(2)
    second = waves.next_wave

    await fire_at(hass, second - timedelta(seconds=2))
    assert released_waves(building) == [True, False, False]  # not before its wave
    await fire_at(hass, second)
    await wait_for(lambda: len(waves.events) == 2, what="the second wave")
    assert released_waves(building) == [True, True, False]
    assert waves.events[1]["released"] == 4
    assert {r["key"] for r in ledger_records(hass_storage, added_entry)} == wave_keys(2)
    third = waves.next_wave
    assert third - second == timedelta(seconds=30)

    await fire_at(hass, third - timedelta(seconds=2))
    assert released_waves(building) == [True, True, False]
    await fire_at(hass, third)
    await wait_for(lambda: len(waves.events) == 3, what="the last wave")
    nothing_of_ours_left(building)
    assert waves.events[2]["released"] == 5
    assert waves.events[2]["next_wave"] is None
    assert data.driver.release_progress is None
    await wait_for(lambda: ledger_records(hass_storage, added_entry) == [], what="ledger empty")
    # The meter is read every second: the rebound after the release shows at once.
    peak = entity_of(hass, added_entry, "sensor", "peak_after_release")
    await wait_for(
        lambda: (
            (state := hass.states.get(peak)) is not None
            and state.state not in ("unknown", "unavailable")
        ),
        what="the peak after release",
    )


async def test_release_all_during_the_waves_releases_everything_at_once(
    hass: HomeAssistant, building: SimBuilding, added_entry: MockConfigEntry
) -> None:
    data, waves = await shed_then_end(hass, building, added_entry)
    second = waves.next_wave
    await hass.services.async_call(
        DOMAIN, "release_all", {"config_entry_id": added_entry.entry_id}, blocking=True
    )
    nothing_of_ours_left(building)
    assert waves.events[-1]["cancelled"] is True
    assert waves.events[-1]["released"] == 5
    assert data.driver.release_progress is None
    # The waves are gone: nothing more happens at their due times.
    count = len(waves.events)
    await fire_at(hass, second + timedelta(seconds=31))
    assert len(waves.events) == count
    nothing_of_ours_left(building)


async def test_a_new_shed_during_the_waves_cancels_them(
    hass: HomeAssistant, building: SimBuilding, added_entry: MockConfigEntry
) -> None:
    data, waves = await shed_then_end(hass, building, added_entry)
    second = waves.next_wave
    building.vtn.add_event(level=2, duration=timedelta(minutes=30))
    await wait_for(lambda: waves.events[-1]["cancelled"] is True, what="the waves cancelled")
    every = [(address, obj, prio) for wave in WAVES for address, obj, prio, _ in wave]
    await wait_for(
        lambda: [slot(building, *where) for where in every] == [80.0, 80.0, "active", 80.0, 80.0],
        what="every point at level 2",
    )
    await fire_at(hass, second + timedelta(seconds=31))
    assert [slot(building, *where) for where in every] == [80.0, 80.0, "active", 80.0, 80.0]
    assert data.shedding


async def test_stopping_mid_wave_releases_the_rest_at_once(
    hass: HomeAssistant, building: SimBuilding, added_entry: MockConfigEntry
) -> None:
    await shed_then_end(hass, building, added_entry)
    assert await hass.config_entries.async_unload(added_entry.entry_id)
    nothing_of_ours_left(building)


@pytest.mark.usefixtures("quick_recovery")
async def test_a_restart_mid_wave_finishes_the_release(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    added_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The process dies after the first wave: the ledger still lists the rest, released at
    the next start (before any event is acted on)."""
    await shed_then_end(hass, building, added_entry)
    await crash_entry(hass, added_entry, monkeypatch)
    # Nothing was released before its wave, and the ledger says what is still ours.
    assert released_waves(building) == [True, False, False]
    records = ledger_records(hass_storage, added_entry)
    assert {r["key"] for r in records} == wave_keys(1) | wave_keys(2)
    assert {r["status"] for r in records} == {"held"}

    await start_entry(hass, added_entry)
    nothing_of_ours_left(building)
    assert ledger_records(hass_storage, added_entry) == []


async def test_the_release_window_option_applies_live(
    hass: HomeAssistant, building: SimBuilding, added_entry: MockConfigEntry
) -> None:
    """Set to 0 in the options, the next end releases at once, without a reload."""
    data = await start_entry(hass, added_entry)
    assert data.driver.release_window == timedelta(minutes=1)
    result = await hass.config_entries.options.async_init(added_entry.entry_id)
    assert "release_window" in result["data_schema"].schema
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            "shed_level": 1,
            "normal_level": 0,
            "act_on_test_events": False,
            "baseline_minutes": 15,
            "vtn_outage_minutes": 30,
            "meter_interval": 1,
            "release_window": 0,
        },
    )
    await hass.async_block_till_done()
    assert added_entry.options["release_window"] == 0
    assert added_entry.runtime_data is data  # not reloaded
    assert data.driver.release_window == timedelta(0)
    waves = WaveEvents(hass)
    added_entry.async_on_unload(waves.unsubscribe)
    building.vtn.add_event(level=1, duration=timedelta(seconds=3))
    await shed_verified(building, data)
    await wait_for(lambda: not data.shedding, what="the release at the end")
    nothing_of_ours_left(building)
    assert waves.events == []


async def test_a_policy_change_during_the_waves_keeps_them(
    hass: HomeAssistant, building: SimBuilding, added_entry: MockConfigEntry
) -> None:
    """A pass that is no wave (a new policy applied live) keeps what the waves still hold."""
    data, waves = await shed_then_end(hass, building, added_entry)
    second = waves.next_wave
    hass.config_entries.async_update_entry(
        added_entry, options={**added_entry.options, "shed_level": 2}
    )
    await hass.async_block_till_done()
    await wait_for(lambda: data.controller.policy.shed_level == 2, what="the new policy")
    await hass.async_block_till_done()
    assert released_waves(building) == [True, False, False]
    assert len(waves.events) == 1
    await fire_at(hass, second)
    await wait_for(lambda: len(waves.events) == 2, what="the second wave")
    assert released_waves(building) == [True, True, False]
    await fire_at(hass, waves.next_wave)
    await wait_for(lambda: len(waves.events) == 3, what="the last wave")
    nothing_of_ours_left(building)
