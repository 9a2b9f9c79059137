"""The override switches: one per point, or one per controller (the ``switches`` option).

A point's switch is on while our value is (or may be) in its priority slot: held, owned by a
higher priority, being written, or failed with the value possibly still there. It is off once a
release is verified. So a switch always has a definite state, and turning it off always releases.
The ``status``, ``failure`` and ``detail`` attributes say which of those it is. A controller's
switch is on while any of its points is, and acts on all of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Final

from homeassistant.components.switch import SwitchEntity
from homeassistant.components.switch.const import DOMAIN as SWITCH_DOMAIN
from homeassistant.core import Context, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_SWITCHES, DOMAIN, SWITCHES_PER_CONTROLLER, SWITCHES_PER_POINT
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
ATTR_STATUS = "status"
ATTR_FAILURES = "failures"
# Switches added at once. Adding thousands in one call kept the event loop busy for about a
# second (entity registry, device registry, first state write per entity).
ADD_BATCH: Final = 50
# How many failed points a controller's switch names in its attributes.
LISTED_FAILURES: Final = 10


def switch_mode(entry: LoadshedConfigEntry) -> str:
    """One switch per point (the default) or one per controller."""
    mode = entry.options.get(CONF_SWITCHES, SWITCHES_PER_POINT)
    return SWITCHES_PER_CONTROLLER if mode == SWITCHES_PER_CONTROLLER else SWITCHES_PER_POINT


def controller_key(address: str) -> str:
    """The key (unique id suffix) of a controller's switch; point keys never start so."""
    return f"controller/{address}"


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LoadshedConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the participation switch and the override switches of the configured mode."""
    switches = OverrideSwitches(hass, entry, async_add_entities)
    remove_stale(hass, entry, [state.point for state in entry.runtime_data.point_states()])
    async_add_entities([ParticipationSwitch(entry)])
    entry.runtime_data.add_switches = switches.add
    entry.async_on_unload(entry.add_update_listener(switches.async_options_updated))
    await switches.add_all()


class OverrideSwitches:
    """Adds the override switches of the entry's mode, and re-creates them when it changes."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: LoadshedConfigEntry,
        add_entities: AddConfigEntryEntitiesCallback,
    ) -> None:
        """Add through ``add_entities``, the platform's callback."""
        self._hass = hass
        self._entry = entry
        self._add_entities = add_entities
        self.mode = switch_mode(entry)
        self._controllers: dict[str, ControllerSwitch] = {}

    async def add_all(self) -> None:
        """Switches for every configured point, in batches that let the event loop run."""
        subentry_of = self._entry.runtime_data.settings.subentry_of
        by_subentry: dict[str | None, list[OverridePoint]] = {}
        for state in self._entry.runtime_data.point_states():
            by_subentry.setdefault(subentry_of.get(state.point.key), []).append(state.point)
        first = True
        for subentry_id, points in by_subentry.items():
            for batch in self._batches(points, subentry_id):
                if not first:
                    # Home Assistant adds each batch eagerly; yielding lets the loop run.
                    await asyncio.sleep(0)
                first = False
                self._add_entities(batch, config_subentry_id=subentry_id)

    @callback
    def add(self, points: list[OverridePoint], subentry_id: str | None) -> None:
        """Points added to the running entry (a controller subentry added or edited)."""
        if len(points) <= ADD_BATCH:
            for batch in self._batches(points, subentry_id):
                self._add_entities(batch, config_subentry_id=subentry_id)
            return

        async def add_batches() -> None:
            for batch in self._batches(points, subentry_id):
                self._add_entities(batch, config_subentry_id=subentry_id)
                await asyncio.sleep(0)

        self._entry.async_create_background_task(
            self._hass, add_batches(), f"{DOMAIN} add switches"
        )

    def _batches(
        self, points: list[OverridePoint], subentry_id: str | None
    ) -> Iterator[list[SwitchEntity]]:
        """The new switches for ``points``, ADD_BATCH points at a time.

        They are made batch by batch too: making a switch costs about as much as adding it.
        """
        for start in range(0, len(points), ADD_BATCH):
            chunk = points[start : start + ADD_BATCH]
            if self.mode == SWITCHES_PER_POINT:
                yield [OverrideSwitch(self._entry, point, subentry_id) for point in chunk]
                continue
            new: list[SwitchEntity] = []
            for point in chunk:
                if (known := self._controllers.get(point.address)) is not None:
                    known.keys.append(point.key)
                    continue
                new.append(
                    ControllerSwitch(
                        self._entry, point.address, subentry_id, [point.key], self._controllers
                    )
                )
            if new:
                yield new

    async def async_options_updated(self, hass: HomeAssistant, entry: LoadshedConfigEntry) -> None:
        """Re-create the override switches when the ``switches`` option changed.

        Only the entities change: the building keeps every override as it is.
        """
        if switch_mode(entry) == self.mode:
            return
        self.mode = switch_mode(entry)
        self._controllers.clear()
        remove_stale(hass, entry, [state.point for state in entry.runtime_data.point_states()])
        await self.add_all()


