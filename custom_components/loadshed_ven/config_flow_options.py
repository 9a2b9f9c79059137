"""The options flow: the shed policy, applied to the running entry without a reload.

Nothing here contacts the VTN, the BACnet controllers or the meter; the entry's update
listener hands the new policy to the running entry, so an event in progress goes on.
"""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigFlowResult, OptionsFlow

from . import config_flow_schemas as schemas
from .const import (
    CONF_ACT_ON_TEST_EVENTS,
    CONF_BASELINE_MINUTES,
    CONF_METER_INTERVAL,
    CONF_METER_SOURCE,
    CONF_NORMAL_LEVEL,
    CONF_SHED_LEVEL,
    CONF_VTN_OUTAGE_MINUTES,
    DEFAULT_BASELINE_MINUTES,
    DEFAULT_METER_INTERVAL,
    DEFAULT_VTN_OUTAGE_MINUTES,
    METER_SOURCE_ENTITY,
)


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
                }
                if modbus:
                    options[CONF_METER_INTERVAL] = int(
                        user_input.get(CONF_METER_INTERVAL, DEFAULT_METER_INTERVAL)
                    )
                return self.async_create_entry(data=options)
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                schemas.options(modbus_meter=modbus), {**entry.options, **(user_input or {})}
            ),
            errors=errors,
        )
