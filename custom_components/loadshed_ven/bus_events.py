"""The bus events a config entry fires for automations and the logbook (documented in docs/).

Every event names its cause in ``source``: ``vtn`` (a VTN message), ``schedule`` (a local timer
or retry) or ``operator`` (an action, button or switch, whose context goes with the event). Each
is also handed to the entry's coordinator, which delivers it to the event entity.

A shed pass touches every point, so its outcome is told once, in counts on ``shed_started`` and
``shed_ended``. Per-point events are kept for what needs attention: a point that newly failed
(or failed for another reason), one newly owned by a higher priority, one released after it had
failed, and whatever an operator did to one point.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import device_registry as dr

from .const import DOMAIN, LOGGER
from .coordinator import Activity, LoadshedCoordinator, Topic
from .engine.overrides import FailureKind, PointState, PointStatus
from .engine.schedule import EventPlan
from .engine.shed import ApplyReport, ShedController
from .unique_ids import controller_device_id

EVENT_RECEIVED: Final = f"{DOMAIN}_event_received"
EVENT_MODIFIED: Final = f"{DOMAIN}_event_modified"
EVENT_CANCELLED: Final = f"{DOMAIN}_event_cancelled"
EVENT_LEVEL_CHANGED: Final = f"{DOMAIN}_level_changed"
EVENT_SHED_STARTED: Final = f"{DOMAIN}_shed_started"
EVENT_SHED_ENDED: Final = f"{DOMAIN}_shed_ended"
EVENT_RELEASE_WAVE: Final = f"{DOMAIN}_release_wave"
EVENT_RELEASE_COMPLETED: Final = f"{DOMAIN}_release_completed"
EVENT_POINT_RELEASED: Final = f"{DOMAIN}_point_released"
EVENT_POINT_FAILED: Final = f"{DOMAIN}_point_failed"
EVENT_POINT_OWNED: Final = f"{DOMAIN}_point_owned"
EVENT_OPTED_OUT: Final = f"{DOMAIN}_opted_out"
EVENT_OPTED_IN: Final = f"{DOMAIN}_opted_in"
BUS_EVENTS: Final = (
    EVENT_RECEIVED,
    EVENT_MODIFIED,
    EVENT_CANCELLED,
    EVENT_LEVEL_CHANGED,
    EVENT_SHED_STARTED,
    EVENT_SHED_ENDED,
    EVENT_RELEASE_WAVE,
    EVENT_RELEASE_COMPLETED,
    EVENT_POINT_RELEASED,
    EVENT_POINT_FAILED,
    EVENT_POINT_OWNED,
    EVENT_OPTED_OUT,
    EVENT_OPTED_IN,
)

ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_SOURCE: Final = "source"
SOURCE_VTN: Final = "vtn"
SOURCE_SCHEDULE: Final = "schedule"
SOURCE_OPERATOR: Final = "operator"

# The counts on shed_started and shed_ended: points written and read back in our slot (of
# them, ``verified`` win and ``owned`` are overridden at a higher priority), points verified
# released, and operations that could not be verified.
COUNTS: Final = ("written", "verified", "owned", "released", "failed")

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
        # What was last told per point, so a retry failing the same way is not told again.
        self._failed: dict[str, FailureKind] = {}
        self._owned: set[str] = set()
        # Counts of the passes since the shed started (after its end: on to the last wave).
        self._tally: Counter[str] = Counter()
        self._tallied: ApplyReport | None = None
        # Controller names by device identifier, read once per pass that tells a point.
        self._names: dict[tuple[str, str], str] | None = None

    def fire(
        self, event_type: str, data: dict[str, Any], source: str, context: Context | None = None
    ) -> None:
        """Fire one event on the bus and queue it for the event entity."""
        data = {ATTR_CONFIG_ENTRY_ID: self._entry_id, **data, ATTR_SOURCE: source}
        self._hass.bus.async_fire(event_type, data, context=context)
        attributes = {k: v for k, v in data.items() if k != ATTR_CONFIG_ENTRY_ID}
        self._coordinator.add_activity(Activity(event_type, attributes))
        if (
            event_type == EVENT_RELEASE_WAVE
            and data.get("next_wave") is None
            and not data.get("cancelled")
        ):
            # The last wave of a staggered release: the shed's release is verified only now.
            completed = {"event_id": data.get("event_id"), **self._tally_counts()}
            self.fire(EVENT_RELEASE_COMPLETED, completed, source, context)

    def fire_plan(
        self, event_type: str, plan: EventPlan, source: str, context: Context | None = None
    ) -> None:
        """Fire an event about a VTN or manual event."""
        self.fire(event_type, plan_data(plan), source, context)

    def fire_shed(
        self,
        event_type: str,
        data: dict[str, Any],
        report: ApplyReport,
        source: str,
        context: Context | None = None,
    ) -> None:
        """Fire ``shed_started`` or ``shed_ended`` with the counts of the shed.

        ``shed_started`` counts the pass that started it; ``shed_ended`` every pass since then
        (retries, level changes, a release of all points) up to and including ``report``. With
        a staggered release, ``release_completed`` follows the last wave with those counts and
        the waves' own.
        """
        counts = self._counts(report)
        if event_type == EVENT_SHED_ENDED:
            counts += self._tally
        else:
            # Each shed tells its own problems, even one left over from the last shed.
            self._failed.clear()
            self._owned.clear()
        # A staggered release goes on after shed_ended: its completion counts from here on.
        self._tally = counts if event_type == EVENT_SHED_ENDED else Counter()
        self._tallied = report
        self.fire(event_type, {**data, **self._tally_counts(counts)}, source, context)

    def report_pass(
        self,
        report: ApplyReport,
        source: str,
        context: Context | None,
        *,
        summarized: bool = False,
    ) -> None:
        """Fire the per-point events a pass calls for, log failures, refresh the entities.

        ``summarized``: the pass is counted in a shed event, so its releases are not told one by
        one (a point released after it had failed still is). Otherwise (a retry, an operator's
        release) every release is told.
        """
        self._names = None  # devices may have been renamed since the last pass
        if report is not self._tallied:
            self._tally += self._counts(report)
        self._tallied = None
        for key in (*report.written, *report.released, *report.failed):
            state = self._state(key)
            if state is not None:
                self._tell(state, source, context, every_release=not summarized)
        if report.failed:
            LOGGER.warning(
                "%d override point(s) did not verify: %s",
                len(report.failed),
                ", ".join(
                    f"{k} ({failed.failure if (failed := self._state(k)) else '?'})"
                    for k in report.failed[:LOGGED_FAILURES]
                ),
            )
        self._coordinator.push(Topic.STATE)

    def point_changed(self, state: PointState, source: str, context: Context | None) -> None:
        """Fire ``point_failed`` or ``point_released`` for one point an operator acted on."""
        if state.failure is not None:
            self._failed.pop(state.point.key, None)  # an operator is told every time
        self._names = None
        self._tell(state, source, context, every_release=True)

    def _tell(
        self, state: PointState, source: str, context: Context | None, *, every_release: bool
    ) -> None:
        """Fire the one event ``state`` calls for, unless it was already told."""
        key = state.point.key
        if state.failure is not None:
            self._owned.discard(key)
            if key not in self._failed or self._failed[key] is not state.failure:
                self._failed[key] = state.failure
                self.fire(EVENT_POINT_FAILED, self._point_data(state), source, context)
            return
        had_failed = self._failed.pop(key, None) is not None
        if not state.holds_override:
            self._owned.discard(key)
            if every_release or had_failed:
                self.fire(EVENT_POINT_RELEASED, self._point_data(state), source, context)
        elif state.status is PointStatus.OWNED:
            if key not in self._owned:
                self._owned.add(key)
                self.fire(EVENT_POINT_OWNED, self._point_data(state), source, context)
        else:
            self._owned.discard(key)

    def _point_data(self, state: PointState) -> dict[str, Any]:
        point = state.point
        data: dict[str, Any] = {
            "point": point.key,
            "name": point.name,
            "controller": self._controller_name(point.address),
            "event_id": state.event_id,
            "status": str(state.status),
        }
        if state.failure is not None:
            data["reason"] = str(state.failure)
        if state.owner_priority is not None and state.holds_override:
            data["owner_priority"] = state.owner_priority
        return data

    def _controller_name(self, address: str) -> str:
        """The name of the controller's device as people see it (renamed, or its subentry's)."""
        if self._names is None:
            registry = dr.async_get(self._hass)
            self._names = {
                identifier: device.name_by_user or device.name or identifier[1]
                for device in dr.async_entries_for_config_entry(registry, self._entry_id)
                for identifier in device.identifiers
            }
        wanted = (DOMAIN, controller_device_id(self._entry_id, address))
        return self._names.get(wanted, f"BACnet controller {address}")

    def _state(self, key: str) -> PointState | None:
        """The point's state, None once it is no longer configured (removed with its release)."""
        try:
            return self._controller.state(key)
        except KeyError:
            return None

    def _tally_counts(self, counts: Counter[str] | None = None) -> dict[str, int]:
        """``counts`` (default: the passes tallied so far) as event data."""
        counts = self._tally if counts is None else counts
        return {name: counts[name] for name in COUNTS}

    def _counts(self, report: ApplyReport) -> Counter[str]:
        owned = sum(
            1
            for key in report.written
            if (state := self._state(key)) is not None and state.status is PointStatus.OWNED
        )
        return Counter(
            written=len(report.written),
            verified=len(report.written) - owned,
            owned=owned,
            released=len(report.released),
            failed=len(report.failed),
        )


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
