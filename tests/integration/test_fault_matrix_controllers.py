"""The fault matrix, faults in the building: controllers offline during the shed or the release,
a refused write, another writer at a higher priority, a silent meter, a taken BACnet port.

One test per fault, against the simulated building. Each ends by reading the simulated
controllers' priority arrays: whatever happened, no slot may keep a value of ours once the
event is over. Only time is compressed (short events, retries after 0.5 s instead of 10 s,
a silent controller given up after 1 s); every peer is the real simulated one.

Where a fault needs an operator's attention, the repair issue it raises (and clears once the
fault is gone) is asserted too.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import Event, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven import override_ledger
from custom_components.loadshed_ven.bus_events import EVENT_POINT_FAILED
from custom_components.loadshed_ven.const import DOMAIN
from custom_components.loadshed_ven.engine.overrides import FailureKind, PointStatus
from sim.building import SimBuilding

from .conftest import (
    BASE_IP,
    IP_DEVICES,
    RELEASED,
    SETPOINT,
    SHED,
    VEN_NAME,
    entry_data,
    ledger_records,
    point_key,
    setpoints,
    slot,
    start_entry,
    start_vtn_flow,
    wait_for,
)
from .fault_helpers import entity_of, nothing_of_ours_left, shed_verified, stuck_issue


@pytest.mark.usefixtures("quick_recovery")
async def test_fault_03_device_offline_during_the_shed_is_written_when_back(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    added_entry: MockConfigEntry,
) -> None:
    """A device is offline during the shed, back later mid-event -> written when back."""
    entry = added_entry
    data = await start_entry(hass, entry)
    device = building.bacnet.device(IP_DEVICES[2])
    device.offline = True
    key = point_key(IP_DEVICES[2])
    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(
        lambda: data.controller.state(key).failure is FailureKind.OFFLINE,
        what="the write to fail",
    )
    assert setpoints(building) == [78.0, 78.0, None, 78.0]
    # The intent stays on disk: a write that may land later is never forgotten.
    assert key in [r["key"] for r in ledger_records(hass_storage, entry)]
    await wait_for(lambda: stuck_issue(hass, entry) is not None, what="repair")

    device.offline = False
    await wait_for(lambda: slot(building, IP_DEVICES[2], SETPOINT, 10) == 78.0, what="retry")
    await wait_for(lambda: data.controller.state(key).status is PointStatus.HELD, what="held")
    await wait_for(lambda: stuck_issue(hass, entry) is None, what="repair cleared")

    building.vtn.cancel_event(event_id)
    await wait_for(lambda: setpoints(building) == RELEASED, what="release at the end")
    nothing_of_ours_left(building)
    await wait_for(lambda: ledger_records(hass_storage, entry) == [], what="ledger emptied")


@pytest.mark.usefixtures("quick_recovery")
async def test_fault_04_device_offline_during_the_release_is_released_when_back(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    added_entry: MockConfigEntry,
) -> None:
    """A device is offline during the release -> retried, released when back, repair raised
    then cleared."""
    entry = added_entry
    data = await start_entry(hass, entry)
    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await shed_verified(building, data)
    assert stuck_issue(hass, entry) is None

    device = building.bacnet.device(IP_DEVICES[1])
    device.offline = True
    key = point_key(IP_DEVICES[1])
    building.vtn.cancel_event(event_id)
    await wait_for(
        lambda: data.controller.state(key).status is PointStatus.FAILED,
        what="the release to fail",
    )
    assert setpoints(building) == [None, 78.0, None, None]
    await wait_for(
        lambda: [r["key"] for r in ledger_records(hass_storage, entry)] == [key],
        what="only the unreleased point left in the ledger",
    )
    await wait_for(lambda: data.ledger.retry_delay is not None, what="a retry armed")
    await wait_for(lambda: stuck_issue(hass, entry) is not None, what="repair")

    device.offline = False
    await wait_for(lambda: setpoints(building) == RELEASED, what="released by a retry")
    await wait_for(lambda: ledger_records(hass_storage, entry) == [], what="ledger emptied")
    assert data.controller.state(key).status is PointStatus.RELEASED
    await wait_for(lambda: stuck_issue(hass, entry) is None, what="repair cleared")
    nothing_of_ours_left(building)


async def test_fault_05_write_access_denied_is_reported_without_a_retry_storm(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    added_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An object answers write-access-denied -> reported, no retry storm."""
    # Short backoff, long cap: a storm would show as attempts every fraction of a second.
    cap = 3.0
    monkeypatch.setattr(override_ledger, "RETRY_INITIAL_SECONDS", 0.2)
    monkeypatch.setattr(override_ledger, "RETRY_CAP_SECONDS", cap)
    entry = added_entry
    data = await start_entry(hass, entry)
    device = building.bacnet.device(IP_DEVICES[2])
    device.deny_writes(SETPOINT)
    attempts: list[float] = []
    target = device.point(SETPOINT)
    handle = type(target).write_property

    async def counted(self: Any, *args: Any, **kwargs: Any) -> None:
        if self is target:
            attempts.append(time.monotonic())
        await handle(self, *args, **kwargs)

    monkeypatch.setattr(type(target), "write_property", counted)  # the controller counts
    failed: list[Event] = []
    hass.bus.async_listen(EVENT_POINT_FAILED, failed.append)
    key = point_key(IP_DEVICES[2])

    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: bool(failed), what="the refusal reported")
    assert failed[0].data["point"] == key
    assert failed[0].data["reason"] == "access_denied"
    state = data.controller.state(key)
    assert (state.status, state.failure) == (PointStatus.FAILED, FailureKind.ACCESS_DENIED)
    assert setpoints(building) == [78.0, 78.0, None, 78.0]
    issue = stuck_issue(hass, entry)
    assert issue is not None
    assert issue.translation_key == "stuck_points_access_denied"
    assert issue.translation_placeholders is not None
    assert f"({key})" in issue.translation_placeholders["points"]

    # The refused write is asked again only at the cap, not at the short backoff.
    await wait_for(lambda: len(attempts) >= 2, timeout=cap + 5, what="the capped retry")
    assert attempts[1] - attempts[0] >= cap - 0.1
    await wait_for(lambda: data.ledger.retry_delay == cap, what="the next retry at the cap")
    assert len(attempts) == 2

    # The refusal does not hold up the end of the event, nor stay "stuck" once it is over.
    building.vtn.cancel_event(event_id)
    await wait_for(lambda: setpoints(building) == RELEASED, what="release at the end")
    await wait_for(
        lambda: data.controller.state(key).status is PointStatus.RELEASED,
        what="the refused point settled as released",
    )
    await wait_for(lambda: ledger_records(hass_storage, entry) == [], what="ledger emptied")
    assert data.ledger.retry_delay is None
    await wait_for(lambda: stuck_issue(hass, entry) is None, what="repair cleared")
    nothing_of_ours_left(building)


