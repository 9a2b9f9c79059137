"""An event entity mirroring the VEN's bus events, for automations and the logbook."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from homeassistant.components.event import EventEntity
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .coordinator import LoadshedConfigEntry
from .entity import LoadshedEntity, ven_device_info
from .runtime import (
    EVENT_CANCELLED,
    EVENT_LEVEL_CHANGED,
    EVENT_MODIFIED,
    EVENT_OPTED_IN,
    EVENT_OPTED_OUT,
    EVENT_POINT_FAILED,
    EVENT_POINT_RELEASED,
    EVENT_RECEIVED,
    EVENT_SHED_ENDED,
    EVENT_SHED_STARTED,
)

# Push entity: nothing to throttle.
PARALLEL_UPDATES = 0

BUS_EVENTS: Final = (
    EVENT_RECEIVED,
    EVENT_MODIFIED,
    EVENT_CANCELLED,
    EVENT_LEVEL_CHANGED,
    EVENT_SHED_STARTED,
    EVENT_SHED_ENDED,
    EVENT_POINT_RELEASED,
    EVENT_POINT_FAILED,
    EVENT_OPTED_OUT,
    EVENT_OPTED_IN,
)
_PREFIX: Final = f"{DOMAIN}_"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LoadshedConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the VEN's activity event entity."""
    async_add_entities([VenActivityEvent(entry)])


class VenActivityEvent(LoadshedEntity, EventEntity):
    """Fires for every VTN event change, level change and override release or failure."""

    _attr_translation_key = "activity"

    def __init__(self, entry: LoadshedConfigEntry) -> None:
        """Listen for the bus events of ``entry`` only."""
        super().__init__(entry, "activity", ven_device_info(entry))
        self._attr_event_types = [event_type.removeprefix(_PREFIX) for event_type in BUS_EVENTS]
        self._entry_id = entry.entry_id

    async def async_added_to_hass(self) -> None:
        """Subscribe to the entry's bus events."""
        await super().async_added_to_hass()
        for event_type in BUS_EVENTS:
            self.async_on_remove(
                self.hass.bus.async_listen(
                    event_type, self._handle_bus_event, event_filter=self._is_ours
                )
            )

    @callback
    def _is_ours(self, event_data: Mapping[str, Any]) -> bool:
        return bool(event_data.get(ATTR_CONFIG_ENTRY_ID) == self._entry_id)

    @callback
    def _handle_bus_event(self, event: Event[Mapping[str, Any]]) -> None:
        attributes = {k: v for k, v in event.data.items() if k != ATTR_CONFIG_ENTRY_ID}
        self._trigger_event(str(event.event_type).removeprefix(_PREFIX), attributes)
        self.async_write_ha_state()
