"""The entities of a loaded entry against the simulated building.

Entity ids are looked up by unique id, so these tests do not depend on translated names.
Switch assertions read the simulated controllers' priority arrays.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    EntityCategory,
)
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.event import async_track_state_change_event
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.loadshed_ven as integration
from custom_components.loadshed_ven.const import DOMAIN
from custom_components.loadshed_ven.data import LoadshedData
from sim.building import SimBuilding

from .conftest import (
    ALL_DEVICES,
    IP_DEVICES,
    ROUTED_DEVICE,
    SETPOINT,
    SHED_ENABLE,
    VEN_NAME,
    entry_data,
    slot,
    wait_for,
)

PACKAGE = Path(integration.__file__).parent


def entity_id(hass: HomeAssistant, entry: MockConfigEntry, platform: str, key: str) -> str:
    """The entity id registered for ``key`` of ``entry`` on ``platform``."""
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{entry.entry_id}_{key}")
    assert found is not None, f"no {platform} entity for {key}"
    return found


def state_of(hass: HomeAssistant, entity: str) -> str:
    """The state string of ``entity`` (which must exist)."""
    state = hass.states.get(entity)
    assert state is not None, entity
    return state.state


def attrs(hass: HomeAssistant, entity: str) -> dict[str, Any]:
    """The attributes of ``entity`` (which must exist)."""
    state = hass.states.get(entity)
    assert state is not None, entity
    return dict(state.attributes)


def setpoint_switch(hass: HomeAssistant, entry: MockConfigEntry, address: str) -> str:
    """The switch of the zone setpoint on the controller at ``address``."""
    return entity_id(hass, entry, "switch", f"{address}/{SETPOINT}")


def event_types_fired(hass: HomeAssistant, entity: str) -> list[str]:
    """A live list of the event types the event entity fires from now on."""
    fired: list[str] = []

    @callback  # in the event loop, in order (a plain function would run in the executor)
    def record(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        if new is not None and new.state not in (STATE_UNKNOWN, STATE_UNAVAILABLE):
            fired.append(new.attributes["event_type"])

    async_track_state_change_event(hass, entity, record)
    return fired


async def test_entities_and_devices(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    entry = init_integration
    entities = er.async_entries_for_config_entry(entity_registry, entry.entry_id)
    per_platform: dict[str, int] = {}
    for ent in entities:
        per_platform[ent.domain] = per_platform.get(ent.domain, 0) + 1
        assert ent.has_entity_name
    assert per_platform == {"sensor": 10, "binary_sensor": 2, "switch": 6, "button": 3, "event": 1}

    devices = dr.async_entries_for_config_entry(device_registry, entry.entry_id)
    identifiers = {ident for device in devices for ident in device.identifiers}
    assert identifiers == {
        (DOMAIN, entry.entry_id),
        (DOMAIN, f"{entry.entry_id}_meter"),
        *((DOMAIN, f"{entry.entry_id}_bacnet_{address}") for address in ALL_DEVICES),
    }
    assert all(device.via_device_id is None for device in devices)
    ven = device_registry.async_get_device(identifiers={(DOMAIN, entry.entry_id)})
    assert ven is not None
    assert ven.entry_type is dr.DeviceEntryType.SERVICE
    assert ven.name == entry.title
    assert ven.model == "OpenADR 2.0b VEN"
    routed = device_registry.async_get_device(
        identifiers={(DOMAIN, f"{entry.entry_id}_bacnet_{ROUTED_DEVICE}")}
    )
    assert routed is not None
    assert routed.name == f"BACnet controller {ROUTED_DEVICE}"
    switch = entity_registry.async_get(setpoint_switch(hass, entry, ROUTED_DEVICE))
    assert switch is not None
    assert switch.device_id == routed.id

    connected = entity_id(hass, entry, "binary_sensor", "vtn_connected")
    assert state_of(hass, connected) == STATE_ON
    registered = entity_registry.async_get(connected)
    assert registered is not None
    assert registered.entity_category is EntityCategory.DIAGNOSTIC
    assert state_of(hass, entity_id(hass, entry, "binary_sensor", "shed_active")) == STATE_OFF
    assert state_of(hass, entity_id(hass, entry, "sensor", "adr_level")) == "0"
    status = entity_id(hass, entry, "sensor", "event_status")
    assert state_of(hass, status) == "none"
    assert attrs(hass, status)["options"] == [
        "none",
        "scheduled",
        "active",
        "completed",
        "cancelled",
        "opted_out",
    ]
    for key in ("event_start", "event_end", "event_id"):
        assert state_of(hass, entity_id(hass, entry, "sensor", key)) == STATE_UNKNOWN
    meter = entity_id(hass, entry, "sensor", "meter_power")
    assert float(state_of(hass, meter)) == pytest.approx(850.0)
    assert attrs(hass, meter)["unit_of_measurement"] == "kW"
    assert attrs(hass, meter)["device_class"] == "power"

    shed_enable = entity_id(hass, entry, "switch", f"{IP_DEVICES[0]}/{SHED_ENABLE}")
    assert state_of(hass, shed_enable) == STATE_OFF
    assert attrs(hass, shed_enable) | {"friendly_name": None} == {
        "friendly_name": None,
        "address": IP_DEVICES[0],
        "object": SHED_ENABLE,
        "priority": 12,
        "written_value": None,
        "event_id": None,
        "written_at": None,
        "verified": True,
        "owner_priority": None,
        "status": "released",
        "failure": None,
        "detail": None,
        "operator_released": False,
    }
    assert attrs(hass, shed_enable)["friendly_name"].endswith("Shed enable")
    activity = entity_id(hass, entry, "event", "activity")
    assert state_of(hass, activity) == STATE_UNKNOWN
    assert "point_failed" in attrs(hass, activity)["event_types"]


async def test_vtn_event_updates_entities(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    activity = entity_id(hass, entry, "event", "activity")
    fired = event_types_fired(hass, activity)
    shed = entity_id(hass, entry, "binary_sensor", "shed_active")
    event_id = building.vtn.add_event(level=2, duration=timedelta(minutes=10))

    await wait_for(lambda: state_of(hass, shed) == STATE_ON, what="shed active")
    await wait_for(
        lambda: all(slot(building, a, SETPOINT, 10) == 80.0 for a in ALL_DEVICES), what="level 2"
    )
    # The level sensor follows once every write has been read back.
    level = entity_id(hass, entry, "sensor", "adr_level")
    await wait_for(lambda: state_of(hass, level) == "2", what="level sensor at 2")
    assert state_of(hass, entity_id(hass, entry, "sensor", "event_status")) == "active"
    assert state_of(hass, entity_id(hass, entry, "sensor", "event_id")) == event_id
    start = datetime.fromisoformat(state_of(hass, entity_id(hass, entry, "sensor", "event_start")))
    end = datetime.fromisoformat(state_of(hass, entity_id(hass, entry, "sensor", "event_end")))
    assert end - start == timedelta(minutes=10)
    for address in ALL_DEVICES:
        switch = setpoint_switch(hass, entry, address)
        assert state_of(hass, switch) == STATE_ON
        assert attrs(hass, switch)["written_value"] == 80.0
        assert attrs(hass, switch)["event_id"] == event_id
        assert attrs(hass, switch)["verified"] is True
    assert fired[:3] == ["event_received", "level_changed", "shed_started"]
    assert attrs(hass, activity)["event_id"] == event_id
    assert "config_entry_id" not in attrs(hass, activity)

    # The meter sees the shed (the simulated load drops with every override).
    meter = entity_id(hass, entry, "sensor", "meter_power")
    await wait_for(lambda: float(state_of(hass, meter)) < 850.0, what="meter reading drops")

    building.vtn.cancel_event(event_id)
    await wait_for(lambda: state_of(hass, shed) == STATE_OFF, what="shed ended")
    await hass.async_block_till_done()
    assert state_of(hass, entity_id(hass, entry, "sensor", "event_status")) == "cancelled"
    assert "event_cancelled" in fired
    assert "shed_ended" in fired


async def test_switch_off_releases_and_on_holds_again(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    fired = event_types_fired(hass, entity_id(hass, entry, "event", "activity"))
    building.vtn.add_event(level=1, duration=timedelta(minutes=10))
    await wait_for(
        lambda: all(slot(building, a, SETPOINT, 10) == 78.0 for a in ALL_DEVICES), what="shed"
    )
    switch = setpoint_switch(hass, entry, IP_DEVICES[1])
    await wait_for(lambda: state_of(hass, switch) == STATE_ON, what="switch on")

    await hass.services.async_call(
        "switch", SERVICE_TURN_OFF, {ATTR_ENTITY_ID: switch}, blocking=True
    )
    assert slot(building, IP_DEVICES[1], SETPOINT, 10) is None
    assert state_of(hass, switch) == STATE_OFF
    assert attrs(hass, switch)["operator_released"] is True
    assert attrs(hass, switch)["written_value"] is None
    # Only that point was released.
    assert [slot(building, a, SETPOINT, 10) for a in ALL_DEVICES] == [78.0, None, 78.0, 78.0]
    await hass.async_block_till_done()
    assert fired[-1] == "point_released"

    await hass.services.async_call(
        "switch", SERVICE_TURN_ON, {ATTR_ENTITY_ID: switch}, blocking=True
    )
    assert slot(building, IP_DEVICES[1], SETPOINT, 10) == 78.0
    assert state_of(hass, switch) == STATE_ON
    assert attrs(hass, switch)["operator_released"] is False


async def test_switch_release_refused_by_controller_raises(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    switch = setpoint_switch(hass, entry, IP_DEVICES[2])
    await hass.services.async_call(
        "switch", SERVICE_TURN_ON, {ATTR_ENTITY_ID: switch}, blocking=True
    )
    assert slot(building, IP_DEVICES[2], SETPOINT, 10) == 78.0  # level 1's value outside a shed
    device = building.bacnet.device(IP_DEVICES[2])
    device.deny_writes(SETPOINT)

    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            "switch", SERVICE_TURN_OFF, {ATTR_ENTITY_ID: switch}, blocking=True
        )
    assert err.value.translation_domain == DOMAIN
    # The failure kind is in the translation key, not English text in a placeholder.
    assert err.value.translation_key == "release_failed_access_denied"
    placeholders = err.value.translation_placeholders or {}
    assert placeholders["point"] == f"Zone setpoint {IP_DEVICES[2]}"
    # The value is still held: the switch stays on, and says the release failed.
    assert slot(building, IP_DEVICES[2], SETPOINT, 10) == 78.0
    assert state_of(hass, switch) == STATE_ON
    assert attrs(hass, switch)["status"] == "failed"
    assert attrs(hass, switch)["failure"] == "access_denied"
    assert attrs(hass, switch)["verified"] is False

    device.allow_writes(SETPOINT)
    await hass.services.async_call(
        "switch", SERVICE_TURN_OFF, {ATTR_ENTITY_ID: switch}, blocking=True
    )
    assert slot(building, IP_DEVICES[2], SETPOINT, 10) is None
    assert state_of(hass, switch) == STATE_OFF


async def test_switch_write_refused_by_controller_raises(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    switch = entity_id(hass, entry, "switch", f"{IP_DEVICES[0]}/{SHED_ENABLE}")
    building.bacnet.device(IP_DEVICES[0]).deny_writes(SHED_ENABLE)
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            "switch", SERVICE_TURN_ON, {ATTR_ENTITY_ID: switch}, blocking=True
        )
    assert err.value.translation_key == "write_failed_access_denied"
    assert (err.value.translation_placeholders or {})["point"] == "Shed enable"
    assert slot(building, IP_DEVICES[0], SHED_ENABLE, 12) is None
    # Tracked until a release verifies: on, with the failure and its reason.
    assert state_of(hass, switch) == STATE_ON
    assert attrs(hass, switch)["status"] == "failed"
    assert "refused" in attrs(hass, switch)["detail"]


async def test_meter_sensor_unavailable_while_the_meter_fails(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    meter = entity_id(hass, init_integration, "sensor", "meter_power")
    building.meter.nan = True
    await wait_for(lambda: state_of(hass, meter) == STATE_UNAVAILABLE, what="meter unavailable")
    building.meter.nan = False
    await wait_for(lambda: state_of(hass, meter) != STATE_UNAVAILABLE, what="meter back")
    assert float(state_of(hass, meter)) == pytest.approx(850.0)


async def test_event_entity_shows_only_its_own_activity(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """The event entity is fed by its entry's coordinator, not by whatever is on the bus."""
    activity = entity_id(hass, init_integration, "event", "activity")
    data: LoadshedData = init_integration.runtime_data
    hass.bus.async_fire(f"{DOMAIN}_opted_out", {"config_entry_id": "other", "event_id": "x"})
    hass.bus.async_fire(
        f"{DOMAIN}_opted_out", {"config_entry_id": init_integration.entry_id, "event_id": "x"}
    )
    await hass.async_block_till_done()
    assert state_of(hass, activity) == STATE_UNKNOWN
    seen: list[Event] = []
    hass.bus.async_listen(f"{DOMAIN}_opted_out", seen.append)
    data.bus.fire(f"{DOMAIN}_opted_out", {"event_id": "y"}, "operator")
    await hass.async_block_till_done()
    assert state_of(hass, activity) != STATE_UNKNOWN
    assert attrs(hass, activity)["event_type"] == "opted_out"
    assert attrs(hass, activity)["event_id"] == "y"
    assert attrs(hass, activity)["source"] == "operator"
    assert "config_entry_id" not in attrs(hass, activity)
    # The same event reached the bus, for automations.
    assert [e.data["config_entry_id"] for e in seen] == [init_integration.entry_id]


