"""What an operator can do, from an action, a button or a switch, with the same rules for each.

Shed now, release everything, opt out of (and back in to) an event, release or hold one point.
Refusals and failures are raised as translated errors (:mod:`.errors`); the operator's context
goes with every bus event an action causes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from homeassistant.core import Context
from homeassistant.util import dt as dt_util

from .bus_events import EVENT_OPTED_IN, EVENT_OPTED_OUT, EVENT_RECEIVED, SOURCE_OPERATOR, BusEvents
from .coordinator import LoadshedCoordinator, Topic
from .engine.event_history import MANUAL_PREFIX, EventHistory
from .engine.overrides import PointState, PointStatus
from .engine.schedule import EventPlan, Segment
from .engine.shed import ApplyReport, ShedController
from .errors import (
    UnknownEventError,
    level_does_not_shed,
    no_event,
    opt_errors,
    point_error,
)
from .level_driver import LevelDriver
from .openadr.ven import OptType
from .opt_outs import OptOutStore
from .vtn_inbox import OPT_IN, OPT_OUT

type SendOpt = Callable[[str, OptType], Awaitable[None]]


class OperatorActions:
    """The operator's actions on one building."""

    def __init__(
        self,
        *,
        driver: LevelDriver,
        controller: ShedController,
        history: EventHistory,
        opt_outs: OptOutStore,
        send_opt: SendOpt,
        bus: BusEvents,
        coordinator: LoadshedCoordinator,
    ) -> None:
        """``send_opt`` tells the VTN this VEN's opt for an event."""
        self._driver = driver
        self._schedule = driver.schedule
        self._controller = controller
        self._history = history
        self._opt_outs = opt_outs
        self._send_opt = send_opt
        self._bus = bus
        self._coordinator = coordinator

    async def shed(
        self, level: int | None, duration: timedelta | None, context: Context | None = None
    ) -> ApplyReport:
        """Shed now at ``level`` (default: the policy's), for ``duration`` (None: open-ended)."""
        policy = self._controller.policy
        level = policy.shed_level if level is None else level
        if not policy.sheds(level):
            raise level_does_not_shed(level, policy.shed_level)
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
        self._schedule.upsert(plan)
        self._history.remember(plan)
        self._bus.fire_plan(EVENT_RECEIVED, plan, SOURCE_OPERATOR, context)
        return await self._driver.evaluate_and_wait(context)

    async def release_all(self, context: Context | None = None) -> ApplyReport:
        """Release every point now; they stay released for the rest of the current event."""
        now = dt_util.utcnow()
        for plan in list(self._schedule.plans):
            if plan.event_id.startswith(MANUAL_PREFIX):
                self._schedule.remove(plan.event_id)
                # The operator ended it: shown as completed now, not active until its end.
                self._history.mark_ended(plan.event_id, now)
        report = await self._controller.release_all()
        self._bus.report_pass(report, SOURCE_OPERATOR, context)
        # A manual shed just removed: back to the VTN's level.
        await self._driver.evaluate_and_wait(context)
        return report

    async def opt_out(self, event_id: str | None = None, context: Context | None = None) -> str:
        """Opt out of ``event_id`` (default: the event in force or next): release, tell the VTN."""
        if event_id is None:
            view = self._history.current(dt_util.utcnow())
            if view is None or not view.status.open:
                raise no_event()
            event_id = view.event_id
        with opt_errors(event_id, "opt_out_failed"):
            if event_id not in self._history:
                raise UnknownEventError(event_id)
            await self._opt_outs.async_add(event_id)
            self._schedule.remove(event_id)
            self._bus.fire(EVENT_OPTED_OUT, {"event_id": event_id}, SOURCE_OPERATOR, context)
            # Release first: an unreachable VTN must not keep the building shed.
            await self._driver.evaluate_and_wait(context)
            if not event_id.startswith(MANUAL_PREFIX):
                await self._send_opt(event_id, OPT_OUT)
        return event_id

    async def opt_in(self, event_id: str | None = None, context: Context | None = None) -> str:
        """Take part in ``event_id`` (default: the event shown) again: re-plan it, tell the VTN."""
        if event_id is None:
            view = self._history.current(dt_util.utcnow())
            if view is None:
                raise no_event()
            event_id = view.event_id
        with opt_errors(event_id, "opt_in_failed"):
            if (plan := self._history.get(event_id)) is None:
                raise UnknownEventError(event_id)
            if event_id not in self._opt_outs.ids:
                return event_id
            await self._opt_outs.async_discard(event_id)
            self._schedule.upsert(plan)
            self._bus.fire(EVENT_OPTED_IN, {"event_id": event_id}, SOURCE_OPERATOR, context)
            await self._driver.evaluate_and_wait(context)
            if not event_id.startswith(MANUAL_PREFIX):
                await self._send_opt(event_id, OPT_IN)
        return event_id

    async def release_point(self, key: str, context: Context | None = None) -> PointState:
        """Release one point for the rest of the current event (an operator turns it off)."""
        state = await self._controller.release_point(key)
        self._point_acted(state, context)
        if state.holds_override:
            raise point_error("release", state)
        return state

    async def hold_point(self, key: str, context: Context | None = None) -> PointState:
        """Write one point's value for the current level (an operator turns it on)."""
        state = await self._controller.hold_point(key)
        self._point_acted(state, context)
        if state.status is PointStatus.FAILED:
            raise point_error("write", state)
        return state

    def _point_acted(self, state: PointState, context: Context | None) -> None:
        self._bus.point_changed(state, SOURCE_OPERATOR, context)
        self._coordinator.push(Topic.STATE)
