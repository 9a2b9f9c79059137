"""The one channel through which a config entry's state reaches its entities.

Nothing here polls: the VEN, the shed passes, the ledger's retries and the meter push. Each push
says what changed (:class:`Topic`), so that a meter reading every few seconds does not make
thousands of override switches write their state, and carries the activity (the bus events)
since the last push, for the event entity. Activity reported in a burst (a release of 500
points) is delivered as one update once the burst yields, not as 500.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Flag, auto
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from .const import DOMAIN, LOGGER

if TYPE_CHECKING:
    from .data import LoadshedConfigEntry


class Topic(Flag):
    """What an update is about; an entity refreshes only for the topics it shows."""

    NONE = 0
    STATE = auto()  # events, level, points, the VTN connection
    METER = auto()  # a meter reading (good or failed)
    ACTIVITY = auto()  # bus events fired since the last update
    BBMD = auto()  # the BBMD registration's status


@dataclass(frozen=True, slots=True)
class Activity:
    """One bus event of the entry, as the event entity shows it."""

    event_type: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EntryUpdate:
    """One push to the entities: what changed, and the activity since the last push."""

    topics: Topic
    activity: tuple[Activity, ...] = field(default=())


class LoadshedCoordinator(DataUpdateCoordinator[EntryUpdate]):
    """Pushes an :class:`EntryUpdate` to the entities whenever the entry's state changes."""

    def __init__(self, hass: HomeAssistant, entry: LoadshedConfigEntry) -> None:
        """A push-only coordinator: no update interval and nothing to fetch."""
        super().__init__(hass, LOGGER, config_entry=entry, name=f"{DOMAIN} {entry.title}")
        self.data = EntryUpdate(Topic.NONE)
        self._topics = Topic.NONE
        self._activity: list[Activity] = []
        self._flush_pending = False

    async def _async_update_data(self) -> EntryUpdate:
        # A refresh (e.g. `homeassistant.update_entity`) has nothing to fetch: state is pushed.
        return EntryUpdate(Topic.STATE)

    @callback
    def push(self, topics: Topic) -> None:
        """Tell the entities that ``topics`` changed, with any activity not yet delivered."""
        self._topics |= topics
        self._flush()

    @callback
    def add_activity(self, activity: Activity) -> None:
        """Queue one bus event for the event entity; delivered once the current burst yields."""
        self._activity.append(activity)
        self._topics |= Topic.ACTIVITY
        if not self._flush_pending:
            self._flush_pending = True
            self.hass.loop.call_soon(self._deferred_flush)

    @callback
    def _deferred_flush(self) -> None:
        self._flush_pending = False
        if self._topics:
            self._flush()

    @callback
    def _flush(self) -> None:
        update = EntryUpdate(self._topics, tuple(self._activity))
        self._topics = Topic.NONE
        self._activity = []
        self.async_set_updated_data(update)
