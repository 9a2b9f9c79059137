"""Config flow: VTN, BACnet points, meter and shed policy, each validated for real.

First set-up walks every step and creates the entry with one subentry per controller (so one
pass sets up a working building). Reconfiguration edits the VTN, the BACnet interface and the
meter only, each step pre-filled from the entry: controllers have their own subentry flow
(:mod:`.config_flow_controller`) and the policy the options flow (:mod:`.config_flow_options`).
Reconfiguration and reauthentication update the entry and abort; the entry's update listener
reloads it (:func:`.entry_setup.async_entry_updated`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from ipaddress import IPv4Network
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlowResult,
    ConfigSubentryData,
    ConfigSubentryFlow,
    OptionsFlow,
)
from homeassistant.core import callback

from . import config_flow_schemas as schemas
from . import settings, validation
from .building_meter import read_energy_register
from .config_flow_controller import ControllerSubentryFlow
from .config_flow_options import PolicyOptionsFlow
from .config_flow_vtn import VtnSteps
from .const import (
    CONF_ACT_ON_TEST_EVENTS,
    CONF_BASELINE_MINUTES,
    CONF_CHECK_REACHABLE,
    CONF_ENERGY_REGISTER,
    CONF_HOST,
    CONF_MAX_KW,
    CONF_METER_ENTITY,
    CONF_METER_SOURCE,
    CONF_NORMAL_LEVEL,
    CONF_POINT_MODE,
    CONF_POINTS,
    CONF_SHED_LEVEL,
    CONF_VEN_NAME,
    CONF_VTN_OUTAGE_MINUTES,
    DEFAULT_BASELINE_MINUTES,
    DEFAULT_VTN_OUTAGE_MINUTES,
    DOMAIN,
    METER_SOURCE_MODBUS,
    POINT_MODE_SEED,
    SUBENTRY_CONTROLLER,
)
from .engine.points import OverridePoint, point_to_dict
from .modbus.meter import DEFAULT_MAX_KW, MeterError
from .validation import FlowError


async def _check_energy_register(meter: Mapping[str, Any]) -> None:
    """The optional energy register reads (float32 kWh, on the power's connection settings)."""
    try:
        await read_energy_register(meter)
    except MeterError as err:
        placeholders = {"error": str(err)}
        raise FlowError(CONF_ENERGY_REGISTER, "energy_register_failed", placeholders) from None


class LoadshedConfigFlow(VtnSteps, domain=DOMAIN):
    """Set up or reconfigure one VEN.

    Version 2: VTN, BACnet interface and meter in ``data``, the policy in ``options``, one
    subentry per controller; ``async_migrate_entry`` upgrades version 1 entries.
    """

    VERSION = 2
    MINOR_VERSION = 1

    def __init__(self) -> None:
        """Start with an empty draft."""
        self._data: dict[str, Any] = {}
        self._unreachable: list[str] = []

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Each BACnet controller is a subentry: added, edited or removed on its own."""
        return {SUBENTRY_CONTROLLER: ControllerSubentryFlow}

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> OptionsFlow:
        """The shed policy, applied to the running entry without a reload."""
        return PolicyOptionsFlow()

    # ---- step 2: BACnet ------------------------------------------------------------------

    async def async_step_bacnet(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Local interface and port, static routes, and how points are entered."""
        errors: dict[str, str] = {}
        placeholders = {"ven_fingerprint": self._data.get("ven_fingerprint") or "-"}
        if user_input is not None:
            try:
                bacnet = validation.validate_bacnet(user_input)
                replacing = self._get_reconfigure_entry().data if self._reconfiguring else None
                await validation.check_port_free(self.hass, bacnet, replacing=replacing)
            except FlowError as err:
                errors[err.field] = err.key
                placeholders.update(err.placeholders)
            else:
                self._data.update(bacnet)
                if self._reconfiguring:
                    return await self.async_step_meter()
                if bacnet[CONF_POINT_MODE] == POINT_MODE_SEED:
                    return await self.async_step_points_seed()
                return await self.async_step_points_bulk()
        default_interface = await validation.default_interface(self.hass)
        schema = schemas.bacnet(default_interface, with_points=not self._reconfiguring)
        return self._form("bacnet", schema, errors, placeholders, user_input)

    async def async_step_points_seed(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The seed's way: one point definition applied to a list of device addresses."""
        return await self._points_step(
            "points_seed", schemas.POINTS_SEED, validation.seed_points, user_input
        )

    async def async_step_points_bulk(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """One point per line, with a value for each SIMPLE level."""
        return await self._points_step(
            "points_bulk", schemas.POINTS_BULK, validation.bulk_points, user_input
        )

    async def _points_step(
        self,
        step_id: str,
        schema: vol.Schema,
        parse: Callable[[Mapping[str, Any], IPv4Network | None], list[OverridePoint]],
        user_input: dict[str, Any] | None,
    ) -> ConfigFlowResult:
        """Show a points form, or parse it and move on."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            try:
                # Pure parsing, but thousands of lines take a tenth of a second or more:
                # kept off the event loop.
                points = await self.hass.async_add_executor_job(
                    parse, user_input, settings.local_network(self._defaults())
                )
            except FlowError as err:
                errors[err.field] = err.key
                placeholders.update(err.placeholders)
            else:
                return await self._points_accepted(points, user_input)
        return self._form(step_id, schema, errors, placeholders, user_input)

    async def _points_accepted(
        self, points: list[OverridePoint], user_input: Mapping[str, Any]
    ) -> ConfigFlowResult:
        # The form's text is not kept: the points go to the controller subentries.
        self._data[CONF_POINTS] = [point_to_dict(p) for p in points]
        if self._data.get(CONF_CHECK_REACHABLE):
            self._unreachable = await validation.unreachable_points(self.hass, self._data, points)
            if self._unreachable:
                return await self.async_step_reachability()
        return await self.async_step_meter()

    async def async_step_reachability(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the points that did not answer; the user may continue or go back."""
        if user_input is not None:
            return await self.async_step_meter()
        return self.async_show_form(
            step_id="reachability",
            data_schema=vol.Schema({}),
            description_placeholders={
                "count": str(len(self._unreachable)),
                "points": "\n".join(f"- {line}" for line in self._unreachable[:50]),
            },
        )

    # ---- step 3: the meter ---------------------------------------------------------------

    async def async_step_meter(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Where the building's kW comes from."""
        if user_input is not None:
            self._data[CONF_METER_SOURCE] = user_input[CONF_METER_SOURCE]
            if user_input[CONF_METER_SOURCE] == METER_SOURCE_MODBUS:
                return await self.async_step_meter_modbus()
            return await self.async_step_meter_entity()
        return self._form("meter", schemas.METER)

    async def async_step_meter_modbus(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A Modbus TCP meter, checked with a real read."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            meter = {**user_input, CONF_HOST: str(user_input[CONF_HOST]).strip()}
            try:
                kw = await validation.read_meter(meter)
                await _check_energy_register(meter)
            except FlowError as err:
                errors[err.field] = err.key
                placeholders.update(err.placeholders)
            else:
                self._data.pop(CONF_ENERGY_REGISTER, None)  # left empty: the power is integrated
                self._data.update(meter)
                self._data["meter_first_kw"] = kw
                return await self._meter_done()
        return self._form("meter_modbus", schemas.METER_MODBUS, errors, placeholders, user_input)

    async def async_step_meter_entity(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """An existing Home Assistant power sensor."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            try:
                validation.check_meter_entity(
                    self.hass,
                    user_input[CONF_METER_ENTITY],
                    float(user_input.get(CONF_MAX_KW, DEFAULT_MAX_KW)),
                )
            except FlowError as err:
                errors[err.field] = err.key
                placeholders.update(err.placeholders)
            else:
                self._data.update(user_input)
                return await self._meter_done()
        return self._form("meter_entity", schemas.METER_ENTITY, errors, placeholders, user_input)

    async def _meter_done(self) -> ConfigFlowResult:
        if self._reconfiguring:
            return self._finish_reconfigure()
        return await self.async_step_policy()

    # ---- step 4: shed policy -------------------------------------------------------------

    async def async_step_policy(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Which SIMPLE level sheds, which is normal, and whether test events act."""
        errors: dict[str, str] = {}
        if user_input is not None:
            shed, normal = int(user_input[CONF_SHED_LEVEL]), int(user_input[CONF_NORMAL_LEVEL])
            if normal >= shed:
                errors[CONF_NORMAL_LEVEL] = "normal_not_below_shed"
            else:
                self._data.update(
                    {
                        CONF_SHED_LEVEL: shed,
                        CONF_NORMAL_LEVEL: normal,
                        CONF_ACT_ON_TEST_EVENTS: user_input[CONF_ACT_ON_TEST_EVENTS],
                        CONF_BASELINE_MINUTES: int(
                            user_input.get(CONF_BASELINE_MINUTES, DEFAULT_BASELINE_MINUTES)
                        ),
                        CONF_VTN_OUTAGE_MINUTES: int(
                            user_input.get(CONF_VTN_OUTAGE_MINUTES, DEFAULT_VTN_OUTAGE_MINUTES)
                        ),
                    }
                )
                return self._finish()
        return self._form("policy", schemas.POLICY, errors, user_input=user_input)

    def _finish(self) -> ConfigFlowResult:
        data, options, controllers = settings.split_v1(validation.entry_data(self._data))
        return self.async_create_entry(
            title=data[CONF_VEN_NAME],
            data=data,
            options=options,
            subentries=[
                ConfigSubentryData(
                    data=controller,
                    subentry_type=SUBENTRY_CONTROLLER,
                    title=settings.controller_title(controller),
                    unique_id=str(controller["address"]),
                )
                for controller in controllers
            ],
        )

    def _finish_reconfigure(self) -> ConfigFlowResult:
        """Store the new VTN, interface and meter; the update listener reloads the entry.

        Not ``async_update_reload_and_abort``: with an update listener it reloads twice, and
        Home Assistant refuses that pairing from 2026.12.
        """
        entry = self._get_reconfigure_entry()
        data, options, _ = settings.split_v1(validation.entry_data(self._data))
        self.hass.config_entries.async_update_entry(
            entry, data=data, options={**entry.options, **options}
        )
        return self.async_abort(reason="reconfigure_successful")
