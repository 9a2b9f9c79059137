"""Devices and the base entity of loadshed_ven.

Three kinds of device, all flat (no parent links): the VEN itself (a service), the building
meter, and one per BACnet controller that holds override points.
"""

from __future__ import annotations

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity, EntityDescription

from .const import DOMAIN
from .coordinator import LoadshedConfigEntry
from .runtime import LoadshedRuntime

MANUFACTURER = "loadshed_ven"


def ven_device_info(entry: LoadshedConfigEntry) -> DeviceInfo:
    """The VEN: the service this config entry runs."""
    return DeviceInfo(
        identifiers={(DOMAIN, entry.entry_id)},
        name=entry.title,
        entry_type=DeviceEntryType.SERVICE,
        manufacturer=MANUFACTURER,
        model="OpenADR 2.0b VEN",
    )


def meter_device_info(entry: LoadshedConfigEntry) -> DeviceInfo:
    """The building's main meter."""
    return DeviceInfo(
        identifiers={(DOMAIN, f"{entry.entry_id}_meter")},
        name=f"{entry.title} meter",
        manufacturer=MANUFACTURER,
        model="Building meter",
    )


def controller_device_info(entry: LoadshedConfigEntry, address: str) -> DeviceInfo:
    """One BACnet controller, named by its address (IP[:port] or network:MAC)."""
    return DeviceInfo(
        identifiers={(DOMAIN, f"{entry.entry_id}_bacnet_{address}")},
        name=f"BACnet controller {address}",
        manufacturer=MANUFACTURER,
        model="BACnet controller",
    )


class LoadshedEntity(Entity):
    """An entity of one config entry, backed by its runtime."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(
        self,
        entry: LoadshedConfigEntry,
        key: str,
        device_info: DeviceInfo,
        description: EntityDescription | None = None,
    ) -> None:
        """Bind the entity to the entry's runtime; ``key`` makes the unique id."""
        if description is not None:
            self.entity_description = description
        self.runtime: LoadshedRuntime = entry.runtime_data.runtime
        self._attr_unique_id = f"{entry.entry_id}_{key}"
        self._attr_device_info = device_info


class LoadshedPushEntity(LoadshedEntity):
    """An entity whose state lives in the runtime and is pushed on every change."""

    async def async_added_to_hass(self) -> None:
        """Refresh whenever the runtime reports a change."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(self.hass, self.runtime.signal, self._handle_runtime_update)
        )

    @callback
    def _handle_runtime_update(self) -> None:
        self.async_write_ha_state()
