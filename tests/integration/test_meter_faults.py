"""A meter that answers nonsense: malformed replies and implausible readings, over real Modbus."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven.const import DOMAIN, LOGGER
from custom_components.loadshed_ven.data import LoadshedData
from sim.building import SimBuilding

from .conftest import VEN_NAME, entry_data, wait_for
from .test_platforms import entity_id, state_of

BASE_KW = 850.0


def _ours(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(LOGGER.name) and text in r.getMessage()]


async def test_meter_wrong_byte_count_logged_once(
    hass: HomeAssistant,
    building: SimBuilding,
    init_integration: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    data: LoadshedData = init_integration.runtime_data
    meter = entity_id(hass, init_integration, "sensor", "meter_power")
    await wait_for(lambda: state_of(hass, meter) != STATE_UNAVAILABLE, what="a first reading")

    building.meter.wrong_byte_count = True
    await wait_for(lambda: state_of(hass, meter) == STATE_UNAVAILABLE, what="meter unavailable")
    await asyncio.sleep(3.5)  # three more polls (every second), each answered malformed
    assert state_of(hass, meter) == STATE_UNAVAILABLE
    assert data.meter.latest_kw is None
    assert "malformed reply" in str(data.meter.last_exception)
    logged = _ours(caplog, "malformed reply")
    assert len(logged) == 1
    assert logged[0].levelno == logging.ERROR
    # pymodbus' failure stays inside the adapter: no asyncio "Fatal error" traceback.
    assert "Fatal error" not in caplog.text
    assert "Traceback" not in caplog.text

    building.meter.wrong_byte_count = False
    await wait_for(lambda: state_of(hass, meter) != STATE_UNAVAILABLE, what="meter back")
    assert float(state_of(hass, meter)) == pytest.approx(BASE_KW)
    await asyncio.sleep(2.5)
    assert len(_ours(caplog, "meter data recovered")) == 1
    assert len(_ours(caplog, "malformed reply")) == 1


async def test_meter_refuses_implausible_reading(
    hass: HomeAssistant,
    building: SimBuilding,
    init_integration: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    data: LoadshedData = init_integration.runtime_data
    meter = entity_id(hass, init_integration, "sensor", "meter_power")
    await wait_for(lambda: bool(building.vtn.reports), timeout=20, what="a first report")

    building.meter.implausible = True
    await wait_for(lambda: state_of(hass, meter) == STATE_UNAVAILABLE, what="meter unavailable")
    lost_at = datetime.now(UTC)
    await asyncio.sleep(4.5)  # polls every second, report samples every 2 s
    assert data.meter.latest_kw is None
    logged = _ours(caplog, "not a finite number within the plausible maximum")
    assert len(logged) == 1
    message = logged[0].getMessage()
    assert "1e+30 kW" in message
    assert "100000 kW" in message

    back_at = datetime.now(UTC)
    building.meter.implausible = False
    await wait_for(lambda: state_of(hass, meter) != STATE_UNAVAILABLE, what="meter back")
    assert float(state_of(hass, meter)) == pytest.approx(BASE_KW)
    # Nothing implausible reached the VTN, and nothing was made up for the gap.
    assert all(abs(r.value) < 1e9 for r in building.vtn.reports)
    assert not [r for r in building.vtn.reports if lost_at < r.dtstart < back_at]
    assert len(_ours(caplog, "meter data recovered")) == 1


async def _entity_meter_entry(
    hass: HomeAssistant, building: SimBuilding, **data: object
) -> tuple[MockConfigEntry, str]:
    """An entry whose meter is ``sensor.main_power`` (now 640 kW), set up; and its meter sensor."""
    hass.states.async_set("sensor.main_power", "640", {"unit_of_measurement": "kW"})
    entry_values = {
        **entry_data(building),
        "meter_source": "entity",
        "meter_entity": "sensor.main_power",
        **data,
    }
    entry = MockConfigEntry(domain=DOMAIN, title=VEN_NAME, data=entry_values)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    meter = entity_id(hass, entry, "sensor", "meter_power")
    assert float(state_of(hass, meter)) == 640.0
    return entry, meter


async def test_entity_meter_refuses_implausible_reading(
    hass: HomeAssistant, building: SimBuilding, caplog: pytest.LogCaptureFixture
) -> None:
    entry, meter = await _entity_meter_entry(hass, building, max_kw=1000.0)

    hass.states.async_set("sensor.main_power", "1.5", {"unit_of_measurement": "MW"})
    await wait_for(lambda: state_of(hass, meter) == STATE_UNAVAILABLE, what="meter unavailable")
    message = str(entry.runtime_data.meter.last_exception)
    assert "1500 kW" in message
    assert "1000 kW" in message
    hass.states.async_set("sensor.main_power", "0.9", {"unit_of_measurement": "MW"})
    await wait_for(lambda: state_of(hass, meter) != STATE_UNAVAILABLE, what="meter back")
    assert float(state_of(hass, meter)) == pytest.approx(900.0)
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_entity_meter_follows_its_source_without_polling(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    """A meter taken from another entity changes with it at once, not at the next poll."""
    entry, meter = await _entity_meter_entry(
        hass,
        building,
        meter_interval=3600,  # a poll would come an hour later
    )
    loaded: LoadshedData = entry.runtime_data
    assert loaded.meter.update_interval is None  # nothing polls it

    hass.states.async_set("sensor.main_power", "700", {"unit_of_measurement": "W"})
    await hass.async_block_till_done()
    assert float(state_of(hass, meter)) == pytest.approx(0.7)
    assert loaded.meter.latest_kw == pytest.approx(0.7)
    hass.states.async_set("sensor.main_power", "unavailable")
    await hass.async_block_till_done()
    assert state_of(hass, meter) == STATE_UNAVAILABLE
    assert loaded.meter.latest_kw is None  # nothing is reported for the gap
    hass.states.async_set("sensor.main_power", "0.5", {"unit_of_measurement": "MW"})
    await hass.async_block_till_done()
    assert float(state_of(hass, meter)) == 500.0
    assert await hass.config_entries.async_unload(entry.entry_id)
