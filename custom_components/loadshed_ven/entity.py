"""The devices and the one base entity of loadshed_ven.

Three kinds of device, all flat (no parent links): the VEN itself (a service), the building
meter, and one per BACnet controller that holds override points. Every entity is fed by the
entry's :class:`LoadshedCoordinator` and refreshes only for the topics it shows.
"""

from __future__ import annotations

from typing import Final
from weakref import WeakKeyDictionary

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import CONF_NAME, DOMAIN
from .coordinator import LoadshedCoordinator, Topic
from .data import LoadshedConfigEntry, LoadshedData
from .unique_ids import controller_device_id, meter_device_id, unique_id

MANUFACTURER = "loadshed_ven"
# States written in one turn of the event loop. A push about the points reaches thousands of
# switches at once; writing them all in one callback held the loop for well over 100 ms.
WRITE_BATCH: Final = 250


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


class StateWriter:
    """Writes entities' states, at most :data:`WRITE_BATCH` in one turn of the event loop.

    The first ones of a push are written at once (so a small building's entities, and the
    switch an operator just used, show the change before the action returns); the rest follow
    over the next turns, in the order they were asked for.
    """

    def __init__(self, hass: HomeAssistant) -> None:
        """Write through ``hass``'s loop."""
        self._hass = hass
        self._waiting: dict[LoadshedEntity, None] = {}
        self._written = 0
        self._turn_scheduled = False

    @callback
    def write(self, entity: LoadshedEntity) -> None:
        """Write ``entity``'s state now, or in a later turn when this one wrote enough."""
        if self._written < WRITE_BATCH and not self._waiting:
            self._written += 1
            entity.async_write_ha_state()
        else:
            self._waiting[entity] = None
        if not self._turn_scheduled:
            self._turn_scheduled = True
            self._hass.loop.call_soon(self._next_turn)

    @callback
    def _next_turn(self) -> None:
        self._turn_scheduled = False
        self._written = 0
        while self._waiting and self._written < WRITE_BATCH:
            entity = next(iter(self._waiting))
            del self._waiting[entity]
            platform = entity.platform
            # An entity removed meanwhile has nothing to write.
            if platform is not None and platform.entities.get(entity.entity_id) is entity:
                self._written += 1
                entity.async_write_ha_state()
        if self._waiting or self._written:
            self._turn_scheduled = True
            self._hass.loop.call_soon(self._next_turn)


_WRITERS: WeakKeyDictionary[LoadshedCoordinator, StateWriter] = WeakKeyDictionary()


def state_writer(coordinator: LoadshedCoordinator) -> StateWriter:
    """The writer shared by every entity of one entry."""
    if (writer := _WRITERS.get(coordinator)) is None:
        writer = _WRITERS[coordinator] = StateWriter(coordinator.hass)
    return writer


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
        self._writer = state_writer(self.coordinator)

    @callback
    def _handle_coordinator_update(self) -> None:
        if self.coordinator.data.topics & self.topics:
            self._writer.write(self)
