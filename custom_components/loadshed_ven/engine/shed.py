"""Turn a SIMPLE level into verified overrides on every configured point, and back.

The controller keeps one :class:`PointState` per configured point. Callers say *what* the building
should be doing (a level for an event, release everything, an operator's choice for one point); the
controller works out which points need a write or a release, runs them through the writer (which
bounds concurrency and timeouts) and records what each controller verifiably holds.

Only configured points are ever touched, and only with their configured values. An offset point
adds its level's delta to the value in force when the shed started, read before the first write
and recorded with its intent: later writes add to that base, never to our own override.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from datetime import datetime

from .overrides import FailureKind, Outcome, OverrideWriter, PointState, value_in_force
from .points import OverridePoint, PointError, PointValue, offset_target, value_for_level
from .policy import ShedPolicy as ShedPolicy  # noqa: PLC0414 - re-exported for callers
from .work_pool import POOL_SIZE as POOL_SIZE  # noqa: PLC0414 - re-exported for callers
from .work_pool import ROUTED_WORKERS as ROUTED_WORKERS  # noqa: PLC0414
from .work_pool import Operation, WorkItem, run_pool
from .work_pool import is_routed as is_routed  # noqa: PLC0414

type StateListener = Callable[[Sequence[PointState]], None]
type PersistHook = Callable[[Sequence[PointState]], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class ApplyReport:
    """What one pass changed: keys of points written, released and failed."""

    written: tuple[str, ...] = ()
    released: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


class ShedController:
    """Owns the override state of one building (one config entry)."""

    def __init__(
        self,
        points: Iterable[OverridePoint],
        writer: OverrideWriter,
        *,
        policy: ShedPolicy | None = None,
        clock: Callable[[], datetime],
        pass_deadline: float | None = None,
    ) -> None:
        """Start with every point released (reconciling a previous run is the caller's job)."""
        self._writer = writer
        self._policy = policy or ShedPolicy()
        self._clock = clock
        # Overall bound on one pass (each request is also bounded by the writer); None: none.
        self._pass_deadline = pass_deadline
        self._states: dict[str, PointState] = {p.key: PointState(point=p) for p in points}
        self._lock = asyncio.Lock()
        self._listeners: list[StateListener] = []
        self._before_send: PersistHook | None = None
        self._after_pass: PersistHook | None = None
        self.level = 0  # the level asked for
        self.acting = 0  # the level the points follow (see ShedPolicy.acting_level)
        self.event_id: str | None = None
        # Each point's acting level while an event aims at some resources; None: all follow acting.
        self._point_acting: dict[str, int] | None = None
        self._holding: frozenset[str] = frozenset()

    @property
    def policy(self) -> ShedPolicy:
        """The shed policy in force."""
        return self._policy

    def states(self) -> list[PointState]:
        """Every point's state, in configuration order."""
        return list(self._states.values())

    def state(self, key: str) -> PointState:
        """One point's state; ``KeyError`` for a point that is not configured."""
        return self._states[key]

    def set_policy(self, policy: ShedPolicy) -> None:
        """Use ``policy`` from the next pass on (the caller starts that pass)."""
        self._policy = policy

    async def add_points(self, points: Iterable[OverridePoint]) -> None:
        """Configure new points, released (a configured key keeps its state); passes write them."""
        async with self._lock:  # never while a pass walks the points
            for point in points:
                self._states.setdefault(point.key, PointState(point=point))

    async def remove_points(self, keys: Iterable[str]) -> list[str]:
        """Release ``keys`` and stop configuring them; returns the keys that could not be.

        A point whose release did not verify stays configured (and so tracked), to be retried
        like any other: nothing is forgotten while it may hold our value.
        """
        async with self._lock:
            keys = [key for key in dict.fromkeys(keys) if key in self._states]
            for key in keys:
                self._states[key] = replace(self._states[key], operator_released=True)
            await self._converge(dict.fromkeys(keys, 0))
            stuck = [key for key in keys if self._states[key].holds_override]
            for key in keys:
                if key not in stuck:
                    del self._states[key]
            return stuck

    def restore(self, state: PointState) -> None:
        """Adopt a state recovered from a previous run (only for a configured point)."""
        if state.point.key not in self._states:
            raise KeyError(state.point.key)
        self._states[state.point.key] = state

    def add_listener(self, listener: StateListener) -> Callable[[], None]:
        """Call ``listener`` with the changed states after each pass; returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def set_persistence(
        self, *, before_send: PersistHook | None, after_pass: PersistHook | None
    ) -> None:
        """Await ``before_send`` with the intents before any write goes out, ``after_pass`` after.

        Both run under the controller's lock, so what they record is never overtaken by a later
        pass; an exception from either propagates to the caller of the pass.
        """
        self._before_send = before_send
        self._after_pass = after_pass

    @property
    def shedding(self) -> bool:
        """True while the current level sheds."""
        return self._policy.sheds(self.acting)

    async def apply_level(
        self,
        level: int,
        event_id: str | None,
        *,
        point_levels: Mapping[str, int] | None = None,
        holding: AbstractSet[str] = frozenset(),
    ) -> ApplyReport:
        """Make every point match ``level`` for ``event_id`` (write, rewrite or release).

        ``level`` is the building's level: it decides :attr:`shedding`. ``point_levels`` gives
        each point its own signalled level instead (an event aimed at some resources; a point
        left out is at 0). Points in ``holding`` keep what they hold for now: their release is
        deferred to a later pass (a release wave not yet due).

        Points an operator released during this event stay released. A new event id clears
        those choices.
        """
        if not 0 <= level <= 3:
            raise ValueError(f"SIMPLE level {level} is outside 0-3")
        if point_levels is not None and not all(0 <= v <= 3 for v in point_levels.values()):
            raise ValueError("a point's SIMPLE level is outside 0-3")
        async with self._lock:
            if event_id != self.event_id:
                for key, st in self._states.items():
                    if st.operator_released:
                        self._states[key] = replace(st, operator_released=False)
            self.level, self.event_id = level, event_id
            before, self.acting = self.acting, self._policy.acting_level(level, self.acting)
            if point_levels is None:
                self._point_acting = None
            else:
                previous = self._point_acting or {}
                self._point_acting = {
                    key: self._policy.acting_level(
                        point_levels.get(key, 0), previous.get(key, before)
                    )
                    for key in self._states
                }
            self._holding = frozenset(holding)
            return await self._converge(
                {key: self._target(key) for key in self._states if key not in self._holding}
            )

    @property
    def holding(self) -> frozenset[str]:
        """Keys whose release is deferred by the last :meth:`apply_level`."""
        return self._holding

    async def release_all(self) -> ApplyReport:
        """Release every point that may hold our value, for the rest of the current event.

        Like an operator's per-point release, this sticks until the next event (or until a point
        is turned on again): a later level change of the same event does not re-shed.
        """
        async with self._lock:
            for key, st in self._states.items():
                self._states[key] = replace(st, operator_released=True)
            self._holding = frozenset()
            return await self._converge(dict.fromkeys(self._states, 0))

    async def release_point(self, key: str) -> PointState:
        """An operator releases one point; it stays released for the rest of this event."""
        async with self._lock:
            self._states[key] = replace(self._states[key], operator_released=True)
            await self._converge({key: 0})
            return self._states[key]

    async def hold_point(self, key: str) -> PointState:
        """An operator (re)applies one point: its own level's value, else the building's, else 1's.

        Its own level is the one a targeted event gives it; a point no event reaches takes the
        building's level while the building sheds, else level 1.
        """
        async with self._lock:
            st = replace(self._states[key], operator_released=False)
            self._states[key] = st
            own = self.acting if self._point_acting is None else self._point_acting.get(key, 0)
            if self._policy.sheds(own):
                level = own
            else:
                level = self.acting if self._policy.sheds(self.acting) else 1
            await self._converge({key: level})
            return self._states[key]

    async def retry_failed(self, keys: Collection[str] | None = None) -> ApplyReport:
        """Try again every point whose last operation did not verify, towards today's target.

        ``keys`` limits the retry to those points (e.g. to retry refused writes less often).
        """
        async with self._lock:
            return await self._converge(
                {
                    key: self._target(key)
                    for key, st in self._states.items()
                    if not st.verified
                    and key not in self._holding
                    and (keys is None or key in keys)
                }
            )

    def _target(self, key: str) -> int:
        """The level the point should follow now: its acting level, or 0 (released)."""
        st = self._states[key]
        if st.operator_released or not self._policy.sheds(self.acting):
            return 0
        if self._point_acting is None:
            return self.acting
        acting = self._point_acting.get(key, 0)
        return acting if self._policy.sheds(acting) else 0

    async def _converge(self, levels: dict[str, int]) -> ApplyReport:
        """Write or release each point whose state differs from its level, concurrently."""
        loop_time = asyncio.get_running_loop().time()
        deadline = None if self._pass_deadline is None else loop_time + self._pass_deadline
        changed = self._settle_unsent(levels)
        targets, bases, refused = await self._targets(levels, deadline)
        changed.extend(self._states[key] for key in refused)
        work = [(key, target) for key, target in targets.items() if self._needs(key, target)]
        if not (work or changed):
            return ApplyReport()
        for key, target in work:
            if target is not None:
                st = self._states[key]
                base = bases.get(key, st.base_value)
                self._states[key] = st.before_write(target, self.event_id, base)
        if self._before_send is not None and any(target is not None for _, target in work):
            await self._before_send([self._states[k] for k, t in work if t is not None])
        outcomes = await self._run_within_deadline(work, self._one, deadline)
        written, released, failed = [], [], list(refused)
        for key, target in work:
            outcome = outcomes[key]
            now = self._clock()
            st = self._states[key]
            if target is None:
                st = st.after_release(outcome, now)
            else:
                st = st.after_write(target, outcome, self.event_id, now)
            self._states[key] = st
            changed.append(st)
            if not outcome.ok:
                failed.append(key)
            elif target is None:
                released.append(key)
            else:
                written.append(key)
        if self._after_pass is not None:
            await self._after_pass(changed)
        for listener in list(self._listeners):
            listener(changed)
        return ApplyReport(written=tuple(written), released=tuple(released), failed=tuple(failed))

    def _settle_unsent(self, levels: dict[str, int]) -> list[PointState]:
        """Clear the failure of released points whose refused write is no longer wanted."""
        settled = []
        for key, level in levels.items():
            st = self._states[key]
            if level == 0 and not st.holds_override and not st.verified:
                self._states[key] = replace(st, verified=True, failure=None, detail=None)
                settled.append(self._states[key])
        return settled

    async def _targets(
        self, levels: dict[str, int], deadline: float | None
    ) -> tuple[dict[str, PointValue | None], dict[str, float], list[str]]:
        """The value for each level (None: release), the offset points' bases, the keys refused.

        An offset point without a base gets the value in force read first; one whose base is
        unreadable or whose target is beyond its limits is refused (its state says why).
        """
        todo: list[WorkItem] = [
            (key, None)
            for key, level in levels.items()
            if level and self._states[key].point.offset and self._states[key].base_value is None
        ]
        readings = await self._run_within_deadline(todo, self._read_base, deadline) if todo else {}
        targets: dict[str, PointValue | None] = {}
        bases: dict[str, float] = {}
        refused: list[str] = []
        for key, level in levels.items():
            st = self._states[key]
            if level == 0 or not st.point.offset:
                targets[key] = value_for_level(st.point, level)
                continue
            base = value_in_force(st, readings[key]) if st.base_value is None else st.base_value
            if isinstance(base, Outcome):
                refusal = base
            else:
                try:
                    targets[key] = offset_target(st.point, level, base)
                except PointError as err:
                    refusal = Outcome(ok=False, failure=FailureKind.OUT_OF_RANGE, detail=str(err))
                else:
                    bases[key] = base
                    continue
            self._states[key] = st.not_sent(refusal)
            refused.append(key)
        return targets, bases, refused

    async def _run_within_deadline(
        self, work: list[WorkItem], operation: Operation, deadline: float | None
    ) -> dict[str, Outcome]:
        """Run ``work`` on the bounded pool; what is unfinished at the deadline fails.

        An unfinished write stays tracked (its intent was recorded before sending), so a later
        retry or release still reaches it.
        """
        return await run_pool(
            work,
            operation,
            address_of=lambda key: self._states[key].point.address,
            deadline=deadline,
            pass_deadline=self._pass_deadline,
        )

    def _needs(self, key: str, target: PointValue | None) -> bool:
        """Whether the point must be written (or released) to reach ``target``."""
        st = self._states[key]
        if target is None:
            return st.holds_override
        return not (st.verified and st.written_value == target and st.holds_override)

    async def _one(self, key: str, target: PointValue | None) -> Outcome:
        point = self._states[key].point
        if target is None:
            return await self._release(point)
        return await self._writer.write(point, target)

    async def _read_base(self, key: str, _target: PointValue | None) -> Outcome:
        return await self._writer.read_present_value(self._states[key].point)

    async def _release(self, point: OverridePoint) -> Outcome:
        """Release ``point``; a refused release whose slot reads NULL is released all the same.

        A controller that refuses writes to an object refuses NULL too. When our write was
        refused in the first place, nothing of ours is there: without this read the point would
        stay "failed" (and be retried) for ever after the event.
        """
        outcome = await self._writer.release(point)
        if outcome.ok or outcome.failure is not FailureKind.ACCESS_DENIED:
            return outcome
        reading = await self._writer.read(point)
        if reading.ok and reading.slot_value is None:
            return Outcome(ok=True, slot_value=None, owner_priority=reading.owner_priority)
        return outcome
