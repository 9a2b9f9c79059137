"""Level resolution (engine/schedule.py): one plan's queries, then the schedule's choice among
events (modifications, cancels, ties, test events), pruning and the next change.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from custom_components.loadshed_ven.engine.schedule import EventPlan, Schedule

from .schedule_helpers import HOUR, MIN, NAIVE, T0, interval, make_event, plan_of

# --- EventPlan queries --------------------------------------------------------------------


@pytest.fixture
def stepped() -> EventPlan:
    """Level 1 for 30 min, 1 again for 30 min, 3 for 30 min, from T0."""
    return plan_of(
        make_event(
            duration=90 * MIN,
            intervals=[interval(1.0, 30 * MIN), interval(1.0, 30 * MIN), interval(3.0, 30 * MIN)],
        )
    )


@pytest.mark.parametrize(
    ("at", "level"),
    [(-MIN, 0), (0 * MIN, 1), (59 * MIN, 1), (60 * MIN, 3), (89 * MIN, 3), (90 * MIN, 0)],
)
def test_plan_level_at(stepped: EventPlan, at: timedelta, level: int) -> None:
    assert stepped.level_at(T0 + at) == level


@pytest.mark.parametrize(
    ("at", "change"),
    [(-HOUR, 0 * MIN), (0 * MIN, 60 * MIN), (30 * MIN, 60 * MIN), (60 * MIN, 90 * MIN)],
)
def test_plan_next_change_skips_equal_levels(
    stepped: EventPlan, at: timedelta, change: timedelta
) -> None:
    assert stepped.next_change_after(T0 + at) == T0 + change


def test_plan_next_change_after_the_end(stepped: EventPlan) -> None:
    assert stepped.next_change_after(T0 + 90 * MIN) is None
    assert stepped.boundaries() == [T0 + n * 30 * MIN for n in range(4)]


def test_plan_rejects_naive_times(stepped: EventPlan) -> None:
    with pytest.raises(ValueError, match="naive"):
        stepped.level_at(NAIVE)
    with pytest.raises(ValueError, match="naive"):
        stepped.next_change_after(NAIVE)


# --- Schedule -----------------------------------------------------------------------------


def plan(
    event_id: str,
    level: float = 2.0,
    start: datetime = T0,
    length: timedelta = HOUR,
    **kwargs: Any,
) -> EventPlan:
    raw = make_event(
        event_id=event_id,
        dtstart=start,
        duration=length,
        intervals=[interval(level, length)],
        **kwargs,
    )
    return plan_of(raw)


def test_upsert_keeps_the_newest_modification() -> None:
    schedule = Schedule()
    assert schedule.upsert(plan("a", mod=1))
    assert schedule.upsert(plan("a", 3.0, mod=1))  # re-delivery replaces
    assert not schedule.upsert(plan("a", 1.0, mod=0))  # stale
    assert schedule.level_at(T0) == 3
    assert schedule.upsert(plan("a", 1.0, mod=2))
    assert schedule.level_at(T0) == 1
    stored = schedule.get("a")
    assert stored is not None
    assert stored.modification_number == 2
    assert schedule.get("b") is None


def test_remove_and_retain_only() -> None:
    schedule = Schedule()
    for event_id in ("a", "b", "c"):
        schedule.upsert(plan(event_id))
    assert schedule.remove("b")
    assert not schedule.remove("b")
    schedule.upsert(plan("d"))
    assert schedule.retain_only(["c", "x"]) == ["a", "d"]
    assert [p.event_id for p in schedule.plans] == ["c"]
    assert schedule.retain_only([]) == ["c"]
    assert schedule.plans == ()


def test_highest_level_wins() -> None:
    schedule = Schedule()
    schedule.upsert(plan("low", 1.0, priority=1))
    schedule.upsert(plan("high", 3.0, priority=9))
    active = schedule.active_event_at(T0)
    assert active is not None
    assert active.event_id == "high"
    assert schedule.level_at(T0) == 3


@pytest.mark.parametrize(
    ("a_kwargs", "b_kwargs", "winner"),
    [
        ({"priority": 2}, {"priority": 1}, "b"),  # lower number = higher priority
        ({"priority": 0}, {"priority": 9}, "b"),  # 0 means no priority: the lowest
        ({"priority": 3, "start": T0 - MIN}, {"priority": 3}, "a"),  # earlier start
        ({"priority": 3}, {"priority": 3}, "a"),  # then the event id
    ],
)
def test_ties_on_level(a_kwargs: dict[str, Any], b_kwargs: dict[str, Any], winner: str) -> None:
    schedule = Schedule()
    schedule.upsert(plan("b", **b_kwargs))
    schedule.upsert(plan("a", **a_kwargs))
    active = schedule.active_event_at(T0)
    assert active is not None
    assert active.event_id == winner


def test_test_events_count_only_when_asked() -> None:
    test_plan = plan("t", 3.0, test=True)
    quiet, acting = Schedule(), Schedule(act_on_test=True)
    for schedule in (quiet, acting):
        schedule.upsert(test_plan)
        schedule.upsert(plan("real", 1.0))
    assert quiet.level_at(T0) == 1
    assert acting.level_at(T0) == 3


def test_cancelled_events_do_not_count() -> None:
    schedule = Schedule()
    schedule.upsert(plan("a", 3.0))
    schedule.upsert(plan("a", 3.0, status="cancelled", mod=1))
    assert schedule.level_at(T0) == 0
    assert schedule.active_event_at(T0) is None
    assert schedule.next_change_after(T0 - HOUR) is None


def test_level_zero_interval_still_names_its_event() -> None:
    schedule = Schedule()
    schedule.upsert(plan("zero", 0.0))
    active = schedule.active_event_at(T0)
    assert active is not None
    assert active.event_id == "zero"
    assert schedule.level_at(T0) == 0
    assert schedule.active_event_at(T0 + HOUR) is None


def test_next_change_across_events() -> None:
    schedule = Schedule()
    schedule.upsert(plan("a", 2.0, T0, 2 * HOUR))
    schedule.upsert(plan("b", 1.0, T0 + HOUR, 2 * HOUR))  # hidden under a, then drives
    schedule.upsert(plan("t", 3.0, T0 + 30 * MIN, 10 * MIN, test=True))  # ignored
    expected = [T0, T0 + 2 * HOUR, T0 + 3 * HOUR, None]
    t: datetime | None = T0 - HOUR
    seen: list[datetime | None] = []
    while t is not None:
        t = schedule.next_change_after(t)
        seen.append(t)
    assert seen == expected
    assert schedule.level_at(T0 + 150 * MIN) == 1


def test_next_change_when_the_driving_event_changes_at_the_same_level() -> None:
    schedule = Schedule()
    schedule.upsert(plan("a", 2.0, T0, HOUR, priority=1))
    schedule.upsert(plan("b", 2.0, T0, 2 * HOUR, priority=2))
    assert schedule.next_change_after(T0) == T0 + HOUR
    active = schedule.active_event_at(T0 + HOUR)
    assert active is not None
    assert active.event_id == "b"


def test_prune_drops_only_finished_events() -> None:
    schedule = Schedule()
    schedule.upsert(plan("done", start=T0 - 2 * HOUR))
    schedule.upsert(plan("now"))
    schedule.upsert(
        plan_of(
            make_event(
                event_id="open", duration=timedelta(0), intervals=[interval(1.0, timedelta(0))]
            )
        )
    )
    cancel = make_event(event_id="odd-cancel", status="cancelled")
    del cancel["active_period"]
    schedule.upsert(plan_of(cancel))
    assert schedule.prune(T0) == ["done"]
    assert schedule.prune(T0 + HOUR) == ["now"]
    assert [p.event_id for p in schedule.plans] == ["open", "odd-cancel"]


@pytest.mark.parametrize("method", ["level_at", "active_event_at", "next_change_after", "prune"])
def test_schedule_rejects_naive_times(method: str) -> None:
    with pytest.raises(ValueError, match="naive"):
        getattr(Schedule(), method)(NAIVE)
