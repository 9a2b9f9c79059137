"""An event entity that shows the VEN's activity (the entry's bus events), for the logbook."""

from __future__ import annotations

from typing import Final

from homeassistant.components.event import EventEntity
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .bus_events import BUS_EVENTS
from .const import DOMAIN
from .coordinator import Topic
from .data import LoadshedConfigEntry
from .entity import LoadshedEntity, ven_device_info
from .unique_ids import ACTIVITY

# Pushed by the coordinator: nothing to throttle.
PARALLEL_UPDATES = 0

_PREFIX: Final = f"{DOMAIN}_"


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
    topics = Topic.ACTIVITY

    def __init__(self, entry: LoadshedConfigEntry) -> None:
        """Show the activity of ``entry`` only."""
        super().__init__(entry, ACTIVITY, ven_device_info(entry))
        self._attr_event_types = [event_type.removeprefix(_PREFIX) for event_type in BUS_EVENTS]

    @callback
    def _handle_coordinator_update(self) -> None:
        # One state per bus event, in the order they were fired: each is a logbook line.
        for activity in self.coordinator.data.activity:
            self._trigger_event(activity.event_type.removeprefix(_PREFIX), activity.data)
            self.async_write_ha_state()