@pytest.mark.usefixtures("quick_recovery")
async def test_fault_06_another_writer_at_priority_8_is_reported_as_owner(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    added_entry: MockConfigEntry,
) -> None:
    """Another writer holds priority 8 -> reported as owned, our slot still released at the
    end."""
    entry = added_entry
    operator = building.bacnet.device(IP_DEVICES[0])
    operator.write_local(SETPOINT, 65.0, 8)  # the building operator's manual command
    data = await start_entry(hass, entry)
    key = point_key(IP_DEVICES[0])
    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: setpoints(building) == SHED, what="shed")
    await wait_for(
        lambda: data.controller.state(key).status is not PointStatus.PENDING,
        what="the pass to finish",
    )
    state = data.controller.state(key)
    assert (state.status, state.owner_priority) == (PointStatus.OWNED, 8)
    assert state.failure is None
    assert stuck_issue(hass, entry) is None  # owned is not a failure
    switch = hass.states.get(entity_of(hass, entry, "switch", key))
    assert switch is not None
    assert switch.attributes["owner_priority"] == 8
    assert operator.present_value(SETPOINT) == 65.0  # the operator's command still wins
    assert operator.priority_array(SETPOINT)[7] == 65.0

    building.vtn.cancel_event(event_id)
    await wait_for(lambda: setpoints(building) == RELEASED, what="release at the end")
    nothing_of_ours_left(building)
    array = operator.priority_array(SETPOINT)
    assert array[7] == 65.0  # never ours to touch
    assert array.count(None) == 15
    await wait_for(lambda: ledger_records(hass_storage, entry) == [], what="ledger emptied")


