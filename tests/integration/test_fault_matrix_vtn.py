"""The fault matrix, faults at the VTN and restarts: Home Assistant down or killed mid-event, the
VTN down at start or dying mid-event, a cancel while Home Assistant is down, an event modified
while its shed is in flight.

One test per fault, against the simulated building. Each ends by reading the simulated
controllers' priority arrays: whatever happened, no slot may keep a value of ours once the
event is over. Only time is compressed (short events, retries after 0.5 s instead of 10 s,
a silent controller given up after 1 s); every peer is the real simulated one.

Where a fault needs an operator's attention, the repair issue it raises (and clears once the
fault is gone) is asserted too.
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.loadshed_ven.bus_events import EVENT_MODIFIED
from custom_components.loadshed_ven.const import DEFAULT_VTN_OUTAGE_MINUTES
from custom_components.loadshed_ven.data import LoadshedData
from custom_components.loadshed_ven.engine.overrides import PointStatus
from custom_components.loadshed_ven.openadr import ven as ven_module
from sim.building import SimBuilding

from .conftest import (
    IP_DEVICES,
    OPENADR_VERSIONS,
    RELEASED,
    SETPOINT,
    SHED,
    SHED_ENABLE,
    crash_entry,
    ledger_records,
    point_key,
    setpoints,
    slot,
    start_entry,
    wait_for,
)
from .fault_helpers import (
    entity_of,
    event_end,
    nothing_of_ours_left,
    repair_issue,
    shed_verified,
    stuck_issue,
    vtn_heard,
)


@OPENADR_VERSIONS
@pytest.mark.usefixtures("quick_recovery")
async def test_fault_01_restart_mid_event_event_ends_while_down(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    added_entry: MockConfigEntry,
) -> None:
    """HA restarts mid-event; the event ends while HA is down -> released on start."""
    entry = added_entry
    data = await start_entry(hass, entry)
    event_id = building.vtn.add_event(level=1, duration=timedelta(seconds=8))
    await shed_verified(building, data)

    # Home Assistant stops while one controller is unreachable: that release cannot land.
    unreachable = building.bacnet.device(IP_DEVICES[1])
    unreachable.offline = True
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert setpoints(building) == [None, 78.0, None, None]
    assert [r["key"] for r in ledger_records(hass_storage, entry)] == [point_key(IP_DEVICES[1])]
    assert stuck_issue(hass, entry) is not None  # in view while HA is down
    unreachable.offline = False
    end = event_end(building, event_id)
    await wait_for(lambda: datetime.now(UTC) >= end, what="the event's end, while HA is down")

    data = await start_entry(hass, entry)
    nothing_of_ours_left(building)
    assert ledger_records(hass_storage, entry) == []
    assert stuck_issue(hass, entry) is None
    await vtn_heard(data)  # the ended event is not acted on again
    nothing_of_ours_left(building)
    assert not data.shedding


@OPENADR_VERSIONS
@pytest.mark.usefixtures("quick_recovery")
async def test_fault_02_runtime_dies_without_unload_then_starts_after_the_event(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    added_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The runtime dies without unload mid-event (no clean shutdown), HA starts again after
    the event -> reconciled."""
    entry = added_entry
    await start_entry(hass, entry)
    event_id = building.vtn.add_event(level=2, duration=timedelta(seconds=6))
    await wait_for(lambda: setpoints(building) == [80.0] * 4, what="shed")
    await wait_for(
        lambda: [r["status"] for r in ledger_records(hass_storage, entry)] == ["held"] * 5,
        what="the pass saved",
    )

    await crash_entry(hass, entry, monkeypatch)
    assert setpoints(building) == [80.0] * 4  # a dead process releases nothing
    assert slot(building, IP_DEVICES[0], SHED_ENABLE, 12) == "active"
    end = event_end(building, event_id)
    await wait_for(lambda: datetime.now(UTC) >= end, what="the event's end, while HA is down")

    data = await start_entry(hass, entry)
    nothing_of_ours_left(building)
    assert ledger_records(hass_storage, entry) == []
    await vtn_heard(data)
    nothing_of_ours_left(building)
    assert not data.shedding


