"""The fault matrix: every fault the product must survive without leaving an override behind.

One test per fault, against the simulated building. Each ends by reading the simulated
controllers' priority arrays: whatever happened, no slot may keep a value of ours once the
event is over. Only time is compressed (short events, retries after 0.5 s instead of 10 s,
a silent controller given up after 1 s); every peer is the real simulated one.

Where a fault needs an operator's attention, the repair issue it raises (and clears once the
fault is gone) is asserted too.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_UNAVAILABLE
from homeassistant.core import Event, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.loadshed_ven import override_ledger
from custom_components.loadshed_ven.bus_events import EVENT_MODIFIED, EVENT_POINT_FAILED
from custom_components.loadshed_ven.const import DEFAULT_VTN_OUTAGE_MINUTES, DOMAIN
from custom_components.loadshed_ven.data import LoadshedData
from custom_components.loadshed_ven.engine.overrides import FailureKind, PointStatus
from custom_components.loadshed_ven.openadr import ven as ven_module
from sim.building import SimBuilding

from .conftest import (
    BASE_IP,
    IP_DEVICES,
    RELEASED,
    SETPOINT,
    SHED,
    SHED_ENABLE,
    VEN_NAME,
    crash_entry,
    entry_data,
    ledger_records,
    point_key,
    setpoints,
    slot,
    start_entry,
    wait_for,
)


def _end_of(building: SimBuilding, event_id: str) -> datetime:
    """When the VTN's event ends (its last interval's end)."""
    summary = next(e for e in building.vtn.events() if e["event_id"] == event_id)
    return datetime.fromisoformat(summary["end"].replace("Z", "+00:00"))


def _issue(hass: HomeAssistant, kind: str, entry: MockConfigEntry) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, f"{kind}_{entry.entry_id}")


def _stuck(hass: HomeAssistant, entry: MockConfigEntry) -> ir.IssueEntry | None:
    """The stuck-points issue of the entry (there is one per failure kind), if any."""
    issues = [_issue(hass, f"stuck_points_{kind}", entry) for kind in FailureKind]
    return next((issue for issue in issues if issue is not None), None)


def _entity(hass: HomeAssistant, entry: MockConfigEntry, platform: str, key: str) -> str:
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{entry.entry_id}_{key}")
    assert found is not None, f"no {platform} entity for {key}"
    return found


def _nothing_of_ours_left(building: SimBuilding) -> None:
    """Slot 10 of every setpoint and slot 12 of the binary point are NULL."""
    assert setpoints(building) == RELEASED
    assert slot(building, IP_DEVICES[0], SHED_ENABLE, 12) is None


async def _shed_verified(building: SimBuilding, data: LoadshedData) -> None:
    """Wait until every setpoint holds level 1's value and every write has been read back."""
    await wait_for(lambda: setpoints(building) == SHED, what="shed")
    await wait_for(
        lambda: all(s.status is PointStatus.HELD for s in data.point_states()),
        what="every write verified",
    )


