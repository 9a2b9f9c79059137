"""One switch per override point: on while our value is verifiably held in its priority slot.

Turning a switch off releases the point (NULL at its priority) for the rest of the event; turning
it on writes the level's value again. Either way the state shown is what the controller's
priority array was read back to hold, never what was merely asked for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Final

from homeassistant.components.switch import SwitchEntity
from homeassistant.components.switch.const import DOMAIN as SWITCH_DOMAIN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .data import LoadshedConfigEntry
from .engine.event_history import EventStatus
from .engine.overrides import PointState, PointStatus
from .engine.points import OverridePoint
from .entity import (
    LoadshedEntity,
    controller_device_info,
    controller_device_name,
    ven_device_info,
)
from .unique_ids import PARTICIPATION, controller_device_id, controller_device_prefix, unique_id

# Each action is a BACnet write and read-back; the controller serialises them anyway.
PARALLEL_UPDATES = 1

ATTR_ADDRESS = "address"
ATTR_OBJECT = "object"
ATTR_PRIORITY = "priority"
ATTR_BASE_VALUE = "base_value"
# Switches added at once. Adding thousands in one call kept the event loop busy for about a
# second (entity registry, device registry, first state write per entity).
ADD_BATCH: Final = 100


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LoadshedConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a switch for every configured override point; forget points no longer configured."""
    points = [state.point for state in entry.runtime_data.point_states()]
    remove_stale(hass, entry, points)
    async_add_entities([ParticipationSwitch(entry)])

    def _add(new: list[OverridePoint], subentry_id: str | None) -> None:
        """Points added to the running entry (a controller subentry added or edited)."""
        async_add_entities(
            [OverrideSwitch(entry, point, subentry_id) for point in new],
            config_subentry_id=subentry_id,
        )

    entry.runtime_data.add_switches = _add
    # Each point's switch (and so its controller's device) belongs to its controller subentry.
    subentry_of = entry.runtime_data.settings.subentry_of
    by_subentry: dict[str | None, list[OverridePoint]] = {}
    for point in points:
        by_subentry.setdefault(subentry_of.get(point.key), []).append(point)
    added = 0
    for subentry_id, own in by_subentry.items():
        for start in range(0, len(own), ADD_BATCH):
            if added:
                # Home Assistant starts adding each batch eagerly; yielding lets the loop run.
                await asyncio.sleep(0)
            batch = own[start : start + ADD_BATCH]
            async_add_entities(
                [OverrideSwitch(entry, point, subentry_id) for point in batch],
                config_subentry_id=subentry_id,
            )
            added += len(batch)


def remove_stale(
    hass: HomeAssistant, entry: LoadshedConfigEntry, points: list[OverridePoint]
) -> None:
    """Drop the switches and controller devices of points no longer configured."""
    entity_registry = er.async_get(hass)
    unique_ids = {
        unique_id(entry.entry_id, key) for key in (PARTICIPATION, *(p.key for p in points))
    }
    for entity in er.async_entries_for_config_entry(entity_registry, entry.entry_id):
        if entity.domain == SWITCH_DOMAIN and entity.unique_id not in unique_ids:
            entity_registry.async_remove(entity.entity_id)
    device_registry = dr.async_get(hass)
    prefix = controller_device_prefix(entry.entry_id)
    wanted = {controller_device_id(entry.entry_id, point.address) for point in points}
    for device in dr.async_entries_for_config_entry(device_registry, entry.entry_id):
        ours = {ident for domain, ident in device.identifiers if domain == DOMAIN}
        if any(ident.startswith(prefix) for ident in ours) and not ours & wanted:
            device_registry.async_remove_device(device.id)


def rename_controller_devices(
    hass: HomeAssistant, entry: LoadshedConfigEntry, subentry_of: Mapping[str, str]
) -> None:
    """Name each controller's device after its subentry again (a controller renamed)."""
    points = {state.point.key: state.point for state in entry.runtime_data.point_states()}
    names = {
        controller_device_id(entry.entry_id, point.address): controller_device_name(
            entry, point.address, subentry_of.get(key)
        )
        for key, point in points.items()
    }
    device_registry = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(device_registry, entry.entry_id):
        for domain, ident in device.identifiers:
            name = names.get(ident) if domain == DOMAIN else None
            if name is not None and name != device.name:
                device_registry.async_update_device(device.id, name=name)


class OverrideSwitch(LoadshedEntity, SwitchEntity):
    """An override point on a BACnet controller."""

    _attr_translation_key = "override"
    # Fixed facts about the point: no need to store them with every state change.
    _unrecorded_attributes = frozenset({ATTR_ADDRESS, ATTR_OBJECT, ATTR_PRIORITY})

    def __init__(
        self, entry: LoadshedConfigEntry, point: OverridePoint, subentry_id: str | None
    ) -> None:
        """Bind the switch to ``point``, on its controller's device (of ``subentry_id``)."""
        device = controller_device_info(entry, point.address, subentry_id)
        super().__init__(entry, point.key, device)
        self._key = point.key
        self._attr_name = point.label

    @property
    def _state(self) -> PointState:
        return self.data.controller.state(self._key)

    @property
    def is_on(self) -> bool | None:
        """On while held (or owned by a higher slot), off when released, else unknown."""
        status = self._state.status
        if status in (PointStatus.FAILED, PointStatus.PENDING):
            return None
        return status in (PointStatus.HELD, PointStatus.OWNED)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """What the controller holds for this point, for operators and automations."""
        state = self._state
        point = state.point
        attributes: dict[str, Any] = {
            ATTR_ADDRESS: point.address,
            ATTR_OBJECT: f"{point.object_type},{point.instance}",
            ATTR_PRIORITY: point.priority,
            "written_value": state.written_value,
            "event_id": state.event_id,
            "written_at": state.written_at.isoformat() if state.written_at else None,
            "verified": state.verified,
            "owner_priority": state.owner_priority,
            "failure": str(state.failure) if state.failure is not None else None,
            "operator_released": state.operator_released,
        }
        if state.base_value is not None:
            # An offset point's value in force when the shed started: what it adds its delta to.
            attributes[ATTR_BASE_VALUE] = state.base_value
        return attributes

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Release the point for the rest of the current event."""
        await self.data.actions.release_point(self._key, self._context)

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Write the point's value for the current level (level 1's outside a shed)."""
        await self.data.actions.hold_point(self._key, self._context)


class ParticipationSwitch(LoadshedEntity, SwitchEntity):
    """Take part in the current event: off opts out (releases and tells the VTN), on opts back in.

    Available only while there is an event to take part in (scheduled, active or opted out).
    """

    _attr_translation_key = "participation"

    def __init__(self, entry: LoadshedConfigEntry) -> None:
        """Put the switch on the VEN's device."""
        super().__init__(entry, PARTICIPATION, ven_device_info(entry))

    @property
    def available(self) -> bool:
        """Only while an event can be opted in or out of."""
        view = self.data.current_event()
        return (
            super().available
            and view is not None
            and (view.status.open or view.status is EventStatus.OPTED_OUT)
        )

    @property
    def is_on(self) -> bool | None:
        """On unless this VEN opted out of the current event."""
        view = self.data.current_event()
        return None if view is None else view.status is not EventStatus.OPTED_OUT

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Opt out of the current event."""
        view = self.data.current_event()
        await self.data.actions.opt_out(view.event_id if view else None, self._context)

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Opt back in to the current event."""
        await self.data.actions.opt_in(None, self._context)
