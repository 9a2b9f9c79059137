"""Drives the building to the level the schedule holds now, with one timer for the next change.

The schedule is filled by the VTN's events and the operator's manual sheds; this applies the
level in force as a shed pass (a background task of the config entry), arms exactly one timer
for the next change, marks each shed's start and end for the verification and fires the level
and shed bus events.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING

from homeassistant.core import CALLBACK_TYPE, Context, HomeAssistant, callback
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.util import dt as dt_util

from .bus_events import (
    EVENT_LEVEL_CHANGED,
    EVENT_SHED_ENDED,
    EVENT_SHED_STARTED,
    SOURCE_OPERATOR,
    SOURCE_SCHEDULE,
    SOURCE_VTN,
    BusEvents,
)
from .const import DOMAIN
from .coordinator import LoadshedCoordinator, Topic
from .engine.schedule import Schedule
from .engine.shed import ApplyReport, ShedController, ShedPolicy
from .engine.verification import ShedVerifier

if TYPE_CHECKING:
    from .data import LoadshedConfigEntry

type Target = tuple[int, str | None]  # (level, id of the event that sets it)


class LevelDriver:
    """Applies the schedule's level to the shed controller as time passes and events change."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: LoadshedConfigEntry,
        *,
        schedule: Schedule,
        controller: ShedController,
        verifier: ShedVerifier,
        bus: BusEvents,
        coordinator: LoadshedCoordinator,
    ) -> None:
        """Nothing runs until the schedule changes and :meth:`request_evaluation` is called."""
        self._hass = hass
        self._entry = entry
        self.schedule = schedule
        self._controller = controller
        self._verifier = verifier
        self._bus = bus
        self._coordinator = coordinator
        self.level = 0
        self._applied: Target = (0, None)
        self._unsub_timer: CALLBACK_TYPE | None = None
        self._evaluation_pending = False
        self._stopped = False
        # Set by a policy change: the next pass runs even for an unchanged level, and judges
        # "was shedding" by the policy the building was shed under.
        self._reapply = False
        self._shedding_before: bool | None = None

    @callback
    def request_evaluation(self) -> None:
        """Evaluate for the VTN once the current burst of event handling has yielded.

        A message may carry many events: the level is evaluated once after all of them.
        """
        if self._evaluation_pending or self._stopped:
            return
        self._evaluation_pending = True
        self._hass.loop.call_soon(self._deferred_evaluation)

    async def evaluate_and_wait(self, context: Context | None) -> ApplyReport:
        """Evaluate for an operator's action and wait for the pass it starts."""
        task = self._evaluate(SOURCE_OPERATOR, context)
        return await task if task is not None else ApplyReport()

    @callback
    def apply_policy(self, policy: ShedPolicy, act_on_test: bool) -> None:
        """Adopt a new shed policy and test-event choice, and apply the level in force again.

        The running event goes on: points already at their value are not written again, and
        only what the new policy changes is written or released.
        """
        if policy == self._controller.policy and act_on_test == self.schedule.act_on_test:
            return
        if self._shedding_before is None:
            self._shedding_before = self._controller.shedding
        self._controller.set_policy(policy)
        self.schedule.act_on_test = act_on_test
        self._reapply = True
        self._evaluate(SOURCE_SCHEDULE)

    @callback
    def reapply(self) -> None:
        """Apply the level in force again, e.g. to points just added."""
        self._reapply = True
        self._evaluate(SOURCE_SCHEDULE)

    async def async_stop(self) -> None:
        """Stop acting on the schedule and cancel the timer (the caller then releases)."""
        self._stopped = True
        self._cancel_timer()

    @callback
    def _deferred_evaluation(self) -> None:
        self._evaluation_pending = False
        self._evaluate(SOURCE_VTN)

    @callback
    def _timer_fired(self, _now: datetime) -> None:
        self._unsub_timer = None
        self._evaluate(SOURCE_SCHEDULE)

    def _cancel_timer(self) -> None:
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
        target = (self.schedule.level_at(now), plan.event_id if plan is not None else None)
        self._cancel_timer()
        if (when := self.schedule.next_change_after(now)) is not None:
            self._unsub_timer = async_track_point_in_utc_time(self._hass, self._timer_fired, when)
        task = None
        if target != self._applied or self._reapply:
            self._reapply = False
            previous, self._applied = self._applied, target
            apply = self._apply(target, previous, source, context)
            task = self._entry.async_create_background_task(self._hass, apply, f"{DOMAIN} apply")
        self._coordinator.push(Topic.STATE)
        return task

    async def _apply(
        self, target: Target, previous: Target, source: str, context: Context | None
    ) -> ApplyReport:
        level, event_id = target
        controller = self._controller
        was_shedding = controller.shedding
        if self._shedding_before is not None:
            was_shedding, self._shedding_before = self._shedding_before, None
        policy = controller.policy
        # Verification measures from the first write: readings taken during it are no baseline.
        if not was_shedding and policy.sheds(policy.acting_level(level, controller.acting)):
            self._verifier.start(dt_util.utcnow(), event_id)
        report = await controller.apply_level(level, event_id)
        self.level = level
        data = {
            "event_id": event_id,
            "level": level,
            "previous_level": previous[0],
            "previous_event_id": previous[1],
        }
        self._bus.fire(EVENT_LEVEL_CHANGED, data, source, context)
        if controller.shedding and not was_shedding:
            self._bus.fire(EVENT_SHED_STARTED, data, source, context)
        elif was_shedding and not controller.shedding:
            self._verifier.end(dt_util.utcnow())
            self._bus.fire(EVENT_SHED_ENDED, data, source, context)
        self._bus.report_pass(report, source, context)
        return report
