"""One switch per controller (the ``switches`` option), and the point switches' definite state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    STATE_UNKNOWN,
)
from homeassistant.core import Event, EventStateChangedData, HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven.const import (
    CONF_SWITCHES,
    DOMAIN,
    SWITCHES_PER_CONTROLLER,
    SWITCHES_PER_POINT,
)
from sim.building import SimBuilding

from .conftest import (
    ALL_DEVICES,
    IP_DEVICES,
    SETPOINT,
    SHED,
    SHED_ENABLE,
    point_key,
    setpoints,
    slot,
    start_entry,
    wait_for,
)


def _switch(hass: HomeAssistant, entry: MockConfigEntry, key: str) -> str | None:
    return er.async_get(hass).async_get_entity_id("switch", DOMAIN, f"{entry.entry_id}_{key}")


def _controller(hass: HomeAssistant, entry: MockConfigEntry, address: str) -> str:
    found = _switch(hass, entry, f"controller/{address}")
    assert found is not None, address
    return found


async def _set_mode(hass: HomeAssistant, entry: MockConfigEntry, mode: str) -> None:
    hass.config_entries.async_update_entry(entry, options={**entry.options, CONF_SWITCHES: mode})
    await hass.async_block_till_done()


def _state(hass: HomeAssistant, entity_id: str) -> str:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state.state


async def test_controller_switch_releases_and_holds_all_its_points(
    hass: HomeAssistant, building: SimBuilding, added_entry: MockConfigEntry
) -> None:
    entry = added_entry
    hass.config_entries.async_update_entry(entry, options={CONF_SWITCHES: SWITCHES_PER_CONTROLLER})
    await start_entry(hass, entry)
    # One switch per controller, none per point.
    for address in ALL_DEVICES:
        assert _state(hass, _controller(hass, entry, address)) == STATE_OFF
    assert _switch(hass, entry, point_key(IP_DEVICES[0])) is None

    building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: setpoints(building) == SHED, what="shed")
    first = _controller(hass, entry, IP_DEVICES[0])
    await wait_for(
        lambda: hass.states.get(first).attributes["held"] == 2,  # type: ignore[union-attr]
        what="both points held",
    )
    assert _state(hass, first) == STATE_ON
    attributes = hass.states.get(first).attributes  # type: ignore[union-attr]
    assert attributes["points"] == 2
    assert attributes["failures"] == {}

    # Off releases both points of that controller, and only them.
    await hass.services.async_call(
        "switch", SERVICE_TURN_OFF, {ATTR_ENTITY_ID: first}, blocking=True
    )
    assert slot(building, IP_DEVICES[0], SETPOINT, 10) is None
    assert slot(building, IP_DEVICES[0], SHED_ENABLE, 12) is None
    assert slot(building, IP_DEVICES[1], SETPOINT, 10) == 78.0
    assert _state(hass, first) == STATE_OFF
    assert hass.states.get(first).attributes["operator_released"] == 2  # type: ignore[union-attr]

    # On writes them again.
    await hass.services.async_call(
        "switch", SERVICE_TURN_ON, {ATTR_ENTITY_ID: first}, blocking=True
    )
    assert slot(building, IP_DEVICES[0], SETPOINT, 10) == 78.0
    assert slot(building, IP_DEVICES[0], SHED_ENABLE, 12) is not None
    assert _state(hass, first) == STATE_ON


async def test_a_failed_point_shows_on_controller_switch_and_refuses_release(
    hass: HomeAssistant, building: SimBuilding, added_entry: MockConfigEntry
) -> None:
    entry = added_entry
    hass.config_entries.async_update_entry(entry, options={CONF_SWITCHES: SWITCHES_PER_CONTROLLER})
    await start_entry(hass, entry)
    building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: setpoints(building) == SHED, what="shed")
    switch = _controller(hass, entry, IP_DEVICES[0])
    building.bacnet.device(IP_DEVICES[0]).deny_writes(SETPOINT)

    with pytest.raises(HomeAssistantError):
        await hass.services.async_call(
            "switch", SERVICE_TURN_OFF, {ATTR_ENTITY_ID: switch}, blocking=True
        )
    # The other point was released all the same; the refused one still holds our value.
    assert slot(building, IP_DEVICES[0], SHED_ENABLE, 12) is None
    assert slot(building, IP_DEVICES[0], SETPOINT, 10) == 78.0
    shown = hass.states.get(switch)
    assert shown is not None
    assert shown.state == STATE_ON
    assert shown.attributes["failed"] == 1
    assert shown.attributes["released"] == 1
    (why,) = shown.attributes["failures"].values()
    assert why.startswith("access_denied")


async def test_changing_the_option_recreates_the_switches_and_keeps_the_building(
    hass: HomeAssistant, building: SimBuilding, added_entry: MockConfigEntry
) -> None:
    entry = added_entry
    await start_entry(hass, entry)
    building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: setpoints(building) == SHED, what="shed")
    point = _switch(hass, entry, point_key(IP_DEVICES[1]))
    assert point is not None

    await _set_mode(hass, entry, SWITCHES_PER_CONTROLLER)
    assert _switch(hass, entry, point_key(IP_DEVICES[1])) is None
    assert hass.states.get(point) is None
    for address in ALL_DEVICES:
        assert _state(hass, _controller(hass, entry, address)) == STATE_ON
    # Only the entities changed: nothing was released or written again.
    assert setpoints(building) == SHED

    await _set_mode(hass, entry, SWITCHES_PER_POINT)
    assert _switch(hass, entry, f"controller/{IP_DEVICES[0]}") is None
    point = _switch(hass, entry, point_key(IP_DEVICES[1]))
    assert point is not None
    assert _state(hass, point) == STATE_ON
    assert setpoints(building) == SHED
    # The switch works after being re-created.
    await hass.services.async_call(
        "switch", SERVICE_TURN_OFF, {ATTR_ENTITY_ID: point}, blocking=True
    )
    assert slot(building, IP_DEVICES[1], SETPOINT, 10) is None


async def test_point_switches_never_show_unknown(
    hass: HomeAssistant, building: SimBuilding, added_entry: MockConfigEntry
) -> None:
    """From their first state on, through a failed write and its recovery: on or off."""
    entry = added_entry
    shown: list[tuple[str, str]] = []

    def record(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        if new is not None and new.entity_id.startswith("switch.") and "status" in new.attributes:
            shown.append((new.entity_id, new.state))

    hass.bus.async_listen("state_changed", record)
    device = building.bacnet.device(IP_DEVICES[2])
    device.offline = True
    await start_entry(hass, entry)
    switch = _switch(hass, entry, point_key(IP_DEVICES[2]))
    assert switch is not None
    building.vtn.add_event(level=1, duration=timedelta(minutes=30))

    def failed() -> bool:
        state = hass.states.get(switch)
        return state is not None and state.attributes["status"] == "failed"

    await wait_for(failed, what="the failed write")
    state = hass.states.get(switch)
    assert state is not None
    # The write may have landed: on, so that turning it off releases; the reason is shown.
    assert state.state == STATE_ON
    assert state.attributes["failure"] == "offline"
    assert state.attributes["detail"].startswith("offline")
    device.offline = False
    await wait_for(lambda: slot(building, IP_DEVICES[2], SETPOINT, 10) == 78.0, what="retry")
    await hass.services.async_call(
        "switch", SERVICE_TURN_OFF, {ATTR_ENTITY_ID: switch}, blocking=True
    )
    assert _state(hass, switch) == STATE_OFF
    assert len({entity for entity, _ in shown}) == 5
    assert STATE_UNKNOWN not in {state for _, state in shown}


async def test_the_options_flow_switches_to_one_switch_per_controller(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    flow = await hass.config_entries.options.async_init(entry.entry_id)
    assert CONF_SWITCHES in {str(key) for key in flow["data_schema"].schema}
    result = await hass.config_entries.options.async_configure(
        flow["flow_id"],
        {
            "shed_level": 1,
            "normal_level": 0,
            "act_on_test_events": False,
            "baseline_minutes": 15,
            "vtn_outage_minutes": 30,
            "meter_interval": 1,
            CONF_SWITCHES: SWITCHES_PER_CONTROLLER,
        },
    )
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()
    assert entry.options[CONF_SWITCHES] == SWITCHES_PER_CONTROLLER
    for address in ALL_DEVICES:
        assert _state(hass, _controller(hass, entry, address)) == STATE_OFF
    assert _switch(hass, entry, point_key(IP_DEVICES[0])) is None
