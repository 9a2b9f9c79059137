"""Builders shared by the schedule tests: openleadr-shaped event dicts, plans, and the
straightforward reference schedule that the fast one is checked against.
"""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from custom_components.loadshed_ven.engine.schedule import EventPlan, Segment, parse_event

T0 = datetime(2026, 7, 1, 18, 0, tzinfo=UTC)


MIN = timedelta(minutes=1)


HOUR = timedelta(hours=1)


def interval(payload: Any = 2.0, duration: Any = HOUR, **extra: Any) -> dict[str, Any]:
    return {"duration": duration, "signal_payload": payload, "uid": 0, **extra}


def make_event(
    *,
    event_id: Any = "ev1",
    mod: Any = 0,
    status: Any = "far",
    test: Any = False,
    priority: Any = 1,
    dtstart: Any = T0,
    duration: Any = HOUR,
    intervals: Any = None,
    tolerance: Any = None,
    signal_name: Any = "SIMPLE",
) -> dict[str, Any]:
    """An event dict shaped like the one openleadr 0.5.36 hands to on_event."""
    period: dict[str, Any] = {"dtstart": dtstart, "duration": duration}
    if tolerance is not None:
        period["tolerance"] = tolerance
    return {
        "event_descriptor": {
            "event_id": event_id,
            "modification_number": mod,
            "event_status": status,
            "test_event": test,
            "priority": priority,
            "market_context": "http://mc",
            "created_date_time": T0 - HOUR,
            "modification_date_time": T0 - HOUR,
        },
        "active_period": period,
        "event_signals": [
            {
                "signal_name": signal_name,
                "signal_type": "level",
                "signal_id": "s1",
                "current_value": 0.0,
                "intervals": [interval()] if intervals is None else intervals,
            }
        ],
        "targets": [{"ven_id": "ven1"}],
        "targets_by_type": {"ven_id": ["ven1"]},
        "response_required": "always",
    }


def plan_of(raw: Any, random_offset: Any = 0.0) -> EventPlan:
    result = parse_event(raw, random_offset=random_offset)
    assert result.error is None, result.error
    assert result.plan is not None
    return result.plan


def error_of(raw: Any) -> str:
    result = parse_event(raw, random_offset=0.0)
    assert result.plan is None
    assert result.error is not None
    return result.error


