"""The events one VEN has seen, as the operator's entities show them.

The schedule holds what drives the building; this keeps what people are shown: the event in
force, else the next one scheduled, else the last one seen, each with a status worked out from
its plan when it is asked for. An event that ended early (cancelled, withdrawn by the VTN,
released by the operator) is recorded as such, so nothing keeps calling it active. Memory is
bounded: beyond the scheduled events, only the most recent ones are kept.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Final

from .event_plan import CANCELLED, EventPlan, Segment
from .schedule import Schedule

MANUAL_PREFIX: Final = "manual-"
# Events kept beyond those still scheduled: a VTN may list many over time.
KEPT: Final = 50


class EventStatus(StrEnum):
    """How an event looks to the operator now. Values are stable: entity states and translations."""

    SCHEDULED = "scheduled"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    OPTED_OUT = "opted_out"

    @property
    def open(self) -> bool:
        """Whether the event can still be opted out of."""
        return self in (EventStatus.SCHEDULED, EventStatus.ACTIVE)


@dataclass(frozen=True, kw_only=True)
class EventView:
    """What the entities show about one event."""

    event_id: str
    status: EventStatus
    start: datetime | None
    end: datetime | None
    test_event: bool
    manual: bool


class EventHistory:
    """Every event seen recently, most recent last, and how each looks now."""

    def __init__(self, schedule: Schedule, opted_out: AbstractSet[str]) -> None:
        """``schedule`` and ``opted_out`` are the VEN's own, read as they change."""
        self._schedule = schedule
        self._opted_out = opted_out
        self._plans: dict[str, EventPlan] = {}

    def __contains__(self, event_id: object) -> bool:
        """Whether ``event_id`` was seen (and is still remembered)."""
        return event_id in self._plans

    def get(self, event_id: str) -> EventPlan | None:
        """The plan last seen for ``event_id``."""
        return self._plans.get(event_id)

    def remember(self, plan: EventPlan) -> None:
        """Record ``plan`` as the most recent; forget the oldest unscheduled events over KEPT."""
        self._plans.pop(plan.event_id, None)
        self._plans[plan.event_id] = plan
        excess = len(self._plans) - max(KEPT, len(self._schedule.plans))
        if excess <= 0:
            return
        scheduled = {p.event_id for p in self._schedule.plans}
        for event_id in [i for i in self._plans if i not in scheduled][:excess]:
            del self._plans[event_id]

    def mark_cancelled(self, event_id: str) -> None:
        """The event was withdrawn (implied cancel): show it cancelled from now on."""
        if (plan := self._plans.get(event_id)) is not None:
            self._plans[event_id] = replace(plan, status=CANCELLED)

    def mark_ended(self, event_id: str, now: datetime) -> None:
        """The event was cut short at ``now`` (a manual shed released): show it completed."""
        if (plan := self._plans.get(event_id)) is None:
            return
        segments = tuple(
            Segment(seg.start, now if seg.end is None else min(seg.end, now), seg.level)
            for seg in plan.segments
            if seg.start < now
        )
        self._plans[event_id] = replace(plan, end=now, segments=segments)

    def current(self, now: datetime) -> EventView | None:
        """The event in force at ``now``, else the next one scheduled, else the last one seen."""
        plan = self._schedule.active_event_at(now)
        if plan is None:
            upcoming = [p for p in self._schedule.plans if p.start is not None and p.start > now]
            plan = min(upcoming, key=lambda p: p.start or now, default=None)
        if plan is None and self._plans:
            plan = next(reversed(self._plans.values()))
        return None if plan is None else self.view(plan, now)

    def recent(self, now: datetime, limit: int) -> list[EventView]:
        """The last ``limit`` events seen, oldest first."""
        return [self.view(plan, now) for plan in list(self._plans.values())[-limit:]]

    def view(self, plan: EventPlan, now: datetime) -> EventView:
        """How ``plan`` looks at ``now``."""
        if plan.event_id in self._opted_out:
            status = EventStatus.OPTED_OUT
        elif plan.cancelled:
            status = EventStatus.CANCELLED
        elif plan.start is not None and now < plan.start:
            status = EventStatus.SCHEDULED
        elif plan.end is not None and now >= plan.end:
            status = EventStatus.COMPLETED
        else:
            status = EventStatus.ACTIVE
        return EventView(
            event_id=plan.event_id,
            status=status,
            start=plan.start,
            end=plan.end,
            test_event=plan.test_event,
            manual=plan.event_id.startswith(MANUAL_PREFIX),
        )