async def test_fault_07_vtn_down_at_start_registration_retried(
    hass: HomeAssistant,
    building: SimBuilding,
    added_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The VTN is down when HA starts -> registration retried, event acted on once it is up."""
    # Registration retries after 0.3 s doubling to 1 s instead of 5 s doubling to 5 min.
    monkeypatch.setattr(
        ven_module, "Backoff", functools.partial(ven_module.Backoff, initial=0.3, maximum=1.0)
    )
    entry = added_entry
    await building.vtn.stop()
    started = time.monotonic()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED  # a VTN outage does not block the building
    assert time.monotonic() - started < 10
    data: LoadshedData = entry.runtime_data
    await wait_for(lambda: data.ven.attempts >= 3, what="registration retried")
    assert not data.connected
    assert hass.states.get(entity_of(hass, entry, "binary_sensor", "vtn_connected")).state in (
        STATE_OFF,
        STATE_UNAVAILABLE,
    )
    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    # An outage shorter than the configured minutes raises nothing.
    assert repair_issue(hass, "vtn_unreachable", entry) is None

    await building.vtn.start()
    await wait_for(lambda: data.connected, what="registered once the VTN is up")
    await wait_for(lambda: setpoints(building) == SHED, what="the event acted on")
    assert repair_issue(hass, "vtn_unreachable", entry) is None

    building.vtn.cancel_event(event_id)
    await wait_for(lambda: setpoints(building) == RELEASED, what="release at the end")
    nothing_of_ours_left(building)


@pytest.mark.usefixtures("quick_recovery")
async def test_fault_08_vtn_dies_mid_event_event_ends_on_time(
    hass: HomeAssistant,
    building: SimBuilding,
    added_entry: MockConfigEntry,
) -> None:
    """The VTN dies mid-event -> event still ends on time."""
    entry = added_entry
    data = await start_entry(hass, entry)
    event_id = building.vtn.add_event(level=1, duration=timedelta(seconds=6))
    end = event_end(building, event_id)
    await shed_verified(building, data)

    await building.vtn.stop()
    await wait_for(lambda: not data.connected, what="the VEN to notice the outage")
    assert setpoints(building) == SHED  # an outage alone ends nothing
    await wait_for(lambda: setpoints(building) == RELEASED, timeout=15, what="release at end")
    released_at = datetime.now(UTC)
    assert end <= released_at <= end + timedelta(seconds=4)
    nothing_of_ours_left(building)
    await wait_for(lambda: not data.shedding, what="the pass to finish")

    assert repair_issue(hass, "vtn_unreachable", entry) is None  # not before the outage minutes
    later = dt_util.utcnow() + timedelta(minutes=DEFAULT_VTN_OUTAGE_MINUTES + 1)
    async_fire_time_changed(hass, later)
    await hass.async_block_till_done()
    assert repair_issue(hass, "vtn_unreachable", entry) is not None
    await building.vtn.start()
    await wait_for(lambda: data.connected, what="the VTN back")
    await wait_for(lambda: repair_issue(hass, "vtn_unreachable", entry) is None, what="cleared")
    nothing_of_ours_left(building)


@pytest.mark.usefixtures("quick_recovery")
async def test_fault_09_vtn_cancels_while_ha_is_down(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    added_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The VTN cancels while HA is down -> implied cancel on return releases."""
    entry = added_entry
    await start_entry(hass, entry)
    # Both ways a VTN ends an event behind a VEN's back: it cancels it (the returning VEN is
    # served it as cancelled), or it stops serving it (missing from the list: implied cancel).
    # Each time Home Assistant went down without releasing anything.
    for level, cancelled in ((3, True), (2, False)):
        event_id = building.vtn.add_event(level=level, duration=timedelta(minutes=30))
        value = 78.0 + 2 * (level - 1)
        await wait_for(lambda v=value: setpoints(building) == [v] * 4, what="shed")
        await wait_for(
            lambda: [r["status"] for r in ledger_records(hass_storage, entry)] == ["held"] * 5,
            what="the pass saved",
        )
        await crash_entry(hass, entry, monkeypatch)  # down without releasing anything
        assert setpoints(building) == [value] * 4
        if cancelled:
            building.vtn.cancel_event(event_id)
        else:
            building.vtn.remove_event(event_id)

        data = await start_entry(hass, entry)
        nothing_of_ours_left(building)
        assert ledger_records(hass_storage, entry) == []
        await vtn_heard(data)  # the withdrawn event is never shed again
        nothing_of_ours_left(building)
        assert not data.shedding
        view = data.current_event()
        if cancelled:
            assert view is not None
            assert (view.event_id, view.status) == (event_id, "cancelled")
        else:
            assert view is None  # never heard of again


async def test_fault_12_event_modified_while_a_shed_is_in_flight(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    added_entry: MockConfigEntry,
) -> None:
    """The event is modified while a shed is in flight -> ends in the new plan's state, no
    orphan."""
    entry = added_entry
    data = await start_entry(hass, entry)
    in_flight_when_modified: list[bool] = []

    def pending() -> bool:
        return any(s.status is PointStatus.PENDING for s in data.point_states())

    hass.bus.async_listen(EVENT_MODIFIED, lambda _: in_flight_when_modified.append(pending()))
    for device in building.bacnet.devices:
        device.latency = 1.5  # every request takes 1.5 s: one pass takes about 3 s
    try:
        event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
        await wait_for(pending, what="the level 1 writes in flight")
        building.vtn.modify_event(event_id, level=3)
        await wait_for(lambda: setpoints(building) == [82.0] * 4, timeout=20, what="level 3")
        await wait_for(lambda: not pending(), what="the level 3 pass to finish")
        assert in_flight_when_modified == [True]
        for device in building.bacnet.devices:
            array = device.priority_array(SETPOINT)
            assert array.count(None) == 15  # only our slot, only the new value
        assert slot(building, IP_DEVICES[0], SHED_ENABLE, 12) == "active"

        # Moved to tomorrow while the level 2 rewrite is in flight: nothing may stay written.
        building.vtn.modify_event(event_id, level=2)
        await wait_for(lambda: len(in_flight_when_modified) == 2, what="level 2 received")
        await wait_for(pending, what="the level 2 rewrite in flight")
        building.vtn.modify_event(event_id, start=datetime.now(UTC) + timedelta(days=1))
        await wait_for(lambda: len(in_flight_when_modified) == 3, what="the move received")
        assert in_flight_when_modified[2]
        await wait_for(lambda: not pending() and not data.shedding, timeout=20, what="settled")
        nothing_of_ours_left(building)
        for device in building.bacnet.devices:
            assert device.priority_array(SETPOINT) == [None] * 16
        await wait_for(lambda: ledger_records(hass_storage, entry) == [], what="ledger emptied")
        view = data.current_event()
        assert view is not None
        assert view.status == "scheduled"
    finally:
        for device in building.bacnet.devices:
            device.latency = 0.0
