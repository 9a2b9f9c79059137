"""The SIMPLE-signal event schedule of one VEN: which event drives the level, and when.

Events arrive as plans (:mod:`.event_parse` turns openleadr's dicts into :class:`EventPlan`).
Where plans overlap, the highest level wins; ties go to the higher OpenADR priority (lower
number, 0 = lowest), then the earliest start, then the event id. Cancelled plans, and test
events unless ``act_on_test``, never drive the level.

The resolved level is kept as a :class:`~.timeline.Timeline` so that the questions asked on every
poll and timer (what is in force now, when does it change next) are bisections, not a walk over
every event at every boundary. A new event is laid over the timeline in place; removing or
changing a counted event marks it for a rebuild on the next question, and forgetting finished
events only makes times before them unreliable, which a question about such a time rebuilds.

Events that name targets (``eiTarget``) count only when :attr:`Schedule.targeting` says they
reach a point of this VEN; the level above is the building's. Each point follows the best counted
event that reaches it, which :meth:`Schedule.active_levels_at` feeds to
:class:`~.targets.PointTargets`. The timeline only knows the building's winner, so while a
targeted event counts, :meth:`Schedule.next_change_after` also asks each counted plan (few)
for its next change.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from .event_parse import (
    MAX_INTERVALS,
    OffsetSource,
    ParseResult,
    StableOffset,
    normalise_event_id,
    parse_event,
)
from .event_plan import CANCELLED, MAX_LEVEL, EventPlan, Segment, require_aware
from .targets import EventTargets, PointTargets
from .timeline import Piece, Rank, Timeline

__all__ = [
    "CANCELLED",
    "MAX_INTERVALS",
    "MAX_LEVEL",
    "EventPlan",
    "OffsetSource",
    "ParseResult",
    "Schedule",
    "Segment",
    "StableOffset",
    "normalise_event_id",
    "parse_event",
]

_NO_PRIORITY_RANK = 2**32  # OpenADR priority 0 means "no priority": below every xs:unsignedInt.
_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


class Schedule:
    """Every event known to one VEN, and the level they resolve to."""

    def __init__(self, *, act_on_test: bool = False) -> None:
        """Create an empty schedule; test events count only with ``act_on_test``."""
        self._act_on_test = act_on_test
        self._plans: dict[str, EventPlan] = {}
        self._timeline = Timeline()
        self._rebuild = False  # a counted plan went away or changed
        self._exact_from: datetime | None = None  # after prune(t): right only from t on
        self._earliest_end: datetime | None = None  # of every plan with an end; None: none
        self._earliest_known = True
        self._targeting: PointTargets | None = None
        self._targeted: set[str] = set()  # ids of known plans that name targets

    @property
    def targeting(self) -> PointTargets | None:
        """Which points each event reaches; ``None``: every event reaches every point."""
        return self._targeting

    @targeting.setter
    def targeting(self, value: PointTargets | None) -> None:
        # Set again whenever what it answers changes (controllers, the VEN's id).
        self._targeting = value
        self._rebuild = True

    @property
    def act_on_test(self) -> bool:
        """Whether test events drive the level."""
        return self._act_on_test

    @act_on_test.setter
    def act_on_test(self, value: bool) -> None:
        if value != self._act_on_test:
            self._act_on_test = value
            self._rebuild = True

    @property
    def plans(self) -> tuple[EventPlan, ...]:
        """All known plans, in arrival order."""
        return tuple(self._plans.values())

    def get(self, event_id: str) -> EventPlan | None:
        """Return the plan of ``event_id``, if known."""
        return self._plans.get(event_id)

    def upsert(self, plan: EventPlan) -> bool:
        """Store or replace a plan; returns ``False`` (ignored) when it is stale.

        A plan is stale when the stored plan of the same event has a higher
        ``modification_number``; an equal number replaces (a re-delivery).
        """
        current = self._plans.get(plan.event_id)
        if current is not None and plan.modification_number < current.modification_number:
            return False
        self._plans[plan.event_id] = plan
        if plan.targets is not None:
            self._targeted.add(plan.event_id)
        else:
            self._targeted.discard(plan.event_id)
        if current is not None and current == plan:
            return True  # a re-delivery changes nothing
        if current is not None and self._counts(current):
            self._rebuild = True  # its old segments must go
        elif not self._rebuild and self._counts(plan):
            self._timeline.add(self._pieces(plan))
        if current is not None:
            self._earliest_known = False
        elif plan.end is not None and self._earliest_known:
            ends = [e for e in (self._earliest_end, plan.end) if e is not None]
            self._earliest_end = min(ends)
        return True

    def remove(self, event_id: str) -> bool:
        """Forget an event; returns whether it was known."""
        plan = self._plans.pop(event_id, None)
        if plan is None:
            return False
        self._forgotten(plan)
        return True

    def retain_only(self, ids: Iterable[str]) -> list[str]:
        """Forget every event not in ``ids`` (implied cancellation); return those ids."""
        keep = set(ids)
        gone = [event_id for event_id in self._plans if event_id not in keep]
        for event_id in gone:
            self._forgotten(self._plans.pop(event_id))
        return gone

    def prune(self, t: datetime) -> list[str]:
        """Forget events that ended at or before ``t``; return their ids."""
        require_aware(t)
        if not self._earliest_known:
            ends = [p.end for p in self._plans.values() if p.end is not None]
            self._earliest_end = min(ends, default=None)
            self._earliest_known = True
        if self._earliest_end is None or t < self._earliest_end:
            return []  # the common case on every poll: nothing has ended
        done = [p.event_id for p in self._plans.values() if p.end is not None and p.end <= t]
        for event_id in done:
            plan = self._plans.pop(event_id)
            self._targeted.discard(event_id)
            # Its segments all lie before t: the timeline stays right from t on.
            if self._counts(plan) and (self._exact_from is None or self._exact_from < t):
                self._exact_from = t
        self._earliest_known = False
        return done

    def active_event_at(self, t: datetime) -> EventPlan | None:
        """Return the event driving the level at ``t``.

        That is the event in one of its intervals with the highest level; ties go to the
        higher OpenADR priority (lower number, 0 = lowest), then the earliest start, then
        the event id. ``None`` when no counted event is inside an interval.
        """
        rank = self._resolved(t).rank_at(t)
        return None if rank is None else self._plans[rank[3]]

    def level_at(self, t: datetime) -> int:
        """Return the resolved SIMPLE level at ``t`` (0 when nothing is active)."""
        rank = self._resolved(t).rank_at(t)
        return 0 if rank is None else -rank[0]

    def next_change_after(self, t: datetime) -> datetime | None:
        """Return the first instant after ``t`` where the level or driving event changes.

        While a targeted event counts, also where any point's level may change.
        """
        when = self._resolved(t).next_change_after(t)
        if self._split():
            changes = [p.next_change_after(t) for p in self._plans.values() if self._counts(p)]
            when = min((c for c in (when, *changes) if c is not None), default=None)
        return when

    def active_levels_at(self, t: datetime) -> list[tuple[EventTargets | None, int]]:
        """(targets, level) of every counted event in one of its intervals at ``t``.

        Cheap while no targeted event counts: only the building's winner is returned then.
        """
        require_aware(t)
        if not self._split():
            plan = self.active_event_at(t)
            return [] if plan is None else [(plan.targets, plan.level_at(t))]
        active = [(p.targets, p.level_at(t)) for p in self._plans.values() if self._counts(p)]
        return [(targets, level) for targets, level in active if level]

    def _resolved(self, t: datetime) -> Timeline:
        """The timeline, rebuilt first when it is not right at ``t``."""
        require_aware(t)
        if self._rebuild or (self._exact_from is not None and t < self._exact_from):
            self._timeline.rebuild(
                piece
                for plan in self._plans.values()
                if self._counts(plan)
                for piece in self._pieces(plan)
            )
            self._rebuild = False
            self._exact_from = None
        return self._timeline

    def _forgotten(self, plan: EventPlan) -> None:
        self._targeted.discard(plan.event_id)
        if self._counts(plan):
            self._rebuild = True
        if plan.end is not None and plan.end == self._earliest_end:
            self._earliest_known = False

    def _counts(self, plan: EventPlan) -> bool:
        return (
            not plan.cancelled
            and (self._act_on_test or not plan.test_event)
            and (self._targeting is None or self._targeting.reaches_any(plan.targets))
        )

    def _split(self) -> bool:
        """Whether a counted event reaches only some points (levels may differ by point)."""
        targeting = self._targeting
        return targeting is not None and any(
            self._counts(plan) and not targeting.covers_all(plan.targets)
            for plan in (self._plans[i] for i in self._targeted)
        )

    @staticmethod
    def _pieces(plan: EventPlan) -> list[Piece]:
        rank_of = plan.priority or _NO_PRIORITY_RANK
        first = plan.start if plan.start is not None else _FAR_FUTURE
        return [
            (seg.start, seg.end, _rank(seg.level, rank_of, first, plan.event_id))
            for seg in plan.segments
        ]


def _rank(level: int, priority_rank: int, first: datetime, event_id: str) -> Rank:
    return (-level, priority_rank, first, event_id)
