"""loadshed_ven: an OpenADR 2.0b VEN that sheds building load through verified BACnet overrides."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import ConfigType

from . import settings, tls
from .const import CONF_ADDRESS, DOMAIN, LOGGER, SUBENTRY_CONTROLLER
from .data import LoadshedConfigEntry
from .entry_setup import async_build, async_start
from .opt_outs import OptOutStore
from .override_ledger import async_remove_ledger
from .repair_issues import async_entry_removed
from .services import async_setup_services

PLATFORMS: Final = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.EVENT,
    Platform.SENSOR,
    Platform.SWITCH,
]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the integration's actions (they target a config entry)."""
    async_setup_services(hass)
    return True


async def async_migrate_entry(hass: HomeAssistant, entry: LoadshedConfigEntry) -> bool:
    """Version 1 -> 2: one subentry per controller, the policy in the options.

    Points are grouped by device address and kept exactly as stored, so every point key (the
    ledger's records, the switches' unique ids) stays the same; nothing else changes.
    """
    if entry.version > 2:
        return False  # written by a newer version: do not guess
    if entry.version == 1:
        data, options, controllers = settings.split_v1(entry.data)
        for controller in controllers:
            hass.config_entries.async_add_subentry(
                entry,
                ConfigSubentry(
                    data=MappingProxyType(controller),
                    subentry_type=SUBENTRY_CONTROLLER,
                    title=settings.controller_title(controller),
                    unique_id=str(controller[CONF_ADDRESS]),
                ),
            )
        hass.config_entries.async_update_entry(
            entry,
            data=data,
            options={**options, **entry.options},
            version=2,
            minor_version=1,
        )
        LOGGER.info(
            "Migrated %s to version 2: %d controller subentries", entry.title, len(controllers)
        )
    return True


async def async_setup_entry(hass: HomeAssistant, entry: LoadshedConfigEntry) -> bool:
    """Start the BACnet stack, the ledger, the meter and the VEN of one building."""
    entry.runtime_data = await async_build(hass, entry)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    async_start(hass, entry)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: LoadshedConfigEntry) -> bool:
    """Stop the VEN, release every override within the budget, free the stack."""
    if not await hass.config_entries.async_unload_platforms(entry, PLATFORMS):
        return False
    await entry.runtime_data.stop_and_release("unloading")
    await entry.runtime_data.async_close()
    return True


async def async_remove_entry(hass: HomeAssistant, entry: LoadshedConfigEntry) -> None:
    """Delete the entry's files; name any override it could not release in a repair issue."""
    await tls.async_remove_entry_files(hass, entry.entry_id)
    await OptOutStore(hass, entry.entry_id).async_remove()
    leftover = await async_remove_ledger(hass, entry.entry_id)
    if leftover:
        LOGGER.error(
            "Entry %s was deleted while %d override(s) could not be verified as released: %s",
            entry.title,
            len(leftover),
            ", ".join(s.point.key for s in leftover[:10]),
        )
    async_entry_removed(hass, entry.entry_id, entry.title, leftover)
