"""The override ledger against the simulated building: restarts, offline devices, foreign values.

Every assertion about the building reads the simulated controllers' priority arrays; every
assertion about the ledger reads what Home Assistant's Store holds (``hass_storage``).
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven import override_ledger
from custom_components.loadshed_ven.engine import ledger_records as ledger
from custom_components.loadshed_ven.engine.overrides import PointState, PointStatus
from custom_components.loadshed_ven.engine.points import OverridePoint, PointValue
from custom_components.loadshed_ven.override_ledger import storage_key
from sim.building import SimBuilding

from .conftest import (
    ALL_DEVICES,
    IP_DEVICES,
    OPENADR_VERSIONS,
    SETPOINT,
    SHED_ENABLE,
    ledger_records,
    setpoints,
    slot,
    start_entry,
    wait_for,
)

FAN_STAGE = "multi-state-value,1"  # present in every simulated controller, never configured


# Retries in seconds, not minutes, and a silent controller given up after 1 s.
pytestmark = pytest.mark.usefixtures("quick_recovery")


@pytest.fixture
def entry(added_entry: MockConfigEntry) -> MockConfigEntry:
    """The entry, added but not set up (the shared fixture under a shorter name)."""
    return added_entry


def _seed(
    hass_storage: dict[str, Any], entry: MockConfigEntry, *records: tuple[OverridePoint, PointValue]
) -> None:
    """Put a ledger on disk as an earlier run would have left it."""
    states = [
        PointState(
            point=point,
            status=PointStatus.HELD,
            written_value=value,
            event_id="earlier-event",
            written_at=datetime.now(UTC) - timedelta(hours=1),
        )
        for point, value in records
    ]
    hass_storage[storage_key(entry.entry_id)] = {
        "version": override_ledger.STORAGE_VERSION,
        "data": ledger.dump(states),
    }


def _point(address: str, obj: str, priority: int, value: PointValue) -> OverridePoint:
    object_type, instance = obj.split(",")
    return OverridePoint(
        address=address,
        object_type=object_type,
        instance=int(instance),
        priority=priority,
        values=(value, value, value),
    )


@OPENADR_VERSIONS
async def test_restart_mid_event_releases_when_the_event_ended_meanwhile(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    entry: MockConfigEntry,
) -> None:
    """Home Assistant dies mid-event; the event ends while it is down; the next start releases.

    A crash is simulated by what it leaves behind, in the two places that outlive Home
    Assistant: the ledger file and the controllers. The ledger is copied from the Store while
    the building is shed (exactly what is on disk at that moment, intents included); the entry
    is then stopped (its release cannot be suppressed honestly), and both the copied ledger and
    the building's overrides are put back as they were at the moment of the "crash". The event
    is cancelled on the VTN while the entry is down, and the entry is started again.
    """
    await start_entry(hass, entry)
    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: setpoints(building) == [78.0] * 4, what="shed")
    assert slot(building, IP_DEVICES[0], SHED_ENABLE, 12) == "active"
    await wait_for(
        lambda: [r["status"] for r in ledger_records(hass_storage, entry)] == ["held"] * 5,
        what="the pass saved",
    )
    on_disk = copy.deepcopy(hass_storage[storage_key(entry.entry_id)])
    records = on_disk["data"]["records"]
    held = [(r["point"], r["written_value"]) for r in records]

    assert await hass.config_entries.async_unload(entry.entry_id)
    assert setpoints(building) == [None] * 4
    assert ledger_records(hass_storage, entry) == []  # a clean stop leaves an empty ledger
    # What a crash would have left:
    hass_storage[storage_key(entry.entry_id)] = on_disk
    for point, value in held:
        device = building.bacnet.device(point["address"])
        device.write_local(f"{point['object_type']},{point['instance']}", value, point["priority"])
    assert setpoints(building) == [78.0] * 4
    building.vtn.cancel_event(event_id)  # the event ends while Home Assistant is down

    data = await start_entry(hass, entry)
    assert setpoints(building) == [None] * 4
    assert slot(building, IP_DEVICES[0], SHED_ENABLE, 12) is None
    assert ledger_records(hass_storage, entry) == []
    assert not data.shedding


async def test_device_offline_during_release_is_retried_until_released(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    entry: MockConfigEntry,
) -> None:
    """The event ends while one controller is offline: its point stays tracked and is released
    by the retries once the controller answers again."""
    data = await start_entry(hass, entry)
    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: setpoints(building) == [78.0] * 4, what="shed")
    offline = building.bacnet.device(IP_DEVICES[1])
    offline.offline = True
    building.vtn.cancel_event(event_id)
    key = f"{IP_DEVICES[1]}/analog-value,302"
    await wait_for(
        lambda: data.controller.state(key).status is PointStatus.FAILED,
        what="the release to fail",
    )
    await wait_for(
        lambda: [r["key"] for r in ledger_records(hass_storage, entry)] == [key],
        what="only the failed point left in the ledger",
    )
    assert slot(building, IP_DEVICES[1], SETPOINT, 10) == 78.0
    assert [slot(building, a, SETPOINT, 10) for a in ALL_DEVICES if a != IP_DEVICES[1]] == [
        None
    ] * 3

    offline.offline = False
    await wait_for(lambda: slot(building, IP_DEVICES[1], SETPOINT, 10) is None, what="retry")
    await wait_for(lambda: ledger_records(hass_storage, entry) == [], what="ledger emptied")
    assert data.controller.state(key).status is PointStatus.RELEASED


async def test_foreign_value_in_our_slot_is_left_alone_and_reported(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The ledger says we wrote 78 but the slot now holds 75: someone else wrote it."""
    address = IP_DEVICES[2]
    _seed(hass_storage, entry, (_point(address, SETPOINT, 10, 78.0), 78.0))
    building.bacnet.device(address).write_local(SETPOINT, 75.0, 10)
    with caplog.at_level(logging.INFO):
        await start_entry(hass, entry)
    assert slot(building, address, SETPOINT, 10) == 75.0
    assert "left alone" in caplog.text
    assert f"{address}/analog-value,302" in caplog.text
    assert ledger_records(hass_storage, entry) == []  # not ours: no longer tracked


