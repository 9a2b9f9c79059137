"""The schedule against the straightforward algorithm (``ReferenceSchedule``): generated schedules
and a thousand overlapping events.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.loadshed_ven.engine.schedule import MAX_LEVEL, EventPlan, Schedule

from .schedule_helpers import HOUR, MIN, T0, ReferenceSchedule, make_plan, random_plans

# --- the schedule at scale, against the straightforward algorithm -------------------------

EVENT_IDS = ["a", "b", "c", "d", "e"]


@st.composite
def plans(draw: st.DrawFn) -> EventPlan:
    """A plan: sorted, disjoint segments (touching or with gaps), some open-ended."""
    first = draw(st.integers(-120, 120))
    spans = [(first, draw(st.integers(1, 40)), draw(st.integers(0, MAX_LEVEL)))]
    for _ in range(draw(st.integers(0, 5))):
        gap = draw(st.sampled_from([0, 0, 1, 15]))
        spans.append((gap, draw(st.integers(1, 40)), draw(st.integers(0, MAX_LEVEL))))
    return make_plan(
        draw(st.sampled_from(EVENT_IDS)),
        spans,
        open_ended=draw(st.integers(0, 5)) == 0,
        mod=draw(st.integers(0, 2)),
        status=draw(st.sampled_from(["far", "far", "active", "cancelled"])),
        test=draw(st.integers(0, 4)) == 0,
        priority=draw(st.sampled_from([0, 1, 2, 2**32 - 1])),
    )


minutes = st.integers(-150, 300).map(lambda m: T0 + m * MIN)


operations = st.one_of(
    st.tuples(st.just("upsert"), plans()),
    st.tuples(st.just("upsert"), plans()),
    st.tuples(st.just("upsert"), plans()),
    st.tuples(st.just("remove"), st.sampled_from(EVENT_IDS)),
    st.tuples(st.just("retain_only"), st.lists(st.sampled_from(EVENT_IDS), max_size=4)),
    st.tuples(st.just("prune"), minutes),
)


def assert_same_answers(fast: Schedule, reference: ReferenceSchedule, at: datetime) -> None:
    expected = reference.active_event_at(at)
    assert fast.active_event_at(at) is expected, at
    assert fast.level_at(at) == reference.level_at(at), at
    assert fast.next_change_after(at) == reference.next_change_after(at), at


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(
    ops=st.lists(operations, min_size=1, max_size=12),
    probes=st.lists(minutes, min_size=1, max_size=4),
    act_on_test=st.booleans(),
)
def test_fast_schedule_matches_reference_on_generated_schedules(
    ops: list[tuple[str, Any]], probes: list[datetime], act_on_test: bool
) -> None:
    fast, reference = Schedule(act_on_test=act_on_test), ReferenceSchedule(act_on_test=act_on_test)
    for name, argument in ops:
        assert getattr(fast, name)(argument) == getattr(reference, name)(argument)
        assert fast.plans == tuple(reference.plans.values())
        for at in probes:
            assert_same_answers(fast, reference, at)
    # Walk every change as the runtime's timer does; earlier times after a prune too.
    at: datetime | None = T0 - 3 * HOUR
    while at is not None:
        assert_same_answers(fast, reference, at)
        at = fast.next_change_after(at)


def test_switching_test_events_on_re_resolves() -> None:
    schedule = Schedule()
    schedule.upsert(make_plan("t", [(0, 60, 3)], test=True))
    schedule.upsert(make_plan("real", [(0, 60, 1)]))
    assert schedule.level_at(T0) == 1
    schedule.act_on_test = True
    assert schedule.level_at(T0) == 3


def test_thousand_events_next_change_matches_reference() -> None:
    fast, reference = Schedule(), ReferenceSchedule()
    for plan in random_plans(1000, seed=7):
        fast.upsert(plan)
        reference.upsert(plan)
    rng = random.Random(11)
    probes = [T0 + timedelta(minutes=rng.uniform(-120, 1600)) for _ in range(30)]
    for at in probes:
        assert_same_answers(fast, reference, at)
    # Thirty consecutive changes from the middle of the day.
    at: datetime | None = T0 + 12 * HOUR
    for _ in range(30):
        assert at is not None
        assert_same_answers(fast, reference, at)
        at = fast.next_change_after(at)
    # Forgetting events (implied cancels and pruning) keeps the answers right.
    keep = [p.event_id for p in fast.plans][::2]
    assert fast.retain_only(keep) == reference.retain_only(keep)
    assert fast.prune(T0 + 6 * HOUR) == reference.prune(T0 + 6 * HOUR)
    for at in probes:
        assert_same_answers(fast, reference, at)
