"""The controller subentry flow: one BACnet controller's address, name and points.

A controller is added, edited or removed without touching the rest of the entry (the VTN is not
validated or registered again). A new one is discovered on the network
(:mod:`.config_flow_discovery`) or typed in: bulk text lines, every one naming the controller's
own address. The entry's update listener applies the change.

A controller may carry an OpenADR ``resource_id`` and ``group_id``: events that name targets
shed only the points of the controllers they name (typed in here, on the discovery's point
list, or for every controller of an import; editing a controller changes them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import SOURCE_RECONFIGURE, SubentryFlowResult

from . import config_flow_schemas as schemas
from . import settings, validation
from .config_flow_discovery import TARGET_IDS, DiscoverySteps
from .config_flow_import import ImportSteps
from .config_flow_picks import target_ids
from .const import (
    CONF_ADDRESS,
    CONF_BULK,
    CONF_GROUP_ID,
    CONF_NAME,
    CONF_POINTS,
    CONF_RESOURCE_ID,
)
from .engine.point_text import point_line
from .engine.points import OverridePoint, PointError, normalise_address, point_from_dict
from .validation import FlowError

# How many refused lines the form lists.
LISTED_LINES = 10

CONTROLLER = vol.Schema(
    {
        **{k: v for k, v in schemas.CONTROLLER.schema.items() if k != CONF_BULK},
        **TARGET_IDS,
        **{k: v for k, v in schemas.CONTROLLER.schema.items() if k == CONF_BULK},
    }
)
"""The manual form: the controller's OpenADR ids come before its points."""


def stored_lines(points: list[Any]) -> str:
    """A subentry's stored points as bulk text; a point refused today is left out."""
    lines = []
    for raw in points:
        try:
            lines.append(point_line(point_from_dict(raw)))
        except (PointError, TypeError, ValueError):
            continue
    return "\n".join(lines)


class ControllerSubentryFlow(DiscoverySteps, ImportSteps):
    """Add or edit one BACnet controller of a building."""

    _target_ids: dict[str, str] | None = None  # from the form that asked for them

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """A new controller: discovered on the network, typed in as bulk text, or from a file."""
        return self.async_show_menu(
            step_id="user", menu_options=["discover", "manual", "import_file"]
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Edit a controller: the same form, pre-filled."""
        return await self.async_step_manual(user_input)

    async def async_step_manual(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Address, optional name and one point per line."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            try:
                self._target_ids = target_ids(user_input)
                address, points = await self._parse(user_input)
            except FlowError as err:
                errors[err.field] = err.key
                placeholders.update(err.placeholders)
            else:
                return self._save(address, str(user_input.get(CONF_NAME) or "").strip(), points)
        return self.async_show_form(
            step_id="manual",
            data_schema=self.add_suggested_values_to_schema(
                CONTROLLER, {**self._defaults(), **(user_input or {})}
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _defaults(self) -> Mapping[str, Any]:
        if self.source != SOURCE_RECONFIGURE:
            return {}
        data = self._get_reconfigure_subentry().data
        return {
            CONF_ADDRESS: data.get(CONF_ADDRESS, ""),
            CONF_NAME: data.get(CONF_NAME) or "",
            CONF_RESOURCE_ID: data.get(CONF_RESOURCE_ID) or "",
            CONF_GROUP_ID: data.get(CONF_GROUP_ID) or "",
            CONF_BULK: stored_lines(list(data.get(CONF_POINTS, []))),
        }

    async def _parse(self, user_input: Mapping[str, Any]) -> tuple[str, list[OverridePoint]]:
        try:
            address = normalise_address(str(user_input[CONF_ADDRESS]).strip())
        except PointError as err:
            raise FlowError(CONF_ADDRESS, "invalid_address", {"error": str(err)}) from None
        network = settings.local_network(self._get_entry().data)
        # Pure parsing, but a large controller's lines take a noticeable time: off the loop.
        points = await self.hass.async_add_executor_job(validation.bulk_points, user_input, network)
        elsewhere = [point_line(p) for p in points if p.address != address]
        if elsewhere:
            shown = elsewhere[:LISTED_LINES]
            if len(elsewhere) > LISTED_LINES:
                shown.append(f"... and {len(elsewhere) - LISTED_LINES} more")
            raise FlowError(
                CONF_BULK,
                "point_of_another_controller",
                {"address": address, "lines": "\n".join(shown)},
            )
        return address, points

    def _save(self, address: str, name: str, points: list[OverridePoint]) -> SubentryFlowResult:
        """Create or update the subentry; another controller at ``address`` aborts."""
        entry = self._get_entry()
        editing = self._get_reconfigure_subentry() if self.source == SOURCE_RECONFIGURE else None
        for subentry in entry.subentries.values():
            if subentry.unique_id == address and subentry is not editing:
                return self.async_abort(reason="already_configured")
        data = {**settings.controller_data(address, name, points), **(self._target_ids or {})}
        title = settings.controller_title(data)
        if editing is not None:
            return self.async_update_and_abort(
                entry, editing, data=data, title=title, unique_id=address
            )
        return self.async_create_entry(title=title, data=data, unique_id=address)