def mutate(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Copy the default event and set (or with ``...`` delete) the dotted ``path``."""
    raw = copy.deepcopy(base or make_event())
    *parents, last = path.split(".")
    node: Any = raw
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is ...:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return raw


NAIVE = datetime(2026, 7, 1, 18, 0)  # noqa: DTZ001 - deliberately naive


WINDOW = {"tolerate": {"startafter": 10 * MIN}}


def minute_intervals(count: int) -> list[dict[str, Any]]:
    """``count`` one-minute intervals cycling through levels 1, 2, 3 (prices as levels)."""
    return [interval(float(1 + n % 3), MIN) for n in range(count)]


class CountingTime(datetime):
    """A datetime that counts its comparisons: the unit of work of every schedule query."""

    compared = 0

    def _count(self) -> None:
        CountingTime.compared += 1

    def __lt__(self, other: Any) -> bool:
        self._count()
        return super().__lt__(other)

    def __le__(self, other: Any) -> bool:
        self._count()
        return super().__le__(other)

    def __gt__(self, other: Any) -> bool:
        self._count()
        return super().__gt__(other)

    def __ge__(self, other: Any) -> bool:
        self._count()
        return super().__ge__(other)

    def __eq__(self, other: object) -> bool:
        self._count()
        return super().__eq__(other)

    __hash__ = datetime.__hash__


COUNTING_T0 = CountingTime(2026, 7, 1, 18, 0, tzinfo=UTC)


class ReferenceSchedule:
    """The straightforward algorithm: scan every plan at every boundary (the oracle)."""

    def __init__(self, *, act_on_test: bool = False) -> None:
        self.act_on_test = act_on_test
        self.plans: dict[str, EventPlan] = {}

    def upsert(self, plan: EventPlan) -> bool:
        current = self.plans.get(plan.event_id)
        if current is not None and plan.modification_number < current.modification_number:
            return False
        self.plans[plan.event_id] = plan
        return True

    def remove(self, event_id: str) -> bool:
        return self.plans.pop(event_id, None) is not None

    def retain_only(self, ids: list[str]) -> list[str]:
        gone = [event_id for event_id in self.plans if event_id not in ids]
        for event_id in gone:
            del self.plans[event_id]
        return gone

    def prune(self, t: datetime) -> list[str]:
        done = [p.event_id for p in self.plans.values() if p.end is not None and p.end <= t]
        for event_id in done:
            del self.plans[event_id]
        return done

    @staticmethod
    def segment_at(plan: EventPlan, t: datetime) -> Segment | None:
        if plan.cancelled:
            return None
        return next((seg for seg in plan.segments if seg.covers(t)), None)

    def active_event_at(self, t: datetime) -> EventPlan | None:
        candidates = []
        for plan in self.plans.values():
            seg = self.segment_at(plan, t)
            if seg is not None and (self.act_on_test or not plan.test_event):
                rank = plan.priority or 2**32
                first = plan.start if plan.start is not None else datetime.max.replace(tzinfo=UTC)
                candidates.append(((-seg.level, rank, first, plan.event_id), plan))
        return min(candidates, key=lambda item: item[0])[1] if candidates else None

    def level_at(self, t: datetime) -> int:
        plan = self.active_event_at(t)
        seg = None if plan is None else self.segment_at(plan, t)
        return 0 if seg is None else seg.level

    def next_change_after(self, t: datetime) -> datetime | None:
        current = self.resolved(t)
        points: set[datetime] = set()
        for plan in self.plans.values():
            if not plan.cancelled:
                points.update(seg.start for seg in plan.segments)
                points.update(seg.end for seg in plan.segments if seg.end is not None)
        return next((b for b in sorted(points) if b > t and self.resolved(b) != current), None)

    def resolved(self, t: datetime) -> tuple[int, str | None]:
        plan = self.active_event_at(t)
        return (self.level_at(t), None if plan is None else plan.event_id)


def make_plan(
    event_id: str,
    spans: list[tuple[int, int, int]],
    *,
    open_ended: bool = False,
    mod: int = 0,
    status: str = "far",
    test: bool = False,
    priority: int = 0,
    origin: datetime = T0,
) -> EventPlan:
    """A plan of segments laid out as ``(gap, length, level)`` in minutes, one after another."""
    segments: list[Segment] = []
    cursor = origin
    for gap, length, level in spans:
        start = cursor + gap * MIN
        cursor = start + length * MIN
        segments.append(Segment(start, cursor, level))
    if open_ended and segments:
        segments[-1] = segments[-1]._replace(end=None)
    return EventPlan(
        event_id=event_id,
        modification_number=mod,
        status=status,
        test_event=test,
        priority=priority,
        start=segments[0].start if segments else None,
        end=segments[-1].end if segments else None,
        offset=timedelta(0),
        segments=tuple(segments),
    )


def random_plans(count: int, seed: int, origin: datetime = T0) -> list[EventPlan]:
    """``count`` overlapping events over a day: mixed levels, priorities, tests and cancels."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        spans = [(rng.randrange(-60, 1440), rng.randrange(1, 120), rng.randrange(4))]
        spans += [
            (rng.choice([0, 0, 5]), rng.randrange(1, 60), rng.randrange(4))
            for _ in range(rng.randrange(3))
        ]
        out.append(
            make_plan(
                f"ev{n:04d}",
                spans,
                status="cancelled" if rng.random() < 0.05 else "far",
                test=rng.random() < 0.05,
                priority=rng.randrange(4),
                origin=origin,
            )
        )
    return out
