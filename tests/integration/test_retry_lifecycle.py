"""Automatic retries and reloads, seen from the outside: entities, bus events, priority arrays.

The simulated controllers detect duplicate requests (an answer is kept per client address and
invoke ID for a few seconds and sent again without executing a repeat), as real ones do.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import Event, HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.loadshed_ven import override_ledger
from custom_components.loadshed_ven.bus_events import EVENT_POINT_RELEASED, SOURCE_SCHEDULE
from custom_components.loadshed_ven.const import DOMAIN
from custom_components.loadshed_ven.data import LoadshedData
from custom_components.loadshed_ven.engine import ledger_records as ledger
from custom_components.loadshed_ven.engine.overrides import FailureKind, PointState, PointStatus
from custom_components.loadshed_ven.engine.points import OverridePoint
from sim.building import SimBuilding

from .conftest import (
    BASE_IP,
    IP_DEVICES,
    RELEASED,
    SETPOINT,
    SHED,
    SHED_ENABLE,
    VEN_NAME,
    entry_data,
    point_key,
    setpoints,
    slot,
    start_entry,
    wait_for,
)
from .test_platforms import entity_id


def _shows(hass: HomeAssistant, entity_id: str, state: str, **attributes: Any) -> bool:
    """True when the entity's state and the given attributes are what HA shows now."""
    shown = hass.states.get(entity_id)
    return (
        shown is not None
        and shown.state == state
        and all(shown.attributes.get(name) == value for name, value in attributes.items())
    )


@pytest.mark.usefixtures("quick_recovery")
async def test_retry_success_updates_switch_and_fires_point_released(
    hass: HomeAssistant, building: SimBuilding, added_entry: MockConfigEntry
) -> None:
    """What a retry settles shows at once: the switch's state and attributes, and a released
    point's bus event (source ``schedule``), without waiting for another pass."""
    entry = added_entry
    await start_entry(hass, entry)
    device = building.bacnet.device(IP_DEVICES[2])
    key = point_key(IP_DEVICES[2])
    switch = entity_id(hass, entry, "switch", key)
    released: list[Event] = []
    hass.bus.async_listen(EVENT_POINT_RELEASED, released.append)

    device.offline = True
    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(
        lambda: _shows(hass, switch, STATE_ON, failure="offline", verified=False),
        what="the switch showing the failed write",
    )
    device.offline = False
    await wait_for(lambda: slot(building, IP_DEVICES[2], SETPOINT, 10) == 78.0, what="retry")
    await wait_for(
        lambda: _shows(hass, switch, STATE_ON, failure=None, verified=True, written_value=78.0),
        timeout=3,
        what="the switch following the retried write",
    )

    device.offline = True
    building.vtn.cancel_event(event_id)
    await wait_for(
        lambda: _shows(hass, switch, STATE_ON, failure="offline", verified=False),
        what="the switch showing the failed release",
    )
    assert slot(building, IP_DEVICES[2], SETPOINT, 10) == 78.0
    assert not [e for e in released if e.data["point"] == key]
    device.offline = False
    await wait_for(
        lambda: any(e.data["point"] == key for e in released), what="point released event"
    )
    (event,) = [e for e in released if e.data["point"] == key]
    assert event.data["source"] == SOURCE_SCHEDULE
    assert event.data["status"] == "released"
    assert slot(building, IP_DEVICES[2], SETPOINT, 10) is None
    assert _shows(hass, switch, STATE_OFF, failure=None, verified=True)


