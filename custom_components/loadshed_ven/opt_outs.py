"""Opt-outs that outlive a restart.

The VTN re-delivers its events after every registration, and without this record an event the
operator opted out of would be answered ``optIn`` and shed again after a restart or a reload.
Each id is kept with the time of the opt-out and forgotten after :data:`KEEP` (OpenADR events
last hours, not weeks), so the file stays small without knowing when each event ends.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN, LOGGER

STORAGE_VERSION: Final = 1
KEEP: Final = timedelta(days=7)


def storage_key(entry_id: str) -> str:
    """The Store key of an entry's opt-outs."""
    return f"{DOMAIN}.{entry_id}.opt_outs"


class OptOutStore:
    """The event ids one entry has opted out of, on disk."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Nothing is read until :meth:`async_load`."""
        self._store: Store[dict[str, Any]] = Store(hass, STORAGE_VERSION, storage_key(entry_id))
        self._since: dict[str, datetime] = {}
        # The ids opted out of now: one set, read by whoever shows or schedules events.
        self.ids: set[str] = set()

    async def async_load(self) -> set[str]:
        """Read the ids opted out of within :data:`KEEP` into :attr:`ids` (unreadable: none)."""
        try:
            stored = await self._store.async_load()
        except (HomeAssistantError, ValueError) as err:
            LOGGER.error("Opt-outs could not be read (%s); starting without them", err)
            stored = None
        events = stored.get("events") if isinstance(stored, dict) else None
        oldest = dt_util.utcnow() - KEEP
        self._since = {}
        for event_id, when in (events or {}).items() if isinstance(events, dict) else ():
            at = dt_util.parse_datetime(when) if isinstance(when, str) else None
            if isinstance(event_id, str) and at is not None and at.tzinfo and at >= oldest:
                self._since[event_id] = at
        self.ids.clear()
        self.ids.update(self._since)
        return self.ids

    async def async_add(self, event_id: str) -> None:
        """Opt out of ``event_id`` and save."""
        self.ids.add(event_id)
        await self._async_save()

    async def async_discard(self, event_id: str) -> None:
        """Take part in ``event_id`` again and save."""
        self.ids.discard(event_id)
        await self._async_save()

    async def _async_save(self) -> None:
        """Record exactly :attr:`ids` (new ones dated now), dropping expired ones."""
        now = dt_util.utcnow()
        self._since = {
            event_id: self._since.get(event_id, now)
            for event_id in self.ids
            if self._since.get(event_id, now) >= now - KEEP
        }
        await self._store.async_save(
            {"events": {k: v.isoformat() for k, v in sorted(self._since.items())}}
        )

    async def async_remove(self) -> None:
        """Delete the file (the entry is being deleted)."""
        await self._store.async_remove()
