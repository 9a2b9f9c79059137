"""Binary sensors: whether the building is shedding and whether the VTN is reachable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import LoadshedConfigEntry, LoadshedData
from .entity import LoadshedEntity, ven_device_info

# Pushed by the coordinator: nothing to throttle.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class LoadshedBinarySensorDescription(BinarySensorEntityDescription):
    """A binary sensor whose value is read from the entry's runtime data."""

    is_on_fn: Callable[[LoadshedData], bool]


BINARY_SENSORS: tuple[LoadshedBinarySensorDescription, ...] = (
    LoadshedBinarySensorDescription(
        key="shed_active",
        translation_key="shed_active",
        is_on_fn=lambda data: data.shedding,
    ),
    LoadshedBinarySensorDescription(
        key="vtn_connected",
        translation_key="vtn_connected",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda data: data.connected,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LoadshedConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the VEN's binary sensors."""
    ven = ven_device_info(entry)
    async_add_entities(
        LoadshedBinarySensor(entry, description.key, ven, description)
        for description in BINARY_SENSORS
    )


class LoadshedBinarySensor(LoadshedEntity, BinarySensorEntity):
    """A binary sensor of the VEN's state."""

    entity_description: LoadshedBinarySensorDescription

    @property
    def is_on(self) -> bool:
        """The value read from the runtime data now."""
        return self.entity_description.is_on_fn(self.data)