async def test_points_no_longer_configured_are_released(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    entry: MockConfigEntry,
) -> None:
    """Records of points a reconfiguration removed (another object, or the same object at
    another priority) are released when our value is there, and only then."""
    fan = building.bacnet.device(IP_DEVICES[2])
    moved = building.bacnet.device(IP_DEVICES[1])
    fan.write_local(FAN_STAGE, 3, 10)
    moved.write_local(SETPOINT, 80.0, 9)
    moved.write_local(SETPOINT, 79.0, 11)  # someone else's value at a priority we also used
    _seed(
        hass_storage,
        entry,
        (_point(IP_DEVICES[2], FAN_STAGE, 10, 3), 3),
        (_point(IP_DEVICES[1], SETPOINT, 9, 80.0), 80.0),
        (_point(IP_DEVICES[1], SETPOINT, 11, 80.0), 80.0),
        (_point(IP_DEVICES[0], FAN_STAGE, 10, 2), 2),  # already NULL: forgotten
    )
    await start_entry(hass, entry)
    assert building.bacnet.device(IP_DEVICES[2]).priority_array(FAN_STAGE)[9] is None
    assert moved.priority_array(SETPOINT)[8] is None
    assert moved.priority_array(SETPOINT)[10] == 79.0
    assert moved.priority_array(SETPOINT)[9] is None  # the configured slot was never touched
    assert ledger_records(hass_storage, entry) == []


async def test_unconfigured_point_on_an_offline_device_is_released_when_it_answers(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    entry: MockConfigEntry,
) -> None:
    """At start the controller does not answer: the record stays, is re-read, then released."""
    device = building.bacnet.device(IP_DEVICES[2])
    device.write_local(FAN_STAGE, 3, 10)
    _seed(hass_storage, entry, (_point(IP_DEVICES[2], FAN_STAGE, 10, 3), 3))
    device.offline = True
    data = await start_entry(hass, entry)
    assert [s.point.key for s in data.ledger.pending] == [f"{IP_DEVICES[2]}/{FAN_STAGE}"]
    assert [r["key"] for r in ledger_records(hass_storage, entry)] == [
        f"{IP_DEVICES[2]}/{FAN_STAGE}"
    ]
    assert device.priority_array(FAN_STAGE)[9] == 3
    device.offline = False
    await wait_for(lambda: device.priority_array(FAN_STAGE)[9] is None, what="retry release")
    await wait_for(lambda: ledger_records(hass_storage, entry) == [], what="ledger emptied")
    assert data.ledger.pending == []


async def test_refused_writes_are_retried_only_at_the_cap(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    entry: MockConfigEntry,
) -> None:
    """A controller that refuses the write is not asked again at the short intervals."""
    data = await start_entry(hass, entry)
    device = building.bacnet.device(IP_DEVICES[2])
    device.deny_writes(SETPOINT)
    building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    key = f"{IP_DEVICES[2]}/analog-value,302"
    await wait_for(lambda: data.controller.state(key).status is PointStatus.FAILED, what="refusal")
    await wait_for(lambda: data.ledger.retry_delay is not None, what="retry armed")
    assert data.ledger.retry_delay == override_ledger.RETRY_CAP_SECONDS
    assert [r["key"] for r in ledger_records(hass_storage, entry) if r["status"] == "failed"] == [
        key
    ]
    assert slot(building, IP_DEVICES[2], SETPOINT, 10) is None
    device.allow_writes(SETPOINT)
    await wait_for(lambda: slot(building, IP_DEVICES[2], SETPOINT, 10) == 78.0, what="retry")
    await wait_for(lambda: data.ledger.retry_delay is None, what="nothing left to retry")
