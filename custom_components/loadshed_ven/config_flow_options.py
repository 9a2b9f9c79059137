"""The options flow: the shed policy, applied to the running entry without a reload.

Nothing here contacts the VTN, the BACnet controllers or the meter; the entry's update
listener hands the new policy to the running entry, so an event in progress goes on.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigFlowResult, OptionsFlow
from homeassistant.helpers import selector

from . import config_flow_schemas as schemas
from .const import (
    CONF_ACT_ON_TEST_EVENTS,
    CONF_BASELINE_MINUTES,
    CONF_METER_INTERVAL,
    CONF_METER_SOURCE,
    CONF_NORMAL_LEVEL,
    CONF_RELEASE_WINDOW,
    CONF_SHED_LEVEL,
    CONF_SWITCHES,
    CONF_VTN_OUTAGE_MINUTES,
    DEFAULT_BASELINE_MINUTES,
    DEFAULT_METER_INTERVAL,
    DEFAULT_RELEASE_WINDOW,
    DEFAULT_VTN_OUTAGE_MINUTES,
    METER_SOURCE_ENTITY,
    SWITCHES_PER_CONTROLLER,
    SWITCHES_PER_POINT,
)
from .engine.release_waves import MAX_RELEASE_MINUTES

# One switch per point, or one per controller: the switches are re-created when it changes.
SWITCHES_FIELD = {
    vol.Required(CONF_SWITCHES, default=SWITCHES_PER_POINT): selector.SelectSelector(
        selector.SelectSelectorConfig(
            options=[SWITCHES_PER_POINT, SWITCHES_PER_CONTROLLER], translation_key=CONF_SWITCHES
        )
    )
}

# Minutes over which an event's end releases the points, in waves (0: all at once).
RELEASE_FIELD = {
    vol.Required(CONF_RELEASE_WINDOW, default=DEFAULT_RELEASE_WINDOW): selector.NumberSelector(
        selector.NumberSelectorConfig(
            min=0,
            max=MAX_RELEASE_MINUTES,
            step=1,
            mode=selector.NumberSelectorMode.BOX,
        )
    )
}


class PolicyOptionsFlow(OptionsFlow):
    """Shed and normal level, test events, baseline, VTN outage alert, meter interval."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form; the normal level must stay below the shed level."""
        entry = self.config_entry
        modbus = entry.data.get(CONF_METER_SOURCE) != METER_SOURCE_ENTITY
        errors: dict[str, str] = {}
        if user_input is not None:
            shed, normal = int(user_input[CONF_SHED_LEVEL]), int(user_input[CONF_NORMAL_LEVEL])
            if normal >= shed:
                errors[CONF_NORMAL_LEVEL] = "normal_not_below_shed"
            else:
                options: dict[str, Any] = {
                    **entry.options,
                    CONF_SHED_LEVEL: shed,
                    CONF_NORMAL_LEVEL: normal,
                    CONF_ACT_ON_TEST_EVENTS: bool(user_input[CONF_ACT_ON_TEST_EVENTS]),
                    CONF_BASELINE_MINUTES: int(
                        user_input.get(CONF_BASELINE_MINUTES, DEFAULT_BASELINE_MINUTES)
                    ),
                    CONF_VTN_OUTAGE_MINUTES: int(
                        user_input.get(CONF_VTN_OUTAGE_MINUTES, DEFAULT_VTN_OUTAGE_MINUTES)
                    ),
                    CONF_SWITCHES: user_input.get(CONF_SWITCHES, SWITCHES_PER_POINT),
                    CONF_RELEASE_WINDOW: int(
                        user_input.get(CONF_RELEASE_WINDOW, DEFAULT_RELEASE_WINDOW)
                    ),
                }
                if modbus:
                    options[CONF_METER_INTERVAL] = int(
                        user_input.get(CONF_METER_INTERVAL, DEFAULT_METER_INTERVAL)
                    )
                return self.async_create_entry(data=options)
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                schemas.options(modbus_meter=modbus).extend(SWITCHES_FIELD).extend(RELEASE_FIELD),
                {**entry.options, **(user_input or {})},
            ),
            errors=errors,
        )