def _strings() -> dict[str, Any]:
    """The shipped English strings."""
    path = PACKAGE / "translations" / "en.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


async def test_every_entity_and_icon_is_translated(
    hass: HomeAssistant, init_integration: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    strings = _strings()["entity"]
    icons = json.loads((PACKAGE / "icons.json").read_text(encoding="utf-8"))["entity"]
    for ent in er.async_entries_for_config_entry(entity_registry, init_integration.entry_id):
        assert ent.translation_key is not None, ent.entity_id
        assert "name" in strings[ent.domain][ent.translation_key], ent.entity_id
        assert ent.translation_key in icons[ent.domain], ent.entity_id
    status_states = strings["sensor"]["event_status"]["state"]
    assert set(status_states) == set(
        attrs(hass, entity_id(hass, init_integration, "sensor", "event_status"))["options"]
    )
    activity = attrs(hass, entity_id(hass, init_integration, "event", "activity"))
    event_states = strings["event"]["activity"]["state_attributes"]["event_type"]["state"]
    assert set(event_states) == set(activity["event_types"])


async def test_points_no_longer_configured_are_removed(
    hass: HomeAssistant,
    building: SimBuilding,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    entry = MockConfigEntry(domain=DOMAIN, title=VEN_NAME, data=entry_data(building))
    entry.add_to_hass(hass)
    gone = device_registry.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, f"{entry.entry_id}_bacnet_10:5")}
    )
    old_point = entity_registry.async_get_or_create(
        "switch", DOMAIN, f"{entry.entry_id}_{IP_DEVICES[1]}/analog-value,9", config_entry=entry
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert device_registry.async_get(gone.id) is None
    assert entity_registry.async_get(old_point.entity_id) is None
    kept = setpoint_switch(hass, entry, IP_DEVICES[1])
    assert entity_registry.async_get(kept) is not None
    assert len(er.async_entries_for_config_entry(entity_registry, entry.entry_id)) == 22
    assert await hass.config_entries.async_unload(entry.entry_id)