@pytest.mark.usefixtures("quick_recovery")
async def test_failing_point_does_not_delay_other_points_retry(
    hass: HomeAssistant,
    building: SimBuilding,
    added_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A point the controller keeps refusing (retried only at the 5 min cap) does not hold back
    another controller's release: that one is retried 10 s after its own failure."""
    monkeypatch.setattr(override_ledger, "RETRY_INITIAL_SECONDS", 10.0)
    monkeypatch.setattr(override_ledger, "RETRY_CAP_SECONDS", 300.0)
    entry = added_entry
    data = await start_entry(hass, entry)
    controller = data.controller
    refusing = building.bacnet.device(IP_DEVICES[0])
    refusing.deny_writes(SETPOINT)
    refused, late = point_key(IP_DEVICES[0]), point_key(IP_DEVICES[1])

    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(
        lambda: (
            controller.state(refused).failure is FailureKind.ACCESS_DENIED
            and controller.state(late).status is PointStatus.HELD
        ),
        what="the shed pass, with one refusal",
    )
    refused_in = data.ledger.next_retry(controller.state(refused))
    assert refused_in is not None
    assert refused_in > 250  # asked again only at the cap

    back = building.bacnet.device(IP_DEVICES[1])
    back.offline = True
    building.vtn.cancel_event(event_id)
    await wait_for(
        lambda: controller.state(late).failure is FailureKind.OFFLINE, what="a failed release"
    )
    assert slot(building, IP_DEVICES[1], SETPOINT, 10) == 78.0
    late_in = data.ledger.next_retry(controller.state(late))
    assert late_in is not None
    assert late_in <= 10.0
    back.offline = False

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=10.5))
    await wait_for(
        lambda: slot(building, IP_DEVICES[1], SETPOINT, 10) is None,
        timeout=5,
        what="the release retried 10 s after it failed",
    )
    await wait_for(lambda: not data.shedding, what="every point settled")
    assert setpoints(building) == RELEASED
    assert data.ledger.retry_delay is None


@pytest.mark.usefixtures("quick_recovery")
async def test_point_left_by_last_run_shows_failed_until_a_retry_releases_it(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    added_entry: MockConfigEntry,
) -> None:
    """A slot the last run left, on a controller silent at start: its switch shows the failure
    from the start, and the release a retry lands shows at once (event and switch)."""
    entry = added_entry
    device = building.bacnet.device(IP_DEVICES[2])
    key = point_key(IP_DEVICES[2])
    point = OverridePoint(
        address=IP_DEVICES[2],
        object_type="analog-value",
        instance=302,
        priority=10,
        values=(78.0, 80.0, 82.0),
        name=f"Zone setpoint {IP_DEVICES[2]}",
    )
    left = PointState(point=point, status=PointStatus.HELD, written_value=78.0, event_id="old")
    hass_storage[override_ledger.storage_key(entry.entry_id)] = {
        "version": override_ledger.STORAGE_VERSION,
        "data": ledger.dump([left]),
    }
    device.write_local(SETPOINT, 78.0, 10)
    device.offline = True
    released: list[Event] = []
    hass.bus.async_listen(EVENT_POINT_RELEASED, released.append)

    await start_entry(hass, entry)
    switch = entity_id(hass, entry, "switch", key)
    assert _shows(hass, switch, STATE_ON, failure="offline", verified=False)
    device.offline = False
    await wait_for(
        lambda: any(e.data["point"] == key for e in released), what="point released event"
    )
    assert slot(building, IP_DEVICES[2], SETPOINT, 10) is None
    assert _shows(hass, switch, STATE_OFF, failure=None, verified=True)


async def test_release_after_reload_not_swallowed_by_duplicate_detection(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    """Shed, reload (a new BACnet stack on the same address and port), shed again, release:
    every write and release of the new stack is executed, none answered from a controller's
    duplicate cache, so the slots end NULL."""
    assert all(device.duplicate_window > 0 for device in building.bacnet.devices)
    net = BASE_IP.rsplit(".", 2)[0]
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=VEN_NAME,
        # A fixed port: an ephemeral one would give the new stack another source address.
        data={**entry_data(building), "interface": f"{net}.3.2/32", "port": 47809},
        unique_id=f"{building.vtn.url.lower()}|{VEN_NAME}",
    )
    entry.add_to_hass(hass)
    try:
        data = await start_entry(hass, entry)
        event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
        await wait_for(lambda: _all_held(data) and setpoints(building) == SHED, what="shed")

        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
        data = entry.runtime_data
        await wait_for(lambda: data.connected, what="VEN registered again")
        await wait_for(lambda: _all_held(data), what="the event shed again after the reload")
        assert setpoints(building) == SHED
        assert slot(building, IP_DEVICES[0], SHED_ENABLE, 12) == "active"

        building.vtn.cancel_event(event_id)
        await wait_for(lambda: not data.shedding, what="the release")
        assert setpoints(building) == RELEASED
        assert slot(building, IP_DEVICES[0], SHED_ENABLE, 12) is None
        assert all(s.status is PointStatus.RELEASED for s in data.point_states())
        assert sum(d.duplicates_answered for d in building.bacnet.devices) == 0
    finally:
        await hass.config_entries.async_unload(entry.entry_id)


def _all_held(data: LoadshedData) -> bool:
    return all(s.status is PointStatus.HELD for s in data.point_states())
