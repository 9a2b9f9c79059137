"""The config flow's first step: which OpenADR version the VTN speaks, and its settings.

A new entry chooses between an OpenADR 2.0b VTN (URL, VEN name, certificates, fingerprint,
checked by a real registration) and an OpenADR 3.x VTN (base URL, VEN name, OAuth2 client
credentials, program, checked by a real login and program listing). Reconfiguration goes
straight to the form of the entry's version; reauthentication asks for a new client
certificate (2.0b) or new client credentials (3.x).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
)
from homeassistant.core import HomeAssistant

from . import config_flow_schemas as schemas
from . import validation
from .const import (
    CONF_CERT,
    CONF_CLIENT_ID,
    CONF_CLIENT_SECRET,
    CONF_KEY,
    CONF_OPENADR_VERSION,
    CONF_PASSPHRASE,
    CONF_POLL_INTERVAL,
    CONF_VTN_URL,
    DEFAULT_POLL_INTERVAL,
    OPENADR_2,
    OPENADR_3,
)
from .validation import FlowError
from .validation_vtn3 import validate_vtn3
from .vtn_settings import openadr_version

STEP_OPENADR_2 = "openadr2"
STEP_OPENADR_3 = "openadr3"


class VtnSteps(ConfigFlow):
    """The VTN steps of :class:`~.config_flow.LoadshedConfigFlow`, and the form helpers."""

    _data: dict[str, Any]

    # ---- helpers shared by every step of the flow ------------------------------------------

    @property
    def _reconfiguring(self) -> bool:
        return self.source == SOURCE_RECONFIGURE

    def _defaults(self) -> Mapping[str, Any]:
        """Values to pre-fill: the draft, else the entry being reconfigured."""
        if self._reconfiguring:
            entry = self._get_reconfigure_entry()
            return {**entry.data, **entry.options, **self._data}
        return self._data

    def _form(
        self,
        step_id: str,
        schema: vol.Schema,
        errors: dict[str, str] | None = None,
        placeholders: dict[str, str] | None = None,
        user_input: Mapping[str, Any] | None = None,
    ) -> ConfigFlowResult:
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(
                schema, {**self._defaults(), **(user_input or {})}
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_bacnet(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The next step (the BACnet interface)."""
        raise NotImplementedError

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Which OpenADR version the VTN speaks; reconfiguration keeps the entry's."""
        if self._reconfiguring:
            if openadr_version(self._get_reconfigure_entry().data) == OPENADR_3:
                return await self.async_step_openadr3()
            return await self.async_step_openadr2()
        return self.async_show_menu(step_id="user", menu_options=[STEP_OPENADR_2, STEP_OPENADR_3])

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Edit the VTN, the BACnet interface and the meter, starting from the VTN step."""
        return await self.async_step_user(user_input)

    async def async_step_openadr2(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """VTN URL, VEN identity and optional TLS material, checked by a real registration."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            vtn = {k: v.strip() if isinstance(v, str) else v for k, v in user_input.items()}
            try:
                info = await validation.validate_vtn(self.hass, vtn)
            except FlowError as err:
                errors[err.field] = err.key
                placeholders.update(err.placeholders)
            else:
                if await self._vtn_accepted(vtn):
                    self._data.pop(CONF_OPENADR_VERSION, None)
                    self._data["ven_fingerprint"] = info.ven_fingerprint
                    return await self.async_step_bacnet()
        return self._form(STEP_OPENADR_2, schemas.USER, errors, placeholders, user_input)

    async def async_step_openadr3(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Base URL, VEN name, OAuth2 client and program, checked by a real login."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            vtn = {k: v.strip() if isinstance(v, str) else v for k, v in user_input.items()}
            vtn[CONF_OPENADR_VERSION] = OPENADR_3
            vtn[CONF_POLL_INTERVAL] = int(vtn.get(CONF_POLL_INTERVAL) or DEFAULT_POLL_INTERVAL)
            try:
                await validate_vtn3(self.hass, vtn)
            except FlowError as err:
                errors[err.field] = err.key
                placeholders.update(err.placeholders)
            else:
                if await self._vtn_accepted(vtn):
                    return await self.async_step_bacnet()
        return self._form(STEP_OPENADR_3, schemas.USER_3, errors, placeholders, user_input)

    async def _vtn_accepted(self, vtn: dict[str, Any]) -> bool:
        """Keep the VTN settings unless another entry (or, reconfiguring, the wrong one) has them.

        Aborting raises, so False is never returned; the bool keeps the callers readable.
        """
        await self.async_set_unique_id(validation.unique_id(vtn))
        if self.source == SOURCE_RECONFIGURE:
            self._abort_if_unique_id_mismatch(reason="wrong_vtn")
        else:
            self._abort_if_unique_id_configured()
        self._data.update(vtn)
        return True

    # ---- reauthentication: a new client certificate or new client credentials -----------

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The VTN no longer accepts this VEN's certificate or client credentials."""
        if openadr_version(entry_data) == OPENADR_3:
            return await self.async_step_reauth_openadr3()
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A new certificate and key, checked by a real registration with the VTN."""
        changes = None
        if user_input is not None:
            changes = {
                CONF_CERT: str(user_input.get(CONF_CERT, "")).strip(),
                CONF_KEY: str(user_input.get(CONF_KEY, "")).strip(),
                CONF_PASSPHRASE: user_input.get(CONF_PASSPHRASE) or None,
            }
        return await self._reauth_form(
            "reauth_confirm", schemas.REAUTH, changes, validation.validate_vtn, user_input or {}
        )

    async def async_step_reauth_openadr3(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """New OAuth2 client credentials, checked by a real login with the VTN."""
        changes = None
        if user_input is not None:
            changes = {
                CONF_CLIENT_ID: str(user_input.get(CONF_CLIENT_ID, "")).strip(),
                CONF_CLIENT_SECRET: str(user_input.get(CONF_CLIENT_SECRET, "")),
            }
        current = {CONF_CLIENT_ID: self._get_reauth_entry().data.get(CONF_CLIENT_ID, "")}
        return await self._reauth_form(
            "reauth_openadr3",
            schemas.REAUTH_3,
            changes,
            validate_vtn3,
            {**current, **(user_input or {})},
        )

    async def _reauth_form(
        self,
        step_id: str,
        schema: vol.Schema,
        changes: Mapping[str, Any] | None,
        check: Callable[[HomeAssistant, Mapping[str, Any]], Awaitable[object]],
        suggested: Mapping[str, Any],
    ) -> ConfigFlowResult:
        """Check the entry's data with ``changes`` for real; store it and restart, or ask again."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        placeholders = {"vtn_url": str(entry.data.get(CONF_VTN_URL, ""))}
        if changes is not None:
            vtn = {**entry.data, **changes}
            try:
                await check(self.hass, vtn)
            except FlowError as err:
                errors[err.field] = err.key
                placeholders.update(err.placeholders)
            else:
                return self._reauthenticated(entry, vtn)
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _reauthenticated(self, entry: ConfigEntry, vtn: Mapping[str, Any]) -> ConfigFlowResult:
        data = {k: v for k, v in vtn.items() if v not in (None, "")}
        self.hass.config_entries.async_update_entry(entry, data=data)
        if entry.state is not ConfigEntryState.LOADED:
            # Not running, so no update listener: start it with the new credentials.
            self.hass.config_entries.async_schedule_reload(entry.entry_id)
        return self.async_abort(reason="reauth_successful")


__all__ = ["OPENADR_2", "STEP_OPENADR_2", "STEP_OPENADR_3", "VtnSteps"]
