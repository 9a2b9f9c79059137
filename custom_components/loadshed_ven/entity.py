"""The devices and the one base entity of loadshed_ven.

Three kinds of device, all flat (no parent links): the VEN itself (a service), the building
meter, and one per BACnet controller that holds override points. Every entity is fed by the
entry's :class:`LoadshedCoordinator` and refreshes only for the topics it shows.
"""

from __future__ import annotations

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import CONF_NAME, DOMAIN
from .coordinator import LoadshedCoordinator, Topic
from .data import LoadshedConfigEntry, LoadshedData
from .unique_ids import controller_device_id, meter_device_id, unique_id

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
        identifiers={(DOMAIN, meter_device_id(entry.entry_id))},
        name=f"{entry.title} meter",
        manufacturer=MANUFACTURER,
        model="Building meter",
    )


def controller_device_name(
    entry: LoadshedConfigEntry, address: str, subentry_id: str | None
) -> str:
    """Its controller subentry's title when the controller was given a name, else its address."""
    subentry = entry.subentries.get(subentry_id) if subentry_id is not None else None
    if subentry is not None and subentry.data.get(CONF_NAME):
        return subentry.title
    return f"BACnet controller {address}"


def controller_device_info(
    entry: LoadshedConfigEntry, address: str, subentry_id: str | None
) -> DeviceInfo:
    """One BACnet controller (IP[:port] or network:MAC), of the subentry that configures it.

    The device is linked to that subentry by adding its entities with ``config_subentry_id``.
    """
    return DeviceInfo(
        identifiers={(DOMAIN, controller_device_id(entry.entry_id, address))},
        name=controller_device_name(entry, address, subentry_id),
        manufacturer=MANUFACTURER,
        model="BACnet controller",
    )


class LoadshedEntity(CoordinatorEntity[LoadshedCoordinator]):
    """An entity of one config entry, showing what its runtime data holds."""

    _attr_has_entity_name = True
    # What the entity shows: it writes its state only when an update is about one of these.
    topics: Topic = Topic.STATE

    def __init__(
        self,
        entry: LoadshedConfigEntry,
        key: str,
        device_info: DeviceInfo,
        description: EntityDescription | None = None,
    ) -> None:
        """Bind the entity to the entry's runtime data; ``key`` makes the unique id."""
        super().__init__(entry.runtime_data.coordinator)
        if description is not None:
            self.entity_description = description
        self.data: LoadshedData = entry.runtime_data
        self._attr_unique_id = unique_id(entry.entry_id, key)
        self._attr_device_info = device_info

    @callback
    def _handle_coordinator_update(self) -> None:
        if self.coordinator.data.topics & self.topics:
            self.async_write_ha_state()