def remove_stale(
    hass: HomeAssistant, entry: LoadshedConfigEntry, points: list[OverridePoint]
) -> None:
    """Drop the switches (of points no longer configured, or of the other mode) and devices."""
    entity_registry = er.async_get(hass)
    if switch_mode(entry) == SWITCHES_PER_POINT:
        keys = {p.key for p in points}
    else:
        keys = {controller_key(p.address) for p in points}
    unique_ids = {unique_id(entry.entry_id, key) for key in (PARTICIPATION, *keys)}
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


def failure_text(state: PointState) -> str | None:
    """Why the point's last operation did not verify, e.g. ``offline: no answer``."""
    if state.failure is None:
        return None
    return f"{state.failure}: {state.detail}" if state.detail else str(state.failure)


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
    def is_on(self) -> bool:
        """On while our value is or may be in the slot; off once its release is verified."""
        return self._state.holds_override

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """What the controller holds for this point, for operators and automations."""
        state = self._state
        point = state.point
        attributes: dict[str, Any] = {
            ATTR_ADDRESS: point.address,
            ATTR_OBJECT: f"{point.object_type},{point.instance}",
            ATTR_PRIORITY: point.priority,
            ATTR_STATUS: str(state.status),
            "written_value": state.written_value,
            "event_id": state.event_id,
            "written_at": state.written_at.isoformat() if state.written_at else None,
            "verified": state.verified,
            "owner_priority": state.owner_priority,
            "failure": str(state.failure) if state.failure is not None else None,
            "detail": failure_text(state),
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


class ControllerSwitch(LoadshedEntity, SwitchEntity):
    """Every override point of one BACnet controller, as one switch."""

    _attr_translation_key = "controller_override"
    _unrecorded_attributes = frozenset({ATTR_ADDRESS})

    def __init__(
        self,
        entry: LoadshedConfigEntry,
        address: str,
        subentry_id: str | None,
        keys: list[str],
        registry: dict[str, ControllerSwitch],
    ) -> None:
        """The switch of the controller at ``address``, for the points ``keys`` (grows).

        It puts itself in ``registry`` (address -> switch) and takes itself out when removed.
        """
        device = controller_device_info(entry, address, subentry_id)
        super().__init__(entry, controller_key(address), device)
        self._address = address
        self.keys = keys
        self._registry = registry
        registry[address] = self

    async def async_will_remove_from_hass(self) -> None:
        """Forget the switch, so that the controller gets a new one if it comes back."""
        await super().async_will_remove_from_hass()
        if self._registry.get(self._address) is self:
            del self._registry[self._address]

    def _states(self) -> list[PointState]:
        found = []
        for key in self.keys:
            try:
                found.append(self.data.controller.state(key))
            except KeyError:  # a point removed from the running entry
                continue
        return found

    @property
    def is_on(self) -> bool:
        """On while any of the controller's points holds (or may hold) our value."""
        return any(state.holds_override for state in self._states())

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """How many points are in each status, and why the failed ones failed."""
        states = self._states()
        counts = dict.fromkeys((str(s) for s in PointStatus), 0)
        for state in states:
            counts[str(state.status)] += 1
        failed = [s for s in states if s.status is PointStatus.FAILED]
        return {
            ATTR_ADDRESS: self._address,
            "points": len(states),
            **counts,
            ATTR_FAILURES: {s.point.label: failure_text(s) for s in failed[:LISTED_FAILURES]},
            "operator_released": sum(s.operator_released for s in states),
        }

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Release every point of the controller for the rest of the current event."""
        await self._each(self.data.actions.release_point)

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Write every point's value for the current level (level 1's outside a shed)."""
        await self._each(self.data.actions.hold_point)

    async def _each(self, act: Callable[[str, Context | None], Awaitable[PointState]]) -> None:
        """Act on every point, even after one fails; then raise the first failure."""
        results = await asyncio.gather(
            *(act(state.point.key, self._context) for state in self._states()),
            return_exceptions=True,
        )
        if failed := next((r for r in results if isinstance(r, BaseException)), None):
            raise failed


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