async def _vtn_heard(data: LoadshedData, exchanges_after: float = 2.5) -> None:
    """Wait until the VEN has kept exchanging with the VTN (1 s polls) for a while."""
    since = datetime.now(UTC) + timedelta(seconds=exchanges_after)
    await wait_for(
        lambda: data.ven.last_contact is not None and data.ven.last_contact >= since,
        what="more polls of the VTN",
    )


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
    await _shed_verified(building, data)

    # Home Assistant stops while one controller is unreachable: that release cannot land.
    unreachable = building.bacnet.device(IP_DEVICES[1])
    unreachable.offline = True
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert setpoints(building) == [None, 78.0, None, None]
    assert [r["key"] for r in ledger_records(hass_storage, entry)] == [point_key(IP_DEVICES[1])]
    assert _stuck(hass, entry) is not None  # in view while HA is down
    unreachable.offline = False
    end = _end_of(building, event_id)
    await wait_for(lambda: datetime.now(UTC) >= end, what="the event's end, while HA is down")

    data = await start_entry(hass, entry)
    _nothing_of_ours_left(building)
    assert ledger_records(hass_storage, entry) == []
    assert _stuck(hass, entry) is None
    await _vtn_heard(data)  # the ended event is not acted on again
    _nothing_of_ours_left(building)
    assert not data.shedding


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
    end = _end_of(building, event_id)
    await wait_for(lambda: datetime.now(UTC) >= end, what="the event's end, while HA is down")

    data = await start_entry(hass, entry)
    _nothing_of_ours_left(building)
    assert ledger_records(hass_storage, entry) == []
    await _vtn_heard(data)
    _nothing_of_ours_left(building)
    assert not data.shedding


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
    await wait_for(lambda: _stuck(hass, entry) is not None, what="repair")

    device.offline = False
    await wait_for(lambda: slot(building, IP_DEVICES[2], SETPOINT, 10) == 78.0, what="retry")
    await wait_for(lambda: data.controller.state(key).status is PointStatus.HELD, what="held")
    await wait_for(lambda: _stuck(hass, entry) is None, what="repair cleared")

    building.vtn.cancel_event(event_id)
    await wait_for(lambda: setpoints(building) == RELEASED, what="release at the end")
    _nothing_of_ours_left(building)
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
    await _shed_verified(building, data)
    assert _stuck(hass, entry) is None

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
    await wait_for(lambda: _stuck(hass, entry) is not None, what="repair")

    device.offline = False
    await wait_for(lambda: setpoints(building) == RELEASED, what="released by a retry")
    await wait_for(lambda: ledger_records(hass_storage, entry) == [], what="ledger emptied")
    assert data.controller.state(key).status is PointStatus.RELEASED
    await wait_for(lambda: _stuck(hass, entry) is None, what="repair cleared")
    _nothing_of_ours_left(building)


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
    issue = _stuck(hass, entry)
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
    await wait_for(lambda: _stuck(hass, entry) is None, what="repair cleared")
    _nothing_of_ours_left(building)


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
    assert _stuck(hass, entry) is None  # owned is not a failure
    switch = hass.states.get(_entity(hass, entry, "switch", key))
    assert switch is not None
    assert switch.attributes["owner_priority"] == 8
    assert operator.present_value(SETPOINT) == 65.0  # the operator's command still wins
    assert operator.priority_array(SETPOINT)[7] == 65.0

    building.vtn.cancel_event(event_id)
    await wait_for(lambda: setpoints(building) == RELEASED, what="release at the end")
    _nothing_of_ours_left(building)
    array = operator.priority_array(SETPOINT)
    assert array[7] == 65.0  # never ours to touch
    assert array.count(None) == 15
    await wait_for(lambda: ledger_records(hass_storage, entry) == [], what="ledger emptied")


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
    assert hass.states.get(_entity(hass, entry, "binary_sensor", "vtn_connected")).state in (
        STATE_OFF,
        STATE_UNAVAILABLE,
    )
    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    # An outage shorter than the configured minutes raises nothing.
    assert _issue(hass, "vtn_unreachable", entry) is None

    await building.vtn.start()
    await wait_for(lambda: data.connected, what="registered once the VTN is up")
    await wait_for(lambda: setpoints(building) == SHED, what="the event acted on")
    assert _issue(hass, "vtn_unreachable", entry) is None

    building.vtn.cancel_event(event_id)
    await wait_for(lambda: setpoints(building) == RELEASED, what="release at the end")
    _nothing_of_ours_left(building)


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
    end = _end_of(building, event_id)
    await _shed_verified(building, data)

    await building.vtn.stop()
    await wait_for(lambda: not data.connected, what="the VEN to notice the outage")
    assert setpoints(building) == SHED  # an outage alone ends nothing
    await wait_for(lambda: setpoints(building) == RELEASED, timeout=15, what="release at end")
    released_at = datetime.now(UTC)
    assert end <= released_at <= end + timedelta(seconds=4)
    _nothing_of_ours_left(building)
    await wait_for(lambda: not data.shedding, what="the pass to finish")

    assert _issue(hass, "vtn_unreachable", entry) is None  # not before the outage minutes
    later = dt_util.utcnow() + timedelta(minutes=DEFAULT_VTN_OUTAGE_MINUTES + 1)
    async_fire_time_changed(hass, later)
    await hass.async_block_till_done()
    assert _issue(hass, "vtn_unreachable", entry) is not None
    await building.vtn.start()
    await wait_for(lambda: data.connected, what="the VTN back")
    await wait_for(lambda: _issue(hass, "vtn_unreachable", entry) is None, what="cleared")
    _nothing_of_ours_left(building)


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
        _nothing_of_ours_left(building)
        assert ledger_records(hass_storage, entry) == []
        await _vtn_heard(data)  # the withdrawn event is never shed again
        _nothing_of_ours_left(building)
        assert not data.shedding
        view = data.current_event()
        if cancelled:
            assert view is not None
            assert (view.event_id, view.status) == (event_id, "cancelled")
        else:
            assert view is None  # never heard of again


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
    meter = _entity(hass, entry, "sensor", "meter_power")
    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await _shed_verified(building, data)
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
    _nothing_of_ours_left(building)


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
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
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
        _nothing_of_ours_left(building)
        for device in building.bacnet.devices:
            assert device.priority_array(SETPOINT) == [None] * 16
        await wait_for(lambda: ledger_records(hass_storage, entry) == [], what="ledger emptied")
        view = data.current_event()
        assert view is not None
        assert view.status == "scheduled"
    finally:
        for device in building.bacnet.devices:
            device.latency = 0.0
