"""The grid energy sensor against the simulated meter: its energy register, or its power integrated.

The simulated meter counts kWh in a float32 register as its power flows, so the sensor's value
can be checked against what the meter itself counted. At 3,600 kW the building imports exactly
1 kWh per second, which makes integrated values easy to check against the time between readings.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from homeassistant.components.energy import data as energy_data
from homeassistant.components.energy.validate import async_validate
from homeassistant.components.recorder.statistics import async_list_statistic_ids
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, State, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_mock_restore_state_shutdown_restart,
    mock_restore_cache_with_extra_data,
)
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
    do_adhoc_statistics,
)

from custom_components.loadshed_ven import grid_energy
from custom_components.loadshed_ven.const import DOMAIN
from sim.building import SimBuilding

from .conftest import VEN_NAME, entry_data, start_entry, wait_for
from .test_platforms import attrs, entity_id, state_of

ONE_KWH_PER_SECOND = 3600.0


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(request: pytest.FixtureRequest) -> None:
    """As the suite's own, but a test with a recorder gets it before Home Assistant starts."""
    if "recorder_mock" in request.fixturenames:
        request.getfixturevalue("recorder_mock")
    request.getfixturevalue("enable_custom_integrations")


def _float32(value: float) -> float:
    rounded: float = struct.unpack(">f", struct.pack(">f", value))[0]
    return rounded


def _entry(building: SimBuilding, **data: Any) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title=VEN_NAME,
        data={**entry_data(building), **data},
        unique_id=f"{building.vtn.url.lower()}|{VEN_NAME}",
    )


def _kwh(hass: HomeAssistant, entity: str) -> float | None:
    state = state_of(hass, entity)
    return None if state in (STATE_UNKNOWN, STATE_UNAVAILABLE) else float(state)


class Recorded:
    """Every value the sensor showed, with when it was written."""

    def __init__(self) -> None:
        self.values: list[tuple[float, datetime]] = []

    @callback
    def __call__(self, event: Event[EventStateChangedData]) -> None:
        state = event.data["new_state"]
        if state is not None and state.state not in (STATE_UNKNOWN, STATE_UNAVAILABLE):
            self.values.append((float(state.state), state.last_updated))

    def count_after(self, index: int) -> Callable[[], bool]:
        return lambda: len(self.values) > index


async def _restart(hass: HomeAssistant, entry: MockConfigEntry, downtime: float) -> None:
    """Stop the entry as Home Assistant does, keep it down a while, and start it again."""
    assert await hass.config_entries.async_unload(entry.entry_id)
    await async_mock_restore_state_shutdown_restart(hass)
    await asyncio.sleep(downtime)
    await start_entry(hass, entry)


