"""The controller flow's discovery steps: find a device, pick its points, give their values.

``discover`` asks where to look and runs a Who-Is on the running entry's own BACnet stack
(so through its BBMD and routers), ``pick_device`` reads the chosen device's objects,
``pick_points`` offers its commandable ones and ``values`` asks each unit group's level
values; the controller is then saved like a hand-typed one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState, ConfigSubentryFlow, SubentryFlowResult
from homeassistant.data_entry_flow import EVENT_DATA_ENTRY_FLOW_PROGRESSED
from homeassistant.helpers import selector

from . import settings
from .bacnet import BacnetStack, BacnetStackError
from .bacnet.discovery import (
    DiscoveredDevice,
    DiscoveryError,
    DiscoveryProgress,
    ObjectListResult,
    discover_devices,
    read_objects,
)
from .config_flow_picks import (
    LEVELS,
    MODE,
    MODE_ABSOLUTE,
    MODE_OFFSET,
    PRIORITY,
    Group,
    device_label,
    group_points,
    groups,
    object_label,
    overridable,
    suggested,
    target_ids,
)
from .const import CONF_ADDRESS, CONF_GROUP_ID, CONF_RESOURCE_ID
from .engine.points import OverridePoint, PointError, normalise_address
from .validation import FlowError

CONF_NETWORK: Final = "network"
CONF_DEVICE: Final = "device"
CONF_OBJECTS: Final = "objects"
# How long a Who-Is waits for answers (one addressed device ends it at its answer).
DISCOVER_WAIT: Final = 3.0
# How long reading one device's objects may take (about 2000 objects).
READ_DEADLINE: Final = 120.0
# The frontend reloads a progress step when told to; at most this often.
REFRESH_SECONDS: Final = 1.0

DISCOVER: Final = vol.Schema(
    {
        vol.Optional(CONF_NETWORK): selector.NumberSelector(
            selector.NumberSelectorConfig(min=1, max=65534, mode=selector.NumberSelectorMode.BOX)
        ),
        vol.Optional(CONF_ADDRESS): selector.TextSelector(),
    }
)


TARGET_IDS: Final[dict[Any, Any]] = {
    vol.Optional(CONF_RESOURCE_ID): selector.TextSelector(),
    vol.Optional(CONF_GROUP_ID): selector.TextSelector(),
}
"""A controller's OpenADR ids, as optional fields of a form (see config_flow_controller)."""


def _select(options: list[str], key: str) -> selector.SelectSelector:
    """A dropdown whose options are translated under ``selector.<key>``."""
    return selector.SelectSelector(
        selector.SelectSelectorConfig(options=options, translation_key=key)
    )


def _values_schema(group: Group) -> vol.Schema:
    """Mode (analog only), three level values and the priority, for one group."""
    level: selector.Selector[Any]
    if group.kind == "binary":
        level = _select(["active", "inactive"], "binary_state")
    elif group.kind == "multi-state":
        states = max(o.max_value or 1 for o in group.objects)
        level = selector.NumberSelector(
            selector.NumberSelectorConfig(
                min=1, max=states, step=1, mode=selector.NumberSelectorMode.BOX
            )
        )
    else:
        level = selector.NumberSelector(
            selector.NumberSelectorConfig(step="any", mode=selector.NumberSelectorMode.BOX)
        )
    fields: dict[Any, Any] = {}
    if group.kind == "analog":
        fields[vol.Required(MODE)] = _select([MODE_ABSOLUTE, MODE_OFFSET], "value_mode")
    for key in LEVELS:
        fields[vol.Required(key)] = level
    fields[vol.Required(PRIORITY)] = selector.NumberSelector(
        selector.NumberSelectorConfig(min=8, max=16, step=1, mode=selector.NumberSelectorMode.BOX)
    )
    return vol.Schema(fields)


