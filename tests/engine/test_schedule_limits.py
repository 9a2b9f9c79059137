"""The schedule's limits (engine/schedule.py): the ends of the calendar, the interval limit, and
near-linear work on large events.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from custom_components.loadshed_ven.engine.schedule import (
    MAX_INTERVALS,
    EventPlan,
    Schedule,
    parse_event,
)

from .schedule_helpers import (
    COUNTING_T0,
    HOUR,
    MIN,
    T0,
    WINDOW,
    CountingTime,
    ReferenceSchedule,
    error_of,
    interval,
    make_event,
    make_plan,
    minute_intervals,
    mutate,
    plan_of,
    random_plans,
)

# --- overflow at the ends of the calendar ---------------------------------------------------

LAST_HOUR = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("active_period.dtstart", LAST_HOUR),  # + PT1H active period: past year 9999
        ("active_period.duration", timedelta.max),
        ("event_signals.0.intervals.0.duration", timedelta.max),
        ("event_signals.0.intervals.0.dtstart", LAST_HOUR),
        ("active_period.tolerance", {"tolerate": {"startafter": timedelta.max}}),
    ],
)
def test_times_past_the_calendar_are_refused_not_raised(path: str, value: Any) -> None:
    result = parse_event(mutate(path, value), random_offset=1.0)
    assert result.plan is None
    assert result.error is not None
    assert "out of range" in result.error or "no interval falls inside" in result.error


def test_start_after_offset_past_the_calendar_is_refused() -> None:
    # A fine event near the end of the calendar, shifted by a start-after offset beyond it.
    late = datetime(9999, 12, 31, 20, 0, tzinfo=UTC)
    raw = make_event(dtstart=late, tolerance={"tolerate": {"startafter": 10 * HOUR}})
    for source in (1.0, lambda _id, window: window):
        result = parse_event(raw, random_offset=source)
        assert result.error == "the event's times are out of range"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("active_period.dtstart", LAST_HOUR),
        ("active_period.duration", timedelta.max),
        ("event_signals.0.intervals.0.duration", timedelta.max),
        ("active_period.tolerance", {"tolerate": {"startafter": timedelta.max}}),
    ],
)
def test_cancel_with_times_past_the_calendar_is_still_a_cancel(path: str, value: Any) -> None:
    plan = plan_of(mutate(path, value, make_event(status="cancelled", mod=2)), random_offset=1.0)
    assert plan.cancelled
    assert plan.segments == ()


def test_parse_never_raises_when_the_offset_source_fails() -> None:
    def broken(_event_id: str, _window: timedelta) -> timedelta:
        raise ValueError("no entropy")

    result = parse_event(make_event(tolerance=WINDOW), random_offset=broken)
    assert result.error == "the event could not be read (ValueError)"
    cancel = make_event(tolerance=WINDOW, status="cancelled", mod=1)
    assert plan_of(cancel, random_offset=broken).cancelled


@pytest.mark.parametrize(
    "at",
    [
        datetime.max.replace(tzinfo=UTC),
        datetime.min.replace(tzinfo=UTC),
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-23))),
        datetime.min.replace(tzinfo=timezone(timedelta(hours=23))),
    ],
)
def test_queries_at_the_ends_of_the_calendar_do_not_raise(at: datetime) -> None:
    open_ended = make_event(
        event_id="open", duration=timedelta(0), intervals=[interval(1.0, timedelta(0))]
    )
    schedule = Schedule()
    for raw in (make_event(), open_ended):
        schedule.upsert(plan_of(raw))
        result = plan_of(raw)
        result.level_at(at)
        result.next_change_after(at)
        result.boundaries()
    schedule.active_event_at(at)
    schedule.level_at(at)
    schedule.next_change_after(at)
    schedule.prune(at)


# --- the interval limit ---------------------------------------------------------------------


def test_event_at_max_intervals_is_accepted() -> None:
    raw = make_event(duration=MAX_INTERVALS * MIN, intervals=minute_intervals(MAX_INTERVALS))
    plan = plan_of(raw)
    assert len(plan.segments) == MAX_INTERVALS
    assert plan.end == T0 + MAX_INTERVALS * MIN


def test_event_over_max_intervals_is_refused_with_reason() -> None:
    count = MAX_INTERVALS + 1
    raw = make_event(duration=count * MIN, intervals=minute_intervals(count))
    assert error_of(raw) == (
        f"the SIMPLE signal has {count:,} intervals; "
        f"at most {MAX_INTERVALS:,} are accepted per event"
    )


def test_cancel_over_max_intervals_is_still_a_cancel() -> None:
    count = MAX_INTERVALS + 1
    raw = make_event(status="cancelled", duration=count * MIN, intervals=minute_intervals(count))
    assert plan_of(raw).cancelled


def test_parse_event_is_linear_in_the_number_of_intervals() -> None:
    def work(count: int) -> int:
        raw = make_event(
            dtstart=COUNTING_T0, duration=count * MIN, intervals=minute_intervals(count)
        )
        CountingTime.compared = 0
        assert len(plan_of(raw).segments) == count
        return CountingTime.compared

    small, large = work(MAX_INTERVALS // 2), work(MAX_INTERVALS)
    assert large <= 2.1 * small, (small, large)


# --- the schedule at scale, against the straightforward algorithm -------------------------


def runtime_work(schedule: Schedule | ReferenceSchedule, plans: list[EventPlan]) -> int:
    """Comparisons made by the runtime's pattern: each event in, then every change followed.

    After each event the runtime prunes, resolves the level and asks for the next change;
    then its timer fires at every change and does the same.
    """
    CountingTime.compared = 0
    now = COUNTING_T0 - HOUR
    for plan in plans:
        schedule.upsert(plan)
        schedule.prune(now)
        schedule.active_event_at(now)
        schedule.level_at(now)
        schedule.next_change_after(now)
    at: datetime | None = now
    while at is not None:
        schedule.prune(at)
        schedule.active_event_at(at)
        schedule.level_at(at)
        at = schedule.next_change_after(at)
    return CountingTime.compared


def one_event_of_minutes(count: int) -> list[EventPlan]:
    return [make_plan("day", [(0, 1, 1 + n % 3) for n in range(count)], origin=COUNTING_T0)]


def test_schedule_with_1440_intervals_evaluates_in_linear_time() -> None:
    half = runtime_work(Schedule(), one_event_of_minutes(720))
    full = runtime_work(Schedule(), one_event_of_minutes(1440))
    # O(S log S): doubling S a little more than doubles the work. Quadratic would be 4x.
    assert full < 2.5 * half, (half, full)
    assert full < 8 * 1440 * math.log2(1440), full  # a few bisections per change


def test_thousand_events_in_one_message_evaluate_in_near_linear_time() -> None:
    half = runtime_work(Schedule(), random_plans(500, seed=3, origin=COUNTING_T0))
    full = runtime_work(Schedule(), random_plans(1000, seed=3, origin=COUNTING_T0))
    assert full < 2.8 * half, (half, full)


def test_work_measure_detects_the_quadratic_reference() -> None:
    # The same measure on the straightforward algorithm: doubling the intervals quadruples it,
    # so the linear-time tests above would fail on it.
    half = runtime_work(ReferenceSchedule(), one_event_of_minutes(60))
    full = runtime_work(ReferenceSchedule(), one_event_of_minutes(120))
    assert full > 3.5 * half, (half, full)
