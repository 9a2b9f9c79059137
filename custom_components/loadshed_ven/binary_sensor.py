"""Binary sensors: shedding, the VTN reachable and (with a BBMD) the BBMD registration."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .bacnet import BbmdStatus
from .const import DOMAIN
from .coordinator import Topic
from .data import LoadshedConfigEntry, LoadshedData
from .entity import LoadshedEntity, ven_device_info
from .unique_ids import unique_id

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

# Only with a BBMD configured: a foreign device reaches the other subnet only when registered.
BBMD_REGISTERED = LoadshedBinarySensorDescription(
    key="bbmd_registered",
    translation_key="bbmd_registered",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
    is_on_fn=lambda data: data.bbmd is not None and data.bbmd.status is BbmdStatus.REGISTERED,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LoadshedConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the VEN's binary sensors."""
    ven = ven_device_info(entry)
    entities = [
        LoadshedBinarySensor(entry, description.key, ven, description)
        for description in BINARY_SENSORS
    ]
    if entry.runtime_data.bbmd is not None:
        entities.append(BbmdBinarySensor(entry, BBMD_REGISTERED.key, ven, BBMD_REGISTERED))
    else:
        # The BBMD was removed by a reconfigure: its sensor would stay behind, unavailable.
        registry = er.async_get(hass)
        stale = registry.async_get_entity_id(
            "binary_sensor", DOMAIN, unique_id(entry.entry_id, BBMD_REGISTERED.key)
        )
        if stale is not None:
            registry.async_remove(stale)
    async_add_entities(entities)


class LoadshedBinarySensor(LoadshedEntity, BinarySensorEntity):
    """A binary sensor of the VEN's state."""

    entity_description: LoadshedBinarySensorDescription

    @property
    def is_on(self) -> bool:
        """The value read from the runtime data now."""
        return self.entity_description.is_on_fn(self.data)


class BbmdBinarySensor(LoadshedBinarySensor):
    """On while the BBMD has us registered; its status and reason tell what to check."""

    topics = Topic.BBMD

    @property
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        """What the BBMD last said, and why (a refusal or no answer)."""
        if (bbmd := self.data.bbmd) is None:
            return None
        return {"status": bbmd.status, "reason": bbmd.reason}
