"""Opting out of (and back in to) an event from the participation switch."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from homeassistant.components.switch.const import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF, SERVICE_TURN_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven import opt_outs
from custom_components.loadshed_ven.data import LoadshedData
from sim.building import SimBuilding

from .conftest import (
    IP_DEVICES,
    OPENADR_VERSIONS,
    ROUTED_DEVICE,
    SETPOINT,
    VEN_NAME,
    slot,
    wait_for,
)
from .test_platforms import entity_id, state_of


def _setpoints(building: SimBuilding) -> list[object]:
    return [slot(building, a, SETPOINT, 10) for a in [*IP_DEVICES, ROUTED_DEVICE]]


def _opts(building: SimBuilding, event_id: str) -> list[str]:
    ven_id = building.vtn.ven_id_for(VEN_NAME)
    return [o.opt_type for o in building.vtn.opts if o.event_id == event_id and o.ven_id == ven_id]


@OPENADR_VERSIONS
async def test_opt_out_and_back_in_from_the_switch(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    switch = entity_id(hass, init_integration, "switch", "participation")
    assert state_of(hass, switch) == STATE_UNAVAILABLE  # no event yet

    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: _setpoints(building) == [78.0] * 4, what="shed")
    await wait_for(lambda: state_of(hass, switch) == "on", what="switch on")

    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: switch}, blocking=True
    )
    assert _setpoints(building) == [None] * 4
    assert state_of(hass, switch) == "off"
    await wait_for(lambda: "optOut" in _opts(building, event_id), what="optOut at the VTN")

    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_ON, {ATTR_ENTITY_ID: switch}, blocking=True
    )
    assert _setpoints(building) == [78.0] * 4
    assert state_of(hass, switch) == "on"
    await wait_for(lambda: _opts(building, event_id)[-1] == "optIn", what="optIn at the VTN")


async def test_the_switch_survives_a_reload(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    """Reloading must not drop and re-create it (that would lose the user's customisations)."""
    switch = entity_id(hass, init_integration, "switch", "participation")
    registry_id = er.async_get(hass).async_get(switch).id  # type: ignore[union-attr]
    assert await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert er.async_get(hass).async_get(switch).id == registry_id  # type: ignore[union-attr]


async def test_an_opt_out_outlives_a_reload(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    init_integration: MockConfigEntry,
) -> None:
    """The VTN re-delivers the event after the reload: it is answered optOut, nothing is shed."""
    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: _setpoints(building) == [78.0] * 4, what="shed")
    data: LoadshedData = init_integration.runtime_data
    await data.actions.opt_out(event_id)
    assert _setpoints(building) == [None] * 4
    assert list(
        hass_storage[opt_outs.storage_key(init_integration.entry_id)]["data"]["events"]
    ) == [event_id]

    answered = len(_opts(building, event_id))
    assert await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done()
    data = init_integration.runtime_data
    # The re-delivered event is answered (the answer comes after it is planned, or not).
    await wait_for(lambda: len(_opts(building, event_id)) > answered, what="event answered again")
    assert _opts(building, event_id)[answered:] == ["optOut"]
    assert _setpoints(building) == [None] * 4
    switch = entity_id(hass, init_integration, "switch", "participation")
    assert state_of(hass, switch) == "off"

    # Opting back in forgets it.
    await data.actions.opt_in(event_id)
    assert _setpoints(building) == [78.0] * 4
    assert hass_storage[opt_outs.storage_key(init_integration.entry_id)]["data"]["events"] == {}


async def test_old_and_unreadable_opt_outs_are_dropped(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Ids older than a week, bad dates and bad shapes are ignored on load."""
    store = opt_outs.OptOutStore(hass, "entry")
    now = dt_util.utcnow()
    hass_storage[opt_outs.storage_key("entry")] = {
        "version": opt_outs.STORAGE_VERSION,
        "data": {
            "events": {
                "fresh": now.isoformat(),
                "old": (now - opt_outs.KEEP - timedelta(hours=1)).isoformat(),
                "naive": now.replace(tzinfo=None).isoformat(),
                "garbage": "not a date",
                "number": 5,
            }
        },
    }
    assert await store.async_load() == {"fresh"}
    hass_storage[opt_outs.storage_key("entry")] = {"version": 1, "data": ["not", "a", "dict"]}
    store = opt_outs.OptOutStore(hass, "entry")
    assert await store.async_load() == set()
    await store.async_add("new")
    assert list(hass_storage[opt_outs.storage_key("entry")]["data"]["events"]) == ["new"]


@OPENADR_VERSIONS
async def test_implied_cancel_shows_the_event_cancelled(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    """When the VTN stops listing the event, nothing may still call it active."""
    switch = entity_id(hass, init_integration, "switch", "participation")
    status = entity_id(hass, init_integration, "sensor", "event_status")
    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: _setpoints(building) == [78.0] * 4, what="shed")
    await wait_for(lambda: state_of(hass, switch) == "on", what="take part on")
    assert state_of(hass, status) == "active"

    building.vtn.remove_event(event_id)
    await wait_for(lambda: _setpoints(building) == [None] * 4, what="release after removal")
    await wait_for(lambda: state_of(hass, status) == "cancelled", what="status cancelled")
    data: LoadshedData = init_integration.runtime_data
    view = data.current_event()
    assert view is not None
    assert (view.event_id, view.status) == (event_id, "cancelled")
    # No event left to take part in.
    assert state_of(hass, switch) == STATE_UNAVAILABLE


async def test_release_all_during_a_manual_shed_shows_it_completed(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    status = entity_id(hass, init_integration, "sensor", "event_status")
    data: LoadshedData = init_integration.runtime_data
    await data.actions.shed(1, timedelta(hours=2))
    await hass.async_block_till_done()
    assert state_of(hass, status) == "active"

    await data.actions.release_all()
    await hass.async_block_till_done()
    assert _setpoints(building) == [None] * 4
    assert state_of(hass, status) == "completed"
    view = data.current_event()
    assert view is not None
    assert view.manual
    assert view.end is not None
    assert view.end <= dt_util.utcnow()
