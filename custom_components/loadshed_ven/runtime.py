"""The running VEN of one config entry: VTN events in, verified overrides out.

This is the only place where the engine (schedule, shed controller) meets Home Assistant: it
keeps exactly one timer for the next level change, runs shed passes as background tasks of the
config entry, fires bus events for automations and tells entities to refresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, Context, HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.util import dt as dt_util

from .const import DOMAIN, LOGGER
from .engine.overrides import PointState
from .engine.schedule import EventPlan, Schedule, Segment, normalise_event_id, parse_event
from .engine.shed import ApplyReport, ShedController
from .openadr.ven import OptType

OPT_IN: Final[OptType] = "optIn"
OPT_OUT: Final[OptType] = "optOut"

# Bus events for automations (documented in the README).
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

MANUAL_PREFIX: Final = "manual-"


@dataclass(frozen=True, kw_only=True)
class EventView:
    """What the entities show about the event driving the building (if any)."""

    event_id: str
    status: str  # scheduled | active | completed | cancelled | opted_out
    start: datetime | None
    end: datetime | None
    test_event: bool
    manual: bool


class LoadshedRuntime:
    """Schedules levels from VTN events and drives the shed controller."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry[Any],
        controller: ShedController,
        *,
        random_offset: Callable[[str, timedelta], timedelta],
        act_on_test_events: bool = False,
    ) -> None:
        """Wire the engine; nothing runs until events arrive."""
        self.hass = hass
        self.entry = entry
        self.controller = controller
        self.schedule = Schedule(act_on_test=act_on_test_events)
        self.signal = f"{DOMAIN}_{entry.entry_id}_update"
        self.level = 0
        self.connected = False
        self._ever_connected = False
        self._stopped = False
        self._random_offset = random_offset
        self._opted_out: set[str] = set()
        self._applied: tuple[int, str | None] = (0, None)
        self._unsub_timer: CALLBACK_TYPE | None = None
        self._known: dict[str, EventPlan] = {}  # every event seen, for status display
        # Tells the VTN this VEN's opt for an event; set when the VEN is wired up.
        self.send_opt: Callable[[str, OptType], Awaitable[None]] | None = None

    # ---- state for entities -------------------------------------------------------------

    @property
    def shedding(self) -> bool:
        """True while any point may hold our value: written, being written or not yet released."""
        return any(state.holds_override for state in self.controller.states())

    def current_event(self) -> EventView | None:
        """The event in force now, else the next one scheduled, else the last one seen."""
        now = dt_util.utcnow()
        plan = self.schedule.active_event_at(now)
        if plan is None:
            upcoming = [p for p in self.schedule.plans if p.start is not None and p.start > now]
            plan = min(upcoming, key=lambda p: p.start or now, default=None)
        if plan is None and self._known:
            plan = next(reversed(self._known.values()))
        return None if plan is None else self._view(plan, now)

    def _view(self, plan: EventPlan, now: datetime) -> EventView:
        if plan.event_id in self._opted_out:
            status = "opted_out"
        elif plan.cancelled:
            status = "cancelled"
        elif plan.start is not None and now < plan.start:
            status = "scheduled"
        elif plan.end is not None and now >= plan.end:
            status = "completed"
        else:
            status = "active"
        return EventView(
            event_id=plan.event_id,
            status=status,
            start=plan.start,
            end=plan.end,
            test_event=plan.test_event,
            manual=plan.event_id.startswith(MANUAL_PREFIX),
        )

    def point_states(self) -> list[PointState]:
        """Every override point's state."""
        return self.controller.states()

    # ---- inputs from the VEN ------------------------------------------------------------

    async def handle_event(self, raw: Mapping[str, Any]) -> OptType:
        """A new or updated event from the VTN; returns the opt to send back."""
        result = parse_event(raw, random_offset=self._random_offset)
        if result.plan is None:
            LOGGER.warning(
                "Ignoring event %s from the VTN: %s", result.event_id or "(no id)", result.error
            )
            return OPT_OUT
        plan = result.plan
        previous = self._known.get(plan.event_id)
        if not self.schedule.upsert(plan) and previous is not None:
            return OPT_OUT if plan.event_id in self._opted_out else OPT_IN  # stale repeat
        self._known[plan.event_id] = plan
        if plan.event_id in self._opted_out:
            self.schedule.remove(plan.event_id)
        kind = (
            EVENT_CANCELLED
            if plan.cancelled
            else (EVENT_RECEIVED if previous is None else EVENT_MODIFIED)
        )
        self._fire(kind, plan_data(plan))
        if plan.test_event and not self.schedule.act_on_test:
            LOGGER.info("Test event %s received; logged, not acted on", plan.event_id)
        self._evaluate()
        return OPT_OUT if plan.event_id in self._opted_out else OPT_IN

    @callback
    def handle_event_ids(self, ids: AbstractSet[str]) -> None:
        """The VTN's current event list: events missing from it are cancelled (implied)."""
        present = {i for raw in ids if (i := normalise_event_id(raw)) is not None}
        present |= {p.event_id for p in self.schedule.plans if p.event_id.startswith(MANUAL_PREFIX)}
        for event_id in self.schedule.retain_only(present):
            LOGGER.info("Event %s is no longer offered by the VTN: implied cancel", event_id)
            self._fire(EVENT_CANCELLED, {"event_id": event_id, "implied": True})
        self._evaluate()

    @callback
    def handle_connection(self, connected: bool) -> None:
        """The VEN's contact with the VTN changed."""
        if connected and not self.connected:
            LOGGER.info("VTN %s", "reachable again" if self._ever_connected else "connected")
        elif self.connected and not connected:
            LOGGER.warning("VTN unreachable")
        self._ever_connected |= connected
        self.connected = connected
        self._notify()

    # ---- operator actions ---------------------------------------------------------------

    async def async_shed(
        self, level: int, duration: timedelta | None, context: Context | None = None
    ) -> ApplyReport:
        """Shed now without a VTN event, for ``duration`` (open-ended when None)."""
        now = dt_util.utcnow()
        end = None if duration is None else now + duration
        plan = EventPlan(
            event_id=f"{MANUAL_PREFIX}{now.strftime('%Y%m%dT%H%M%SZ')}",
            modification_number=0,
            status="active",
            test_event=False,
            priority=0,
            start=now,
            end=end,
            offset=timedelta(0),
            segments=(Segment(now, end, level),),
        )
        self.schedule.upsert(plan)
        self._known[plan.event_id] = plan
        self._fire(EVENT_RECEIVED, plan_data(plan), context)
        return await self._evaluate_and_wait()

    async def async_release_all(self, context: Context | None = None) -> ApplyReport:
        """Release every point now; they stay released for the rest of the current event."""
        for plan in list(self.schedule.plans):
            if plan.event_id.startswith(MANUAL_PREFIX):
                self.schedule.remove(plan.event_id)
        report = await self.controller.release_all()
        self._after_pass(report, context)
        await self._evaluate_and_wait()  # a manual shed just removed: back to the VTN's level
        return report

    async def async_opt_out(self, event_id: str | None, context: Context | None = None) -> str:
        """Opt out of ``event_id`` (default: the event in force): release and tell the VTN."""
        view = self.current_event()
        target = event_id or (view.event_id if view else None)
        if target is None or target not in self._known:
            raise KeyError(target)
        self._opted_out.add(target)
        self.schedule.remove(target)
        self._fire(EVENT_OPTED_OUT, {"event_id": target}, context)
        # Release first: an unreachable VTN must not keep the building shed.
        await self._evaluate_and_wait()
        if self.send_opt is not None and not target.startswith(MANUAL_PREFIX):
            await self.send_opt(target, OPT_OUT)
        return target

    async def async_opt_in(self, event_id: str, context: Context | None = None) -> str:
        """Take part in ``event_id`` again after an opt-out: re-plan it and tell the VTN."""
        plan = self._known.get(event_id)
        if plan is None:
            raise KeyError(event_id)
        if event_id not in self._opted_out:
            return event_id
        self._opted_out.discard(event_id)
        self.schedule.upsert(plan)
        self._fire(EVENT_OPTED_IN, {"event_id": event_id}, context)
        await self._evaluate_and_wait()
        if self.send_opt is not None and not event_id.startswith(MANUAL_PREFIX):
            await self.send_opt(event_id, OPT_IN)
        return event_id

    async def async_release_point(self, key: str, context: Context | None = None) -> PointState:
        """An operator turns one override off."""
        state = await self.controller.release_point(key)
        self._point_fired(state, context)
        self._notify()
        return state

    async def async_hold_point(self, key: str, context: Context | None = None) -> PointState:
        """An operator turns one override on."""
        state = await self.controller.hold_point(key)
        self._point_fired(state, context)
        self._notify()
        return state

    # ---- scheduling ---------------------------------------------------------------------

    async def async_stop(self) -> None:
        """Stop acting on events and cancel the timer (the caller then releases overrides)."""
        self._stopped = True
        if self._unsub_timer is not None:
            self._unsub_timer()
            self._unsub_timer = None

    @callback
    def _evaluate(self) -> asyncio.Task[ApplyReport] | None:
        """Apply the level in force now and arm one timer for the next change."""
        if self._stopped:
            return None
        now = dt_util.utcnow()
        self.schedule.prune(now)
        plan = self.schedule.active_event_at(now)
        level = self.schedule.level_at(now)
        target = (level, plan.event_id if plan is not None else None)
        if self._unsub_timer is not None:
            self._unsub_timer()
            self._unsub_timer = None
        if (when := self.schedule.next_change_after(now)) is not None:
            self._unsub_timer = async_track_point_in_utc_time(self.hass, self._timer_fired, when)
        task = None
        if target != self._applied:
            previous_level = self._applied[0]
            self._applied = target
            task = self.entry.async_create_background_task(
                self.hass, self._apply(level, target[1], previous_level), f"{DOMAIN} apply"
            )
        self._notify()
        return task

    async def _evaluate_and_wait(self) -> ApplyReport:
        task = self._evaluate()
        return await task if task is not None else ApplyReport()

    @callback
    def _timer_fired(self, _now: datetime) -> None:
        self._unsub_timer = None
        self._evaluate()

    async def _apply(self, level: int, event_id: str | None, previous: int) -> ApplyReport:
        was_shedding = self.controller.shedding
        report = await self.controller.apply_level(level, event_id)
        self.level = level
        data = {"event_id": event_id, "level": level, "previous_level": previous}
        self._fire(EVENT_LEVEL_CHANGED, data)
        if self.controller.shedding and not was_shedding:
            self._fire(EVENT_SHED_STARTED, data)
        elif was_shedding and not self.controller.shedding:
            self._fire(EVENT_SHED_ENDED, data)
        self._after_pass(report, None)
        return report

    def _after_pass(self, report: ApplyReport, context: Context | None) -> None:
        for key in report.released:
            self._point_fired(self.controller.state(key), context)
        for key in report.failed:
            self._point_fired(self.controller.state(key), context)
        if report.failed:
            LOGGER.warning(
                "%d override point(s) did not verify: %s",
                len(report.failed),
                ", ".join(f"{k} ({self.controller.state(k).failure})" for k in report.failed[:10]),
            )
        self._notify()

    def _point_fired(self, state: PointState, context: Context | None) -> None:
        data = {
            "point": state.point.key,
            "name": state.point.name,
            "event_id": state.event_id,
            "status": str(state.status),
        }
        if state.failure is not None:
            self._fire(EVENT_POINT_FAILED, {**data, "reason": str(state.failure)}, context)
        elif not state.holds_override:
            self._fire(EVENT_POINT_RELEASED, data, context)

    def _fire(self, event_type: str, data: dict[str, Any], context: Context | None = None) -> None:
        self.hass.bus.async_fire(
            event_type, {"config_entry_id": self.entry.entry_id, **data}, context=context
        )

    @callback
    def _notify(self) -> None:
        async_dispatcher_send(self.hass, self.signal)


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