class DiscoverySteps(ConfigSubentryFlow):
    """The discovery half of the controller flow; the flow itself saves the result."""

    _task: asyncio.Task[Any] | None = None
    _counts: DiscoveryProgress | None = None
    _refreshed = 0.0
    _error: FlowError | None = None  # shown by the next discover form
    _devices: list[DiscoveredDevice]
    _objects: ObjectListResult | None = None
    _groups: list[Group]
    _points: list[OverridePoint]
    _target_ids: dict[str, str] | None = None

    def _save(self, address: str, name: str, points: list[OverridePoint]) -> SubentryFlowResult:
        """Create the controller subentry (the controller flow's own)."""
        raise NotImplementedError

    def _stack(self) -> BacnetStack | None:
        """The running entry's stack; None when the entry is not loaded."""
        entry = self._get_entry()
        if entry.state is not ConfigEntryState.LOADED:
            return None
        stack: BacnetStack = entry.runtime_data.bacnet.stack
        return stack

    # ---- discover -------------------------------------------------------------------------

    async def async_step_discover(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Where to look: a routed network, one address, or (neither) everywhere."""
        if (stack := self._stack()) is None:
            return self.async_abort(reason="entry_not_loaded")
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            self._error = None
            try:
                network, address = self._where(stack, user_input)
            except FlowError as err:
                errors[err.field] = err.key
                placeholders.update(err.placeholders)
            else:
                self._task = self.hass.async_create_task(
                    discover_devices(
                        stack,
                        network=network,
                        address=address,
                        wait=DISCOVER_WAIT,
                        progress=self._progress,
                    ),
                    "loadshed_ven discovery",
                )
                return self._show_progress("searching")
        elif self._error is not None:  # kept until the next search: the form may be reloaded
            errors["base"], placeholders = self._error.key, self._error.placeholders
        return self.async_show_form(
            step_id="discover",
            data_schema=self.add_suggested_values_to_schema(DISCOVER, user_input or {}),
            errors=errors,
            description_placeholders=placeholders,
        )

    @staticmethod
    def _where(stack: BacnetStack, user_input: dict[str, Any]) -> tuple[int | None, str | None]:
        raw_network = user_input.get(CONF_NETWORK)
        network = None if raw_network in (None, "") else int(raw_network)
        text = str(user_input.get(CONF_ADDRESS) or "").strip()
        address = None
        if text:
            try:
                address = normalise_address(text)
            except PointError as err:
                raise FlowError(CONF_ADDRESS, "invalid_address", {"error": str(err)}) from None
        if network is not None and address is not None:
            raise FlowError("base", "network_and_address")
        if network is None and address is None and not stack.interface.can_broadcast:
            raise FlowError("base", "cannot_broadcast")
        return network, address

    def _progress(self, counts: DiscoveryProgress) -> None:
        """Keep the counts; have the frontend reload the progress step now and then."""
        self._counts = counts
        now = time.monotonic()
        if now - self._refreshed >= REFRESH_SECONDS:
            self._refreshed = now
            self.hass.bus.async_fire(
                EVENT_DATA_ENTRY_FLOW_PROGRESSED,
                {"handler": self.handler, "flow_id": self.flow_id, "refresh": True},
            )

    def _placeholders(self) -> dict[str, str]:
        counts = self._counts
        return {
            "done": str(counts.done if counts else 0),
            "total": str(counts.total if counts else 0),
        }

    def _show_progress(self, step_id: str) -> SubentryFlowResult:
        """The progress step of the running task, even of one already done.

        Home Assistant then moves on at once. A form must not answer with progress done
        itself: its input would be submitted again to the next step.
        """
        return self.async_show_progress(
            step_id=step_id,
            progress_action=step_id,
            progress_task=self._task,
            description_placeholders=self._placeholders(),
        )

    async def _run(
        self, step_id: str, then: Callable[[Any], Awaitable[SubentryFlowResult]]
    ) -> SubentryFlowResult:
        """Show progress while the task runs; then hand its result (or error) on."""
        task = self._task
        if task is None:  # a reload after the end: start again
            return await self.async_step_discover()
        if not task.done():
            return self._show_progress(step_id)
        self._task, self._counts = None, None
        try:
            result = task.result()
        except (DiscoveryError, BacnetStackError) as err:
            self._error = FlowError("base", "discovery_failed", {"error": str(err)})
            return self.async_show_progress_done(next_step_id="discover")
        return await then(result)

    async def async_step_searching(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """The Who-Is and the reading of each answering device's name."""
        return await self._run("searching", self._found)

    async def _found(self, devices: list[DiscoveredDevice]) -> SubentryFlowResult:
        configured = {s.unique_id for s in self._get_entry().subentries.values()}
        self._devices = [d for d in devices if d.address not in configured]
        if not devices:
            self._error = FlowError("base", "nothing_found")
        elif not self._devices:
            self._error = FlowError("base", "all_configured", {"count": str(len(devices))})
        if self._error is not None:
            return self.async_show_progress_done(next_step_id="discover")
        return self.async_show_progress_done(next_step_id="pick_device")

    # ---- pick_device ----------------------------------------------------------------------

    async def async_step_pick_device(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """One of the devices found; those already configured are not offered."""
        if (stack := self._stack()) is None:
            return self.async_abort(reason="entry_not_loaded")
        if user_input is not None:
            device = self._devices[int(user_input[CONF_DEVICE])]
            self._task = self.hass.async_create_task(
                read_objects(stack, device, deadline=READ_DEADLINE, progress=self._progress),
                "loadshed_ven object read",
            )
            return self._show_progress("reading")
        options = [
            selector.SelectOptionDict(value=str(index), label=device_label(device))
            for index, device in enumerate(self._devices)
        ]
        return self.async_show_form(
            step_id="pick_device",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_DEVICE, default="0"): selector.SelectSelector(
                        selector.SelectSelectorConfig(options=options)
                    )
                }
            ),
            description_placeholders={"count": str(len(self._devices))},
        )

    async def async_step_reading(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Reading the chosen device's objects."""
        return await self._run("reading", self._read)

    async def _read(self, result: ObjectListResult) -> SubentryFlowResult:
        self._objects = result
        if not overridable(result):
            self._error = FlowError(
                "base",
                "no_commandable_objects",
                {"objects": str(len(result.objects)), "failed": str(len(result.failures))},
            )
            return self.async_show_progress_done(next_step_id="discover")
        return self.async_show_progress_done(next_step_id="pick_points")

    # ---- pick_points, values --------------------------------------------------------------

    async def async_step_pick_points(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """The commandable objects, several at once; a note when some could not be read."""
        result = self._objects
        if result is None:
            return await self.async_step_discover()
        offered = {o.object_id: o for o in overridable(result)}
        errors: dict[str, str] = {}
        if user_input is not None:
            chosen = [offered[i] for i in user_input.get(CONF_OBJECTS, []) if i in offered]
            try:
                self._target_ids = target_ids(user_input)
            except FlowError as err:
                errors[err.field] = err.key
                chosen = []
            if chosen:
                self._groups, self._points = groups(chosen), []
                return await self.async_step_values()
            if not errors:
                errors["base"] = "no_points_chosen"
        elif result.failures:
            errors["base"] = "partial_objects"
        options = [
            selector.SelectOptionDict(value=key, label=object_label(obj))
            for key, obj in offered.items()
        ]
        return self.async_show_form(
            step_id="pick_points",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_OBJECTS): selector.SelectSelector(
                        selector.SelectSelectorConfig(
                            options=options, multiple=True, mode=selector.SelectSelectorMode.LIST
                        )
                    ),
                    **TARGET_IDS,
                }
            ),
            errors=errors,
            description_placeholders={
                "device": device_label(result.device),
                "count": str(len(offered)),
                "failed": str(len(result.failures)),
            },
        )

    async def async_step_values(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Level values and priority for the first group not yet answered."""
        result = self._objects
        if result is None or not self._groups:
            return await self.async_step_discover()
        group = self._groups[0]
        errors: dict[str, str] = {}
        placeholders = {"group": group.label, "count": str(len(group.objects))}
        if user_input is not None:
            network = settings.local_network(self._get_entry().data)
            try:
                points = group_points(group, result.device.address, user_input, network)
            except FlowError as err:
                errors[err.field] = err.key
                placeholders.update(err.placeholders)
            else:
                self._points += points
                self._groups = self._groups[1:]
                if self._groups:
                    return await self.async_step_values()
                device = result.device
                return self._save(device.address, device.name or "", self._points)
        placeholders["objects"] = group.names
        return self.async_show_form(
            step_id="values",
            data_schema=self.add_suggested_values_to_schema(
                _values_schema(group), {**suggested(group), **(user_input or {})}
            ),
            errors=errors,
            description_placeholders=placeholders,
        )
