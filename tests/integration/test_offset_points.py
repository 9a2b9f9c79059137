"""Offset points against the simulated building: +2 from the setpoint in force, never twice.

Every simulated zone setpoint relinquishes to 72 °F. The first controller's setpoint is shed by
an offset (+2/+4/+6) and the second one's to an absolute 78 °F; the slots are read from the
simulated controllers, the recorded base from what Home Assistant's Store holds.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven.bacnet import BacnetOverrideWriter
from custom_components.loadshed_ven.engine.overrides import FailureKind, PointStatus
from sim.building import SimBuilding

from . import conftest
from .conftest import (
    IP_DEVICES,
    SETPOINT,
    crash_entry,
    ledger_records,
    point_key,
    slot,
    start_entry,
    wait_for,
)

OFFSET_DEVICE, ABSOLUTE_DEVICE = IP_DEVICES[0], IP_DEVICES[1]
KEY = point_key(OFFSET_DEVICE)

pytestmark = pytest.mark.usefixtures("quick_recovery")


def _points() -> list[dict[str, Any]]:
    return [
        {
            "address": OFFSET_DEVICE,
            "object_type": "analog-value",
            "instance": 302,
            "priority": 10,
            "values": [2.0, 4.0, 6.0],
            "name": "Zone setpoint (offset)",
            "offset": True,
            "max": 85.0,
        },
        {
            "address": ABSOLUTE_DEVICE,
            "object_type": "analog-value",
            "instance": 302,
            "priority": 10,
            "values": [78.0, 80.0, 82.0],
            "name": "Zone setpoint (absolute)",
        },
    ]


@pytest.fixture
def mock_config_entry(building: SimBuilding, monkeypatch: pytest.MonkeyPatch) -> MockConfigEntry:
    """The shared entry, configured with one offset point and one absolute point."""
    monkeypatch.setattr(conftest, "point_dicts", _points)
    return MockConfigEntry(
        domain=conftest.DOMAIN,
        title=conftest.VEN_NAME,
        data=conftest.entry_data(building),
        unique_id=f"{building.vtn.url.lower()}|{conftest.VEN_NAME}",
    )


def _shed(building: SimBuilding) -> list[object]:
    return [slot(building, address, SETPOINT, 10) for address in (OFFSET_DEVICE, ABSOLUTE_DEVICE)]


def _bases(hass_storage: dict[str, Any], entry: MockConfigEntry) -> dict[str, object]:
    return {r["key"]: r.get("base_value") for r in ledger_records(hass_storage, entry)}


async def test_offset_point_sheds_from_the_value_in_force_and_releases(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    added_entry: MockConfigEntry,
) -> None:
    """72 in force: priority 10 holds 74 at level 1; the release writes NULL and forgets 72."""
    data = await start_entry(hass, added_entry)
    assert building.bacnet.device(OFFSET_DEVICE).present_value(SETPOINT) == 72.0
    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: _shed(building) == [74.0, 78.0], what="shed")
    await wait_for(
        lambda: _bases(hass_storage, added_entry) == {KEY: 72.0, point_key(ABSOLUTE_DEVICE): None},
        what="the base recorded in the ledger",
    )
    assert data.controller.state(KEY).base_value == 72.0

    building.vtn.cancel_event(event_id)
    await wait_for(lambda: _shed(building) == [None, None], what="release")
    await wait_for(lambda: ledger_records(hass_storage, added_entry) == [], what="ledger emptied")
    assert data.controller.state(KEY).base_value is None


@pytest.mark.parametrize("offline_at_start", [False, True])
async def test_restart_mid_event_never_adds_the_offset_twice(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    added_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
    *,
    offline_at_start: bool,
) -> None:
    """Home Assistant dies while 74 is in force; after the restart the slot holds 74, not 76.

    Online, the restart releases and the re-delivered event sheds from 72 again. With the
    controller silent at the start, the record is kept with its base: once the controller
    answers, the level is written from the recorded 72, not from the 74 in force.
    """
    entry = added_entry
    await start_entry(hass, entry)
    building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: _shed(building) == [74.0, 78.0], what="shed")
    await wait_for(
        lambda: [r["status"] for r in ledger_records(hass_storage, entry)] == ["held"] * 2,
        what="the pass saved",
    )
    await crash_entry(hass, entry, monkeypatch)
    device = building.bacnet.device(OFFSET_DEVICE)
    assert (slot(building, OFFSET_DEVICE, SETPOINT, 10), device.present_value(SETPOINT)) == (
        74.0,
        74.0,
    )

    device.offline = offline_at_start
    data = await start_entry(hass, entry)
    if offline_at_start:
        await wait_for(lambda: data.controller.state(KEY).status is PointStatus.FAILED, what="kept")
        assert data.controller.state(KEY).base_value == 72.0
        assert _bases(hass_storage, entry)[KEY] == 72.0
        device.offline = False
    await wait_for(lambda: data.controller.state(KEY).status is PointStatus.HELD, what="shed again")
    assert _shed(building) == [74.0, 78.0]
    state = data.controller.state(KEY)
    assert (state.written_value, state.base_value) == (74.0, 72.0)


async def test_unreadable_value_in_force_writes_nothing_until_it_is_read(
    hass: HomeAssistant,
    building: SimBuilding,
    added_entry: MockConfigEntry,
) -> None:
    """A silent controller at the shed's start: no base, so no write; the retry reads it."""
    data = await start_entry(hass, added_entry)
    device = building.bacnet.device(OFFSET_DEVICE)
    device.offline = True
    building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: data.controller.state(KEY).failure is not None, what="refusal")
    state = data.controller.state(KEY)
    assert state.failure is FailureKind.OFFLINE
    assert "the value in force could not be read" in str(state.detail)
    assert (state.holds_override, state.base_value) == (False, None)
    device.offline = False
    await wait_for(lambda: _shed(building) == [74.0, 78.0], what="retry")
    assert data.controller.state(KEY).base_value == 72.0


async def test_reading_the_value_in_force(
    hass: HomeAssistant,
    building: SimBuilding,
    added_entry: MockConfigEntry,
) -> None:
    """The present value comes with our slot and its owner; a missing object says so."""
    data = await start_entry(hass, added_entry)
    writer = BacnetOverrideWriter(data.bacnet.stack)
    point = data.controller.state(KEY).point
    building.bacnet.device(OFFSET_DEVICE).write_local(SETPOINT, 70.0, 8)
    reading = await writer.read_present_value(point)
    assert (reading.ok, reading.present_value, reading.slot_value, reading.owner_priority) == (
        True,
        70.0,
        None,
        8,
    )
    missing = await writer.read_present_value(replace(point, instance=999))
    assert (missing.ok, missing.failure) == (False, FailureKind.UNKNOWN_OBJECT)
