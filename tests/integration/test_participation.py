"""Opting out of (and back in to) an event from the participation switch."""

from __future__ import annotations

from datetime import timedelta

from homeassistant.components.switch.const import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF, SERVICE_TURN_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from sim.building import SimBuilding

from .conftest import IP_DEVICES, ROUTED_DEVICE, SETPOINT, VEN_NAME, slot, wait_for
from .test_platforms import entity_id, state_of


def _setpoints(building: SimBuilding) -> list[object]:
    return [slot(building, a, SETPOINT, 10) for a in [*IP_DEVICES, ROUTED_DEVICE]]


def _opts(building: SimBuilding, event_id: str) -> list[str]:
    ven_id = building.vtn.ven_id_for(VEN_NAME)
    return [o.opt_type for o in building.vtn.opts if o.event_id == event_id and o.ven_id == ven_id]


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
