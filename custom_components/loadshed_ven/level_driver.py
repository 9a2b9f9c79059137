"""Drives the building to the level the schedule holds now, with one timer for the next change.

The schedule is filled by the VTN's events and the operator's manual sheds; this applies the
level in force as a shed pass (a background task of the config entry), arms exactly one timer
for the next change, marks each shed's start and end for the verification and fires the level
and shed bus events. When the building stops shedding, the held points are released in waves
over the release window (:mod:`.engine.release_waves`), with one more timer for the next wave.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from homeassistant.core import CALLBACK_TYPE, Context, HomeAssistant, callback
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.util import dt as dt_util

from .bus_events import (
    EVENT_LEVEL_CHANGED,
    EVENT_RELEASE_WAVE,
    EVENT_SHED_ENDED,
    EVENT_SHED_STARTED,
    SOURCE_OPERATOR,
    SOURCE_SCHEDULE,
    SOURCE_VTN,
    BusEvents,
)
from .const import CONF_RELEASE_WINDOW, DEFAULT_RELEASE_WINDOW, DOMAIN
from .coordinator import LoadshedCoordinator, Topic
from .engine.release_waves import ReleasePlan, plan_release, release_window
from .engine.schedule import Schedule
from .engine.shed import ApplyReport, ShedController, ShedPolicy
from .engine.verification import ShedVerifier
from .targeting import reach_data

if TYPE_CHECKING:
    from .data import LoadshedConfigEntry

type Target = tuple[int, str | None]  # (level, id of the event that sets it)

# A wave timer firing up to this early still releases its wave.
WAVE_EARLY: Final = timedelta(seconds=1)


def release_window_option(options: Mapping[str, Any]) -> timedelta:
    """The release window an entry's data and options ask for; the default when absent."""
    return release_window(options.get(CONF_RELEASE_WINDOW), DEFAULT_RELEASE_WINDOW)


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
        # Each point's level while an event aims at some resources only; None: all follow.
        self._scoped: tuple[int, ...] | None = None
        self._point_levels: dict[str, int] | None = None
        self._unsub_timer: CALLBACK_TYPE | None = None
        self._evaluation_pending = False
        self._stopped = False
        # Set by a policy change: the next pass runs even for an unchanged level, and judges
        # "was shedding" by the policy the building was shed under.
        self._reapply = False
        self._shedding_before: bool | None = None
        self.release_window = timedelta(minutes=DEFAULT_RELEASE_WINDOW)
        self._waves: ReleasePlan | None = None  # the release in progress, wave by wave
        self._unsub_wave: CALLBACK_TYPE | None = None
        self._waves_event: str | None = None  # the event whose end the waves release

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
        self._cancel_waves()  # the caller releases everything at once

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
        if self._released_all():
            self._cancel_waves(SOURCE_OPERATOR)
        now = dt_util.utcnow()
        self.schedule.prune(now)
        plan = self.schedule.active_event_at(now)
        target = (self.schedule.level_at(now), plan.event_id if plan is not None else None)
        targeting = self.schedule.targeting
        scoped = (
            None
            if targeting is None
            else targeting.scope_levels(self.schedule.active_levels_at(now))
        )
        self._cancel_timer()
        if (when := self.schedule.next_change_after(now)) is not None:
            self._unsub_timer = async_track_point_in_utc_time(self._hass, self._timer_fired, when)
        task = None
        if target != self._applied or scoped != self._scoped or self._reapply:
            self._reapply = False
            previous, self._applied = self._applied, target
            self._scoped = scoped
            self._point_levels = (
                None if scoped is None or targeting is None else targeting.point_levels(scoped)
            )
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
        sheds = policy.sheds(policy.acting_level(level, controller.acting))
        now = dt_util.utcnow()
        # Verification measures from the first write: readings taken during it are no baseline.
        if not was_shedding and sheds:
            self._verifier.start(now, event_id)
        planned = None  # the waves this pass starts (other passes only keep what they hold)
        if sheds:
            self._cancel_waves(source, context)  # the points follow the new level at once
        elif was_shedding and self._waves is None:
            planned = self._plan_waves(now, previous[1])
        plan = self._waves
        holding = plan.holding(now) if plan is not None else frozenset()
        report = await controller.apply_level(
            level, event_id, holding=holding, point_levels=self._point_levels
        )
        self.level = level
        data = {
            "event_id": event_id,
            "level": level,
            "previous_level": previous[0],
            "previous_event_id": previous[1],
            # Which resources the driving event names, and how many points it sheds here.
            **reach_data(
                self.schedule,
                self.schedule.get(event_id) if event_id else None,
                only_targeted=True,
            ),
        }
        self._bus.fire(EVENT_LEVEL_CHANGED, data, source, context)
        if controller.shedding and not was_shedding:
            self._bus.fire_shed(EVENT_SHED_STARTED, data, report, source, context)
        elif was_shedding and not controller.shedding:
            # Power saved and the rebound are measured on through the release window.
            self._verifier.end(dt_util.utcnow(), release=self.release_window)
            self._bus.fire_shed(EVENT_SHED_ENDED, data, report, source, context)
        # Counted in the shed events: only the points that need attention are told one by one.
        self._bus.report_pass(report, source, context, summarized=True)
        if planned is not None:
            self._wave_released(planned, now, source, context)
        return report

    # ---- staggered release ----------------------------------------------------------------

    @property
    def release_progress(self) -> tuple[int, int] | None:
        """(points released, points to release) while a release goes in waves; else None."""
        plan = self._waves
        if plan is None:
            return None
        return plan.total - len(self._controller.holding), plan.total

    def _plan_waves(self, now: datetime, event_id: str | None) -> ReleasePlan | None:
        """Plan the release of what the shed holds; one wave (at once) needs no plan."""
        held = [
            s.point
            for s in self._controller.states()
            if s.holds_override and not s.operator_released  # those go at once
        ]
        plan = plan_release(held, self.release_window, now)
        if len(plan.waves) < 2:
            return None
        self._waves, self._waves_event = plan, event_id
        return plan

    def _released_all(self) -> bool:
        """True when Release all took what the armed waves still held (nothing is held now)."""
        return self._unsub_wave is not None and not self._controller.holding

    @callback
    def _cancel_waves(self, source: str | None = None, context: Context | None = None) -> None:
        """Forget the waves (``source`` given: tell the bus how far they got)."""
        if self._unsub_wave is not None:
            self._unsub_wave()
            self._unsub_wave = None
        plan, self._waves = self._waves, None
        if plan is not None and source is not None:
            self._fire_wave(plan, dt_util.utcnow(), source, context, cancelled=True)

    def _wave_released(
        self, plan: ReleasePlan, now: datetime, source: str, context: Context | None
    ) -> None:
        """A wave's pass is done: report it and arm the timer for the next wave."""
        if self._waves is not plan or self._stopped:
            return  # cancelled meanwhile
        self._fire_wave(plan, now, source, context, cancelled=False)
        if self._unsub_wave is not None:
            self._unsub_wave()
            self._unsub_wave = None
        if (due := plan.next_due(now)) is None:
            self._waves = None
            return
        self._unsub_wave = async_track_point_in_utc_time(self._hass, self._wave_fired, due)

    def _fire_wave(
        self,
        plan: ReleasePlan,
        now: datetime,
        source: str,
        context: Context | None,
        *,
        cancelled: bool,
    ) -> None:
        due = None if cancelled else plan.next_due(now)
        data = {
            "event_id": self._waves_event,
            "wave": plan.due_count(now),
            "waves": len(plan.waves),
            "released": plan.total - len(plan.holding(now) & self._controller.holding),
            "total": plan.total,
            "next_wave": None if due is None else due.isoformat(),
            "cancelled": cancelled,
        }
        self._bus.fire(EVENT_RELEASE_WAVE, data, source, context)
        self._coordinator.push(Topic.STATE)

    @callback
    def _wave_fired(self, now: datetime) -> None:
        if self._released_all():
            self._cancel_waves(SOURCE_OPERATOR)
            return
        self._unsub_wave = None
        if (plan := self._waves) is None or self._stopped:
            return
        due = plan.next_due(now - WAVE_EARLY)  # the timer may fire a little early
        self._entry.async_create_background_task(
            self._hass, self._release_wave(plan, due or now), f"{DOMAIN} release wave"
        )

    async def _release_wave(self, plan: ReleasePlan, due: datetime) -> None:
        if self._waves is not plan:
            return
        now = max(dt_util.utcnow(), due)
        level, event_id = self._applied
        report = await self._controller.apply_level(
            level, event_id, holding=plan.holding(now), point_levels=self._point_levels
        )
        self._bus.report_pass(report, SOURCE_SCHEDULE, None, summarized=True)
        self._wave_released(plan, now, SOURCE_SCHEDULE, None)