async def test_register_kwh_is_the_meters_own_count(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    entry = _entry(building, energy_register=19)
    entry.add_to_hass(hass)
    await start_entry(hass, entry)
    sensor = entity_id(hass, entry, "sensor", "grid_energy")
    assert attrs(hass, sensor) | {"friendly_name": None} == {
        "device_class": "energy",
        "state_class": "total_increasing",
        "unit_of_measurement": "kWh",
        "friendly_name": None,
    }
    seen = Recorded()
    entry.async_on_unload(async_track_state_change_event(hass, sensor, seen))

    async def frozen_count_is_shown() -> float:
        building.meter.set_base_kw(0.0)  # the count stands still from now on
        register = _float32(building.meter.energy_kwh())
        await wait_for(lambda: _kwh(hass, sensor) == pytest.approx(register, abs=1e-6))
        return register

    first = await frozen_count_is_shown()
    building.meter.set_base_kw(ONE_KWH_PER_SECOND)
    await wait_for(lambda: (_kwh(hass, sensor) or 0) > first + 1, what="counting on")

    # Home Assistant is down for a while; the meter counts on, and the sensor catches up.
    before = _kwh(hass, sensor)
    after = Recorded()
    unsub = async_track_state_change_event(hass, sensor, after)
    await _restart(hass, entry, downtime=1.0)
    assert after.values[0][0] >= (before or 0)  # restored, and at once what the meter counted
    assert await frozen_count_is_shown() > (before or 0) + 1
    unsub()
    values = [value for value, _ in seen.values + after.values]
    assert values == sorted(values)


async def test_unreadable_energy_register_makes_up_no_value(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    entry = _entry(building, energy_register=4000)  # the meter has no such register
    entry.add_to_hass(hass)
    await start_entry(hass, entry)
    sensor = entity_id(hass, entry, "sensor", "grid_energy")
    meter = entity_id(hass, entry, "sensor", "meter_power")
    await wait_for(lambda: state_of(hass, meter) == "850.0", what="the power")
    await asyncio.sleep(1.5)
    assert state_of(hass, sensor) == STATE_UNAVAILABLE  # no count yet: none is made up
    assert state_of(hass, meter) == "850.0"  # the power, which sheds rely on, is unaffected


async def test_integrated_power_over_a_run_with_a_restart(
    hass: HomeAssistant, building: SimBuilding, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 3 s gap limit (3 readings at 1 s) keeps the test short.
    monkeypatch.setattr(grid_energy, "MIN_GAP", grid_energy.MIN_GAP * 0)
    building.meter.set_base_kw(ONE_KWH_PER_SECOND)
    entry = _entry(building)  # no energy register: the power is integrated
    entry.add_to_hass(hass)
    await start_entry(hass, entry)
    sensor = entity_id(hass, entry, "sensor", "grid_energy")
    assert attrs(hass, sensor)["state_class"] == "total_increasing"
    seen = Recorded()
    entry.async_on_unload(async_track_state_change_event(hass, sensor, seen))
    await wait_for(seen.count_after(3), what="four readings")

    # Each step is the trapezoid between two readings: 1 kWh per second between them.
    for (old, old_at), (new, new_at) in zip(seen.values, seen.values[1:], strict=False):
        assert new - old == pytest.approx((new_at - old_at).total_seconds(), abs=0.01)

    # Failed readings (NaN) are a gap: nothing is integrated across them.
    building.meter.nan = True
    await asyncio.sleep(0.5)
    mark = len(seen.values)
    await asyncio.sleep(2.5)
    assert len(seen.values) == mark  # no change while the meter gives no value
    building.meter.nan = False
    await wait_for(seen.count_after(mark), what="integrating again")
    (last, last_at), (resumed, resumed_at) = seen.values[mark - 1], seen.values[mark]
    # Only the interval after the first good reading counts, not the 2.5 s without values.
    assert 0 < resumed - last < (resumed_at - last_at).total_seconds() - 2.0

    # A restart: the total is restored, the downtime (longer than the gap limit) is not
    # integrated, and counting continues from the restored total.
    before, before_at = seen.values[-1]
    after = Recorded()
    unsub = async_track_state_change_event(hass, sensor, after)
    await _restart(hass, entry, downtime=3.5)
    await wait_for(after.count_after(1), what="counting after the restart")
    unsub()
    assert after.values[0][0] == before  # restored first
    counted, counted_at = after.values[1]
    assert 0 < counted - before < (counted_at - before_at).total_seconds() - 3.5
    values = [value for value, _ in seen.values + after.values]
    assert values == sorted(values)


async def test_entity_meter_is_sampled_and_export_is_not_counted(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    power = "sensor.site_power"
    hass.states.async_set(power, "3600", {"unit_of_measurement": "kW", "device_class": "power"})
    entry = _entry(building, meter_source="entity", meter_entity=power)
    entry.add_to_hass(hass)
    await start_entry(hass, entry)
    sensor = entity_id(hass, entry, "sensor", "grid_energy")
    # The power sensor never changes, yet its held value is integrated at every interval.
    await wait_for(lambda: (_kwh(hass, sensor) or 0) > 2.0, what="sampling a steady sensor")

    hass.states.async_set(power, "-500", {"unit_of_measurement": "kW", "device_class": "power"})
    await asyncio.sleep(1.5)  # the step from import to export is counted up to zero
    exporting = _kwh(hass, sensor)
    await asyncio.sleep(2.2)
    assert _kwh(hass, sensor) == exporting  # export adds nothing


async def test_energy_dashboard_accepts_the_sensor(
    recorder_mock: Any, hass: HomeAssistant, building: SimBuilding
) -> None:
    entry = _entry(building)
    entry.add_to_hass(hass)
    await start_entry(hass, entry)
    sensor = entity_id(hass, entry, "sensor", "grid_energy")
    power = entity_id(hass, entry, "sensor", "meter_power")
    await wait_for(lambda: (_kwh(hass, sensor) or 0) > 0, what="energy")
    await async_wait_recording_done(hass)
    now = dt_util.utcnow()
    do_adhoc_statistics(
        hass, start=now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    )
    await async_wait_recording_done(hass)

    manager = await energy_data.async_get_manager(hass)

    async def issues_as_grid_source(stat: str) -> list[dict[str, Any]]:
        flow = {
            "stat_energy_from": stat,
            "stat_cost": None,
            "entity_energy_price": None,
            "number_energy_price": None,
        }
        source = {"type": "grid", "flow_from": [flow], "flow_to": [], "cost_adjustment_day": 0}
        await manager.async_update({"energy_sources": [source]})  # type: ignore[typeddict-item]
        result = (await async_validate(hass)).as_dict()
        return [issue for issues in result["energy_sources"] for issue in issues]

    assert await issues_as_grid_source(sensor) == []
    # The same check refuses the power sensor: it does find what is wrong.
    refused = await issues_as_grid_source(power)
    assert {issue["type"] for issue in refused} == {
        "entity_unexpected_device_class",
        "entity_state_class_measurement_no_last_reset",
    }

    # "Energy avoided" is a per-shed figure without statistics: never offered as a grid source.
    avoided = entity_id(hass, entry, "sensor", "energy_avoided")
    assert "state_class" not in attrs(hass, avoided)
    with_sums = {row["statistic_id"] for row in await async_list_statistic_ids(hass)}
    assert sensor in with_sums
    assert avoided not in with_sums


async def test_adding_an_energy_register_carries_the_total_on(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    entry = _entry(building, energy_register=19)
    entry.add_to_hass(hass)
    sensor = (
        er.async_get(hass)
        .async_get_or_create(
            "sensor",
            DOMAIN,
            f"{entry.entry_id}_grid_energy",
            suggested_object_id="site_grid_energy",
            config_entry=entry,
        )
        .entity_id
    )
    # Until now the power was integrated: 5 kWh so far.
    integrated = {"source": "power", "total_kwh": 5.0, "last_at": None, "last_kw": None}
    stored = {"native_value": 5.0, "native_unit_of_measurement": "kWh", "grid_energy": integrated}
    mock_restore_cache_with_extra_data(hass, [(State(sensor, "5.0"), stored)])
    building.meter.set_base_kw(ONE_KWH_PER_SECOND)
    seen = Recorded()
    unsub = async_track_state_change_event(hass, sensor, seen)
    await start_entry(hass, entry)
    await wait_for(seen.count_after(2), what="counting from the register")
    unsub()
    values = [value for value, _ in seen.values]
    # The register's 250,000 kWh is not a jump on the dashboard: its increases add to the total.
    assert values[0] == 5.0
    assert values == sorted(values)
    assert 6.0 < values[-1] < 50.0
