"""The bus events a config entry fires for automations and the logbook (documented in docs/).

Every event names its cause in ``source``: ``vtn`` (a VTN message), ``schedule`` (a local timer
or retry) or ``operator`` (an action, button or switch, whose context goes with the event). Each
is also handed to the entry's coordinator, which delivers it to the event entity.
"""

from __future__ import annotations

from typing import Any, Final

from homeassistant.core import Context, HomeAssistant

from .const import DOMAIN, LOGGER
from .coordinator import Activity, LoadshedCoordinator, Topic
from .engine.overrides import PointState
from .engine.schedule import EventPlan
from .engine.shed import ApplyReport, ShedController

EVENT_RECEIVED: Final = f"{DOMAIN}_event_received"
EVENT_MODIFIED: Final = f"{DOMAIN}_event_modified"
EVENT_CANCELLED: Final = f"{DOMAIN}_event_cancelled"
EVENT_LEVEL_CHANGED: Final = f"{DOMAIN}_level_changed"
EVENT_SHED_STARTED: Final = f"{DOMAIN}_shed_started"
EVENT_SHED_ENDED: Final = f"{DOMAIN}_shed_ended"
EVENT_POINT_RELEASED: Final = f"{DOMAIN}_point_released"
EVENT_POINT_FAILED: Final = f"{DOMAIN}_point_failed"
EVENT_OPTED_OUT: Final = f"{DOMAIN}_opted_out"
EVENT_OPTED_IN: Final = f"{DOMAIN}_opted_in"
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

ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_SOURCE: Final = "source"
SOURCE_VTN: Final = "vtn"
SOURCE_SCHEDULE: Final = "schedule"
SOURCE_OPERATOR: Final = "operator"

# How many failed point keys a warning names before it stops.
LOGGED_FAILURES: Final = 10


class BusEvents:
    """Fires the entry's bus events and reports what each shed or release pass did."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry_id: str,
        coordinator: LoadshedCoordinator,
        controller: ShedController,
    ) -> None:
        """Events carry ``entry_id``; point events read the states of ``controller``."""
        self._hass = hass
        self._entry_id = entry_id
        self._coordinator = coordinator
        self._controller = controller

    def fire(
        self, event_type: str, data: dict[str, Any], source: str, context: Context | None = None
    ) -> None:
        """Fire one event on the bus and queue it for the event entity."""
        data = {ATTR_CONFIG_ENTRY_ID: self._entry_id, **data, ATTR_SOURCE: source}
        self._hass.bus.async_fire(event_type, data, context=context)
        attributes = {k: v for k, v in data.items() if k != ATTR_CONFIG_ENTRY_ID}
        self._coordinator.add_activity(Activity(event_type, attributes))

    def fire_plan(
        self, event_type: str, plan: EventPlan, source: str, context: Context | None = None
    ) -> None:
        """Fire an event about a VTN or manual event."""
        self.fire(event_type, plan_data(plan), source, context)

    def report_pass(self, report: ApplyReport, source: str, context: Context | None) -> None:
        """Fire an event per point released or failed, log failures, refresh the entities."""
        for key in (*report.released, *report.failed):
            self.point_changed(self._controller.state(key), source, context)
        if report.failed:
            LOGGER.warning(
                "%d override point(s) did not verify: %s",
                len(report.failed),
                ", ".join(
                    f"{k} ({self._controller.state(k).failure})"
                    for k in report.failed[:LOGGED_FAILURES]
                ),
            )
        self._coordinator.push(Topic.STATE)

    def point_changed(self, state: PointState, source: str, context: Context | None) -> None:
        """Fire ``point_failed`` or ``point_released`` for one point, if it is either."""
        data = {
            "point": state.point.key,
            "name": state.point.name,
            "event_id": state.event_id,
            "status": str(state.status),
        }
        if state.failure is not None:
            self.fire(EVENT_POINT_FAILED, {**data, "reason": str(state.failure)}, source, context)
        elif not state.holds_override:
            self.fire(EVENT_POINT_RELEASED, data, source, context)


def plan_data(plan: EventPlan) -> dict[str, Any]:
    """The event data put on the bus for automations."""
    return {
        "event_id": plan.event_id,
        "modification_number": plan.modification_number,
        "cancelled": plan.cancelled,
        "test_event": plan.test_event,
        "start": plan.start.isoformat() if plan.start else None,
        "end": plan.end.isoformat() if plan.end else None,
        "levels": [seg.level for seg in plan.segments],
    }