@pytest.mark.usefixtures("quick_recovery")
async def test_fault_10_meter_silent_or_nan_skips_samples_and_crashes_nothing(
    hass: HomeAssistant,
    building: SimBuilding,
    added_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The meter stops answering / returns NaN -> sensor unavailable, report samples skipped,
    nothing crashes."""
    entry = added_entry
    data = await start_entry(hass, entry)
    meter = entity_of(hass, entry, "sensor", "meter_power")
    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await shed_verified(building, data)
    await wait_for(lambda: bool(building.vtn.reports), timeout=20, what="a first report")

    building.meter.silent = True
    await wait_for(lambda: data.meter.latest_kw is None, timeout=20, what="meter unanswered")
    lost_at = datetime.now(UTC)
    assert hass.states.get(meter).state == STATE_UNAVAILABLE
    await asyncio.sleep(4.5)  # two report sampling periods (2 s) without a value

    building.meter.silent = False
    building.meter.nan = True
    await wait_for(lambda: "nan" in str(data.meter.last_exception).lower(), what="a NaN read")
    assert hass.states.get(meter).state == STATE_UNAVAILABLE
    await asyncio.sleep(2.5)

    back_at = datetime.now(UTC)
    building.meter.nan = False
    await wait_for(lambda: data.meter.latest_kw is not None, what="meter back")
    skipped = [r for r in building.vtn.reports if lost_at < r.dtstart < back_at]
    assert skipped == []  # no made-up sample while the meter had no value
    await wait_for(
        lambda: any(r.dtstart > back_at for r in building.vtn.reports),
        timeout=20,
        what="reports resumed",
    )
    # Nothing else noticed: the shed held, the VEN stayed connected, nothing raised.
    assert setpoints(building) == SHED
    assert entry.state is ConfigEntryState.LOADED
    assert data.connected
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]

    building.vtn.cancel_event(event_id)
    await wait_for(lambda: setpoints(building) == RELEASED, what="release at the end")
    nothing_of_ours_left(building)


async def test_fault_11_bacnet_port_taken_gives_a_clear_error_and_a_retry(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    """UDP port 47808 already taken -> clear config-flow error and a setup retry, not a hang."""
    net = BASE_IP.rsplit(".", 2)[0]
    address = f"{net}.3.1"  # an address of this host no simulated controller uses
    bacnet = {
        "interface": f"{address}/32",
        "port": 47808,
        "device_instance": 3990001,
        "routers": "",
        "point_mode": "bulk",
        "check_reachable": False,
    }
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=VEN_NAME,
        data={**entry_data(building), "interface": f"{address}/32", "port": 47808},
        unique_id=f"{building.vtn.url.lower()}|{VEN_NAME}",
    )
    result = await start_vtn_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"vtn_url": building.vtn.url, "ven_name": VEN_NAME}
    )
    assert result["step_id"] == "bacnet", result.get("errors")
    flow_id = result["flow_id"]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other_program:
            other_program.bind((address, 47808))
            started = time.monotonic()
            result = await hass.config_entries.flow.async_configure(flow_id, bacnet)
            assert time.monotonic() - started < 3
            assert result["type"] is FlowResultType.FORM
            assert result["errors"] == {"port": "port_in_use"}
            assert result["description_placeholders"]["port"] == "47808"
            assert result["description_placeholders"]["ip"] == address

            entry.add_to_hass(hass)
            started = time.monotonic()
            assert not await hass.config_entries.async_setup(entry.entry_id)
            assert time.monotonic() - started < 3
            assert entry.state is ConfigEntryState.SETUP_RETRY
            assert entry.error_reason_translation_key == "port_in_use"
            assert entry.reason is not None
            assert "47808" in entry.reason
        # The other program is gone: the scheduled retry (5 s) sets the entry up by itself.
        await wait_for(lambda: entry.state is ConfigEntryState.LOADED, what="the setup retry")
    finally:
        hass.config_entries.flow.async_abort(flow_id)
        if entry.state is ConfigEntryState.LOADED:
            assert await hass.config_entries.async_unload(entry.entry_id)
