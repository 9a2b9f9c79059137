"""The running VEN of one config entry: VTN events in, verified overrides out.

This is the only place where the engine (schedule, shed controller) meets Home Assistant: it
keeps exactly one timer for the next level change, runs shed passes as background tasks of the
config entry, fires bus events for automations and tells entities to refresh.

Every bus event names its cause in ``source``: ``vtn`` (a VTN message), ``schedule`` (a local
timer) or ``operator`` (an action, button or switch, whose context goes with the event).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from collections.abc import Set as AbstractSet
from datetime import datetime, timedelta
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, Context, HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.util import dt as dt_util

from . import settings
from .const import DOMAIN, LOGGER
from .engine.event_history import MANUAL_PREFIX, EventHistory, EventView
from .engine.overrides import PointState
from .engine.schedule import (
    EventPlan,
    Schedule,
    Segment,
    normalise_event_id,
    parse_event,
)
from .engine.shed import ApplyReport, ShedController
from .engine.verification import ShedVerifier
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


# Who caused a bus event (its ``source`` field).
ATTR_SOURCE: Final = "source"
SOURCE_VTN: Final = "vtn"
SOURCE_SCHEDULE: Final = "schedule"
SOURCE_OPERATOR: Final = "operator"


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
        opted_out: AbstractSet[str] = frozenset(),
    ) -> None:
        """Wire the engine; nothing runs until events arrive. ``opted_out``: remembered ids."""
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
        self._opted_out: set[str] = set(opted_out)
        self._applied: tuple[int, str | None] = (0, None)
        self._unsub_timer: CALLBACK_TYPE | None = None
        self._evaluation_pending = False
        # Every event seen recently, for what the entities show.
        self.history = EventHistory(self.schedule, self._opted_out)
        # What each shed saved; the sensor platform feeds it the meter's readings.
        self.verification = ShedVerifier(settings.baseline_window(entry.data))
        # Tells the VTN this VEN's opt for an event; set when the VEN is wired up.
        self.send_opt: Callable[[str, OptType], Awaitable[None]] | None = None
        # Keeps the opted-out ids across restarts; set by the integration's set-up.
        self.save_opt_outs: Callable[[AbstractSet[str]], Awaitable[None]] | None = None

    # ---- state for entities -------------------------------------------------------------

    @property
    def shedding(self) -> bool:
        """True while any point may hold our value: written, being written or not yet released."""
        return any(state.holds_override for state in self.controller.states())

    def current_event(self) -> EventView | None:
        """The event in force now, else the next one scheduled, else the last one seen."""
        return self.history.current(dt_util.utcnow())

    def recent_events(self, limit: int = 20) -> list[EventView]:
        """The last ``limit`` (at least 1) events seen, oldest first, with their status."""
        return self.history.recent(dt_util.utcnow(), limit)

    def point_states(self) -> list[PointState]:
        """Every override point's state."""
        return self.controller.states()

    # ---- inputs from the VEN ------------------------------------------------------------

    async def handle_event(self, raw: Mapping[str, Any]) -> OptType:
        """A new or updated event from the VTN; returns the opt to send back.

        The level is evaluated once after the VEN has handed over every event of a message, not
        once per event: a message may carry many events.
        """
        result = parse_event(raw, random_offset=self._random_offset)
        if result.plan is None:
            LOGGER.warning(
                "Ignoring event %r from the VTN: %s", result.event_id or "(no id)", result.error
            )
            return OPT_OUT
        plan = result.plan
        previous = self.history.get(plan.event_id)
        if not self.schedule.upsert(plan) and previous is not None:
            return OPT_OUT if plan.event_id in self._opted_out else OPT_IN  # stale repeat
        self.history.remember(plan)
        if plan.event_id in self._opted_out:
            self.schedule.remove(plan.event_id)
        if plan.cancelled and previous is None:
            # A cancelled event this VEN never acted on (e.g. still listed after a restart):
            # nothing to undo, and no automation should hear of a cancel it never saw start.
            LOGGER.debug("Event %r is listed as cancelled; nothing to do", plan.event_id)
        else:
            kind = (
                EVENT_CANCELLED
                if plan.cancelled
                else (EVENT_RECEIVED if previous is None else EVENT_MODIFIED)
            )
            self._fire(kind, plan_data(plan), SOURCE_VTN)
        if plan.test_event and not self.schedule.act_on_test:
            LOGGER.info("Test event %r received; logged, not acted on", plan.event_id)
        self._request_evaluation()
        return OPT_OUT if plan.event_id in self._opted_out else OPT_IN

    @callback
    def handle_event_ids(self, ids: AbstractSet[str]) -> None:
        """The VTN's current event list: events missing from it are cancelled (implied)."""
        present = {i for raw in ids if (i := normalise_event_id(raw)) is not None}
        present |= {p.event_id for p in self.schedule.plans if p.event_id.startswith(MANUAL_PREFIX)}
        gone = self.schedule.retain_only(present)
        for event_id in gone:
            LOGGER.info("Event %r is no longer offered by the VTN: implied cancel", event_id)
            self.history.mark_cancelled(event_id)
            self._fire(EVENT_CANCELLED, {"event_id": event_id, "implied": True}, SOURCE_VTN)
        if gone:
            self._request_evaluation()

    @callback
    def handle_connection(self, connected: bool) -> None:
        """The VEN's contact with the VTN changed."""
        if connected and not self.connected:
            LOGGER.info("VTN %s", "reachable again" if self._ever_connected else "connected")
        elif self.connected and not connected and not self._stopped:
            LOGGER.warning("VTN unreachable")  # not when the VEN is being stopped on purpose
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
        self.history.remember(plan)
        self._fire(EVENT_RECEIVED, plan_data(plan), SOURCE_OPERATOR, context)
        return await self._evaluate_and_wait(context)

    async def async_release_all(self, context: Context | None = None) -> ApplyReport:
        """Release every point now; they stay released for the rest of the current event."""
        now = dt_util.utcnow()
        for plan in list(self.schedule.plans):
            if plan.event_id.startswith(MANUAL_PREFIX):
                self.schedule.remove(plan.event_id)
                # The operator ended it: shown as completed now, not active until its end.
                self.history.mark_ended(plan.event_id, now)
        report = await self.controller.release_all()
        self._after_pass(report, SOURCE_OPERATOR, context)
        # A manual shed just removed: back to the VTN's level.
        await self._evaluate_and_wait(context)
        return report

    async def async_opt_out(self, event_id: str | None, context: Context | None = None) -> str:
        """Opt out of ``event_id`` (default: the event in force): release and tell the VTN."""
        view = self.current_event()
        target = event_id or (view.event_id if view else None)
        if target is None or target not in self.history:
            raise KeyError(target)
        self._opted_out.add(target)
        if self.save_opt_outs is not None:
            await self.save_opt_outs(self._opted_out)
        self.schedule.remove(target)
        self._fire(EVENT_OPTED_OUT, {"event_id": target}, SOURCE_OPERATOR, context)
        # Release first: an unreachable VTN must not keep the building shed.
        await self._evaluate_and_wait(context)
        if self.send_opt is not None and not target.startswith(MANUAL_PREFIX):
            await self.send_opt(target, OPT_OUT)
        return target

    async def async_opt_in(self, event_id: str, context: Context | None = None) -> str:
        """Take part in ``event_id`` again after an opt-out: re-plan it and tell the VTN."""
        plan = self.history.get(event_id)
        if plan is None:
            raise KeyError(event_id)
        if event_id not in self._opted_out:
            return event_id
        self._opted_out.discard(event_id)
        if self.save_opt_outs is not None:
            await self.save_opt_outs(self._opted_out)
        self.schedule.upsert(plan)
        self._fire(EVENT_OPTED_IN, {"event_id": event_id}, SOURCE_OPERATOR, context)
        await self._evaluate_and_wait(context)
        if self.send_opt is not None and not event_id.startswith(MANUAL_PREFIX):
            await self.send_opt(event_id, OPT_IN)
        return event_id

    async def async_release_point(self, key: str, context: Context | None = None) -> PointState:
        """An operator turns one override off."""
        state = await self.controller.release_point(key)
        self._point_fired(state, SOURCE_OPERATOR, context)
        self._notify()
        return state

    async def async_hold_point(self, key: str, context: Context | None = None) -> PointState:
        """An operator turns one override on."""
        state = await self.controller.hold_point(key)
        self._point_fired(state, SOURCE_OPERATOR, context)
        self._notify()
        return state

    @callback
    def handle_retry_report(self, report: ApplyReport) -> None:
        """An automatic retry settled or failed points: bus events and entities follow now."""
        self._after_pass(report, SOURCE_SCHEDULE, None)

    # ---- scheduling ---------------------------------------------------------------------

    async def async_stop(self) -> None:
        """Stop acting on events and cancel the timer (the caller then releases overrides)."""
        self._stopped = True
        if self._unsub_timer is not None:
            self._unsub_timer()
            self._unsub_timer = None

    @callback
    def _evaluate(
        self, source: str, context: Context | None = None
    ) -> asyncio.Task[ApplyReport] | None:
        """Apply the level in force now and arm one timer for the next change.

        ``source`` (and an operator's ``context``) go with the bus events of the pass.
        """
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
            previous = self._applied
            self._applied = target
            apply = self._apply(target, previous, source, context)
            task = self.entry.async_create_background_task(self.hass, apply, f"{DOMAIN} apply")
        self._notify()
        return task

    @callback
    def _request_evaluation(self) -> None:
        """Evaluate for the VTN once the current burst of event handling has yielded."""
        if self._evaluation_pending or self._stopped:
            return
        self._evaluation_pending = True
        self.hass.loop.call_soon(self._deferred_evaluation)

    @callback
    def _deferred_evaluation(self) -> None:
        self._evaluation_pending = False
        self._evaluate(SOURCE_VTN)

    async def _evaluate_and_wait(self, context: Context | None) -> ApplyReport:
        """Evaluate for an operator's action and wait for the pass it starts."""
        task = self._evaluate(SOURCE_OPERATOR, context)
        return await task if task is not None else ApplyReport()

    @callback
    def _timer_fired(self, _now: datetime) -> None:
        self._unsub_timer = None
        self._evaluate(SOURCE_SCHEDULE)

    async def _apply(
        self,
        target: tuple[int, str | None],
        previous: tuple[int, str | None],
        source: str,
        context: Context | None,
    ) -> ApplyReport:
        level, event_id = target
        was_shedding = self.controller.shedding
        policy = self.controller.policy
        # Verification measures from the first write: readings taken during it are no baseline.
        if not was_shedding and policy.sheds(policy.acting_level(level, self.controller.acting)):
            self.verification.start(dt_util.utcnow(), event_id)
        report = await self.controller.apply_level(level, event_id)
        self.level = level
        data = {
            "event_id": event_id,
            "level": level,
            "previous_level": previous[0],
            "previous_event_id": previous[1],
        }
        self._fire(EVENT_LEVEL_CHANGED, data, source, context)
        if self.controller.shedding and not was_shedding:
            self._fire(EVENT_SHED_STARTED, data, source, context)
        elif was_shedding and not self.controller.shedding:
            self.verification.end(dt_util.utcnow())
            self._fire(EVENT_SHED_ENDED, data, source, context)
        self._after_pass(report, source, context)
        return report

    def _after_pass(self, report: ApplyReport, source: str, context: Context | None) -> None:
        for key in report.released:
            self._point_fired(self.controller.state(key), source, context)
        for key in report.failed:
            self._point_fired(self.controller.state(key), source, context)
        if report.failed:
            LOGGER.warning(
                "%d override point(s) did not verify: %s",
                len(report.failed),
                ", ".join(f"{k} ({self.controller.state(k).failure})" for k in report.failed[:10]),
            )
        self._notify()

    def _point_fired(self, state: PointState, source: str, context: Context | None) -> None:
        data = {
            "point": state.point.key,
            "name": state.point.name,
            "event_id": state.event_id,
            "status": str(state.status),
        }
        if state.failure is not None:
            self._fire(EVENT_POINT_FAILED, {**data, "reason": str(state.failure)}, source, context)
        elif not state.holds_override:
            self._fire(EVENT_POINT_RELEASED, data, source, context)

    def _fire(
        self, event_type: str, data: dict[str, Any], source: str, context: Context | None = None
    ) -> None:
        data = {"config_entry_id": self.entry.entry_id, **data, ATTR_SOURCE: source}
        self.hass.bus.async_fire(event_type, data, context=context)

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
