"""Shed verification sensors against the simulated building's meter.

The simulated meter drops 1.5 kW for every point it holds overridden, so the kW saved during a
shed is known exactly; the baseline is the meter's steady 850 kW before the shed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_mock_restore_state_shutdown_restart,
)

from custom_components.loadshed_ven.const import DOMAIN
from custom_components.loadshed_ven.data import LoadshedData
from sim.building import SimBuilding

from .conftest import wait_for
from .test_platforms import attrs, entity_id, state_of

BASE_KW = 850.0
KW_PER_POINT = 1.5
POINTS = 5  # four zone setpoints and one binary point, all held at level 1


def number(hass: HomeAssistant, entity: str) -> float | None:
    """The numeric state of ``entity``, or None while unknown."""
    state = state_of(hass, entity)
    return None if state == STATE_UNKNOWN else float(state)


async def shed(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Shed at level 1 now, from the action."""
    await hass.services.async_call(
        DOMAIN, "shed", {"config_entry_id": entry.entry_id, "level": 1}, blocking=True
    )


async def release_all(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Release every point, which ends the manual shed."""
    await hass.services.async_call(
        DOMAIN, "release_all", {"config_entry_id": entry.entry_id}, blocking=True
    )


async def test_kw_saved_and_energy_avoided_follow_the_meter(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    kw_saved = entity_id(hass, entry, "sensor", "kw_saved")
    energy = entity_id(hass, entry, "sensor", "energy_avoided")
    assert state_of(hass, kw_saved) == STATE_UNKNOWN
    assert state_of(hass, energy) == STATE_UNKNOWN
    assert attrs(hass, kw_saved)["unit_of_measurement"] == "kW"
    assert attrs(hass, kw_saved)["device_class"] == "power"
    assert attrs(hass, kw_saved)["state_class"] == "measurement"
    assert attrs(hass, energy)["unit_of_measurement"] == "kWh"
    assert attrs(hass, energy)["device_class"] == "energy"
    assert "state_class" not in attrs(hass, energy)  # no statistics: not a grid source

    meter = entity_id(hass, entry, "sensor", "meter_power")
    await shed(hass, entry)
    expected = KW_PER_POINT * POINTS
    assert building.meter.current_kw() == pytest.approx(BASE_KW - expected)
    await wait_for(
        lambda: number(hass, meter) == pytest.approx(BASE_KW - expected), what="meter drops"
    )
    await wait_for(
        lambda: number(hass, kw_saved) == pytest.approx(expected, abs=0.01), what="kW saved"
    )
    during = attrs(hass, kw_saved)
    # Readings from the first write on belong to the shed, never to its baseline.
    assert during["baseline_kw"] == pytest.approx(BASE_KW)
    assert str(during["event_id"]).startswith("manual-")
    assert during["shed_ended"] is None
    started = datetime.fromisoformat(during["shed_started"])
    # Energy grows while shedding; it restarts at each shed's start.
    await wait_for(lambda: (number(hass, energy) or 0) > 0, what="energy avoided")
    assert datetime.fromisoformat(attrs(hass, energy)["shed_started"]) == started
    assert "last_reset" not in attrs(hass, energy)
    first = number(hass, energy)
    await wait_for(lambda: (number(hass, energy) or 0) > (first or 0), what="energy grows")

    await release_all(hass, entry)
    await hass.async_block_till_done()
    after = attrs(hass, energy)
    assert after["shed_ended"] is not None
    frozen = number(hass, energy)
    average = number(hass, kw_saved)
    assert frozen is not None
    assert average is not None
    assert 0 < average <= expected + 0.01
    # The average is the energy over the measured time (at most the shed's duration).
    duration = datetime.fromisoformat(after["shed_ended"]) - started
    assert frozen <= expected * duration / timedelta(hours=1) + 0.001
    assert frozen == pytest.approx(average * measured_hours(entry), rel=1e-3, abs=1e-4)

    # Later readings change nothing: the last shed's values stay until the next shed.
    await wait_for(lambda: number(hass, meter) == pytest.approx(BASE_KW), what="meter back")
    assert number(hass, energy) == frozen
    assert number(hass, kw_saved) == average


def measured_hours(entry: MockConfigEntry) -> float:
    """The time the last shed's meter readings covered, in hours."""
    data: LoadshedData = entry.runtime_data
    result = data.verification.current()
    assert result is not None
    return result.measured / timedelta(hours=1)


async def test_no_reading_before_the_shed_means_unknown(
    hass: HomeAssistant, building: SimBuilding, mock_config_entry: MockConfigEntry
) -> None:
    building.meter.nan = True  # the meter answers, but with no usable value
    entry = mock_config_entry
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    data: LoadshedData = entry.runtime_data
    await wait_for(lambda: data.connected, what="VEN registered")
    kw_saved = entity_id(hass, entry, "sensor", "kw_saved")
    energy = entity_id(hass, entry, "sensor", "energy_avoided")

    await shed(hass, entry)
    await hass.async_block_till_done()
    assert attrs(hass, kw_saved)["baseline_kw"] is None
    building.meter.nan = False
    meter = entity_id(hass, entry, "sensor", "meter_power")
    await wait_for(
        lambda: state_of(hass, meter) not in (STATE_UNAVAILABLE, STATE_UNKNOWN), what="a reading"
    )
    await hass.async_block_till_done()
    # Readings during the shed cannot make up for the missing baseline.
    assert state_of(hass, kw_saved) == STATE_UNKNOWN
    assert state_of(hass, energy) == STATE_UNKNOWN
    await release_all(hass, entry)
    assert state_of(hass, kw_saved) == STATE_UNKNOWN
    assert state_of(hass, energy) == STATE_UNKNOWN
    assert attrs(hass, energy)["shed_ended"] is not None
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_the_last_finished_shed_is_shown_again_after_a_restart(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    kw_saved = entity_id(hass, entry, "sensor", "kw_saved")
    energy = entity_id(hass, entry, "sensor", "energy_avoided")
    await shed(hass, entry)
    await wait_for(lambda: (number(hass, energy) or 0) > 0, what="energy avoided")
    await release_all(hass, entry)
    await hass.async_block_till_done()
    before: dict[str, Any] = {
        entity: (state_of(hass, entity), attrs(hass, entity)) for entity in (kw_saved, energy)
    }

    assert await hass.config_entries.async_unload(entry.entry_id)
    await async_mock_restore_state_shutdown_restart(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    for entity, (state, attributes) in before.items():
        assert state_of(hass, entity) == state
        assert attrs(hass, entity) == attributes
    assert attrs(hass, energy)["shed_started"] == before[energy][1]["shed_started"]

    # A shed still in progress when Home Assistant stopped is not shown again.
    await shed(hass, entry)
    await wait_for(lambda: attrs(hass, kw_saved)["shed_ended"] is None, what="new shed")
    assert attrs(hass, kw_saved)["shed_started"] != before[kw_saved][1]["shed_started"]
    assert await hass.config_entries.async_unload(entry.entry_id)
    await async_mock_restore_state_shutdown_restart(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert state_of(hass, kw_saved) == STATE_UNKNOWN
    assert state_of(hass, energy) == STATE_UNKNOWN
