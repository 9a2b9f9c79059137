"""Event parsing and level resolution (engine/schedule.py)."""

from __future__ import annotations

import copy
import math
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openleadr import messaging, objects

from custom_components.loadshed_ven.engine.schedule import (
    MAX_INTERVALS,
    MAX_LEVEL,
    EventPlan,
    Schedule,
    Segment,
    StableOffset,
    normalise_event_id,
    parse_event,
)

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


# --- parsing: accepted events -------------------------------------------------------------


def test_single_interval_event() -> None:
    plan = plan_of(make_event())
    assert plan == EventPlan(
        event_id="ev1",
        modification_number=0,
        status="far",
        test_event=False,
        priority=1,
        start=T0,
        end=T0 + HOUR,
        offset=timedelta(0),
        segments=(Segment(T0, T0 + HOUR, 2),),
    )
    assert not plan.cancelled


def test_intervals_without_dtstart_follow_each_other() -> None:
    raw = make_event(duration=90 * MIN, intervals=[interval(1.0, 30 * MIN), interval(3, 60 * MIN)])
    assert plan_of(raw).segments == (
        Segment(T0, T0 + 30 * MIN, 1),
        Segment(T0 + 30 * MIN, T0 + 90 * MIN, 3),
    )


def test_own_dtstart_wins_and_gaps_are_level_zero() -> None:
    raw = make_event(
        intervals=[
            interval(2.0, 10 * MIN, dtstart=T0),
            interval(3.0, 10 * MIN, dtstart=T0 + 30 * MIN),
            interval(1.0, 10 * MIN),  # follows the previous interval's end
        ]
    )
    plan = plan_of(raw)
    assert [s.start for s in plan.segments] == [T0, T0 + 30 * MIN, T0 + 40 * MIN]
    assert plan.level_at(T0 + 15 * MIN) == 0
    assert plan.level_at(T0 + 45 * MIN) == 1
    assert plan.end == T0 + 50 * MIN


def test_open_ended_event() -> None:
    raw = make_event(duration=timedelta(0), intervals=[interval(1.0, 10 * MIN), interval(2.0, 0)])
    raw["event_signals"][0]["intervals"][1]["duration"] = timedelta(0)
    plan = plan_of(raw)
    assert plan.end is None
    assert plan.segments[-1] == Segment(T0 + 10 * MIN, None, 2)
    assert plan.level_at(T0 + timedelta(days=400)) == 2


def test_open_ended_last_interval_stops_at_active_period_end() -> None:
    raw = make_event(intervals=[interval(1.0, 10 * MIN), interval(2.0, timedelta(0))])
    assert plan_of(raw).segments[-1] == Segment(T0 + 10 * MIN, T0 + HOUR, 2)


def test_segments_are_clipped_to_the_active_period() -> None:
    raw = make_event(
        intervals=[
            interval(1.0, 30 * MIN, dtstart=T0 - 10 * MIN),
            interval(2.0, 60 * MIN),
            interval(3.0, 60 * MIN),  # entirely after the active period: dropped
        ]
    )
    assert plan_of(raw).segments == (
        Segment(T0, T0 + 20 * MIN, 1),
        Segment(T0 + 20 * MIN, T0 + HOUR, 2),
    )


def test_open_ended_active_period_keeps_finite_intervals() -> None:
    plan = plan_of(make_event(duration=timedelta(0)))
    assert plan.end == T0 + HOUR


@pytest.mark.parametrize("name", ["SIMPLE", "simple", " Simple "])
def test_signal_name_is_case_insensitive(name: str) -> None:
    assert plan_of(make_event(signal_name=name)).segments[0].level == 2


def test_other_signals_are_ignored() -> None:
    raw = make_event()
    raw["event_signals"][:0] = [
        {"signal_name": "ELECTRICITY_PRICE", "intervals": [interval(9.5)]},
        {"signal_name": "x-custom", "intervals": []},
        {"signal_name": None},
        "not a signal",
    ]
    assert plan_of(raw).segments == (Segment(T0, T0 + HOUR, 2),)


def test_times_are_converted_to_utc() -> None:
    eastern = timezone(timedelta(hours=-4))
    plan = plan_of(make_event(dtstart=T0.astimezone(eastern)))
    assert plan.start == T0
    assert plan.start.tzinfo is UTC


@pytest.mark.parametrize(
    ("raw_id", "expected"),
    [("ev1", "ev1"), ("  ev 2 ", "ev 2"), (7, "7"), (1.5, "1.5")],
)
def test_event_ids_become_text(raw_id: Any, expected: str) -> None:
    # openleadr turns a numeric id such as "007" into the int 7.
    assert plan_of(make_event(event_id=raw_id)).event_id == expected


@pytest.mark.parametrize("value", [None, "", "  ", True, [], 3j])
def test_unusable_event_ids(value: Any) -> None:
    assert normalise_event_id(value) is None


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        (False, False),
        (True, True),
        ("false", False),
        (" FALSE ", False),
        ("true", True),
        ("yes", True),  # OpenADR rule 006: anything but false is a test
        (1, True),
        (None, False),
        (..., False),
    ],
)
def test_test_event_flag(flag: Any, expected: bool) -> None:
    raw = mutate("event_descriptor.test_event", flag)
    assert plan_of(raw).test_event is expected


@pytest.mark.parametrize(("value", "expected"), [(None, 0), (..., 0), (0, 0), (5, 5)])
def test_priority(value: Any, expected: int) -> None:
    assert plan_of(mutate("event_descriptor.priority", value)).priority == expected


@pytest.mark.parametrize(("value", "expected"), [(..., "none"), ("ACTIVE ", "active")])
def test_status_text(value: Any, expected: str) -> None:
    assert plan_of(mutate("event_descriptor.event_status", value)).status == expected


def test_completed_event_is_kept_and_pruned_later() -> None:
    plan = plan_of(make_event(status="completed", dtstart=T0 - 2 * HOUR))
    assert plan.level_at(T0) == 0
    schedule = Schedule()
    schedule.upsert(plan)
    assert schedule.prune(T0) == ["ev1"]


# --- parsing: cancellation ----------------------------------------------------------------


def test_cancelled_event_keeps_timing_but_has_no_level() -> None:
    plan = plan_of(make_event(status="cancelled", mod=1))
    assert plan.cancelled
    assert plan.segments == (Segment(T0, T0 + HOUR, 2),)
    assert plan.level_at(T0) == 0
    assert plan.boundaries() == []
    assert plan.next_change_after(T0 - HOUR) is None


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("active_period", ...),
        ("event_signals", ...),
        ("event_signals.0.intervals.0.signal_payload", 7.0),
        ("event_descriptor.priority", "high"),
        ("active_period.dtstart", datetime.max.replace(tzinfo=UTC)),
    ],
)
def test_malformed_cancel_is_still_a_cancel(path: str, value: Any) -> None:
    plan = plan_of(mutate(path, value, make_event(status="Cancelled", mod=3)))
    assert plan.cancelled
    assert plan.modification_number == 3
    assert (plan.start, plan.end, plan.segments, plan.priority) == (None, None, (), 0)


def test_cancel_still_needs_a_modification_number() -> None:
    raw = mutate("event_descriptor.modification_number", ..., make_event(status="cancelled"))
    assert "modification_number" in error_of(raw)


# --- parsing: rejected events -------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, "event", 42, ["event_descriptor"]])
def test_non_dict_input(raw: Any) -> None:
    result = parse_event(raw, random_offset=0.0)
    assert (result.event_id, result.plan) == (None, None)
    assert result.error == "the event is not a dictionary"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "no event_descriptor"),
        ({"event_descriptor": "ev1"}, "no event_descriptor"),
        (mutate("event_descriptor.event_id", ...), "no usable event_id"),
        (mutate("event_descriptor.event_id", True), "no usable event_id"),
    ],
)
def test_rejections_without_an_event_id(raw: Any, message: str) -> None:
    result = parse_event(raw, random_offset=0.0)
    assert result.event_id is None
    assert result.error is not None
    assert message in result.error


NAIVE = datetime(2026, 7, 1, 18, 0)  # noqa: DTZ001 - deliberately naive

REJECTIONS: list[tuple[str, Any, str]] = [
    # descriptor
    ("event_descriptor.modification_number", ..., "modification_number"),
    ("event_descriptor.modification_number", -1, "modification_number"),
    ("event_descriptor.modification_number", True, "modification_number"),
    ("event_descriptor.modification_number", "1", "modification_number"),
    ("event_descriptor.event_status", 5, "event_status 5 is not text"),
    ("event_descriptor.priority", -1, "priority -1"),
    ("event_descriptor.priority", True, "priority True"),
    ("event_descriptor.priority", 1.0, "priority 1.0"),
    # active period
    ("active_period", ..., "no active_period"),
    ("active_period", [T0, HOUR], "no active_period"),
    ("active_period.dtstart", ..., "active period start is missing"),
    ("active_period.dtstart", "2026-07-01T18:00:00", "has no time zone"),
    ("active_period.dtstart", NAIVE, "has no time zone"),
    ("active_period.dtstart", 1_780_000_000, "is not a date and time"),
    ("active_period.duration", ..., "active period has no duration"),
    ("active_period.duration", "PT1H", "is not a time span"),
    ("active_period.duration", 3600, "is not a time span"),
    ("active_period.duration", -MIN, "negative duration"),
    ("active_period.dtstart", datetime.max.replace(tzinfo=UTC), "out of range"),
    (
        "active_period.dtstart",
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))),
        "out of range",
    ),
    # start-after tolerance
    ("active_period.tolerance", ["PT5M"], "tolerance is unreadable"),
    ("active_period.tolerance", {"tolerate": "PT5M"}, "tolerance is unreadable"),
    ("active_period.tolerance", {"tolerate": {"startafter": -MIN}}, "negative duration"),
    ("active_period.tolerance", {"tolerate": {"startafter": "PT5M"}}, "not a time span"),
    # signals
    ("event_signals", ..., "no list of event_signals"),
    ("event_signals", {"signal_name": "SIMPLE"}, "no list of event_signals"),
    ("event_signals", "SIMPLE", "no list of event_signals"),
    ("event_signals", [], "no SIMPLE signal"),
    ("event_signals.0.signal_name", "ELECTRICITY_PRICE", "no SIMPLE signal"),
    ("event_signals.0.signal_name", 1, "no SIMPLE signal"),
    ("event_signals.0.intervals", ..., "no intervals"),
    ("event_signals.0.intervals", {"duration": HOUR}, "no intervals"),
    # intervals
    ("event_signals.0.intervals.0", "PT1H", "interval 1 is not a dictionary"),
    ("event_signals.0.intervals.0.dtstart", "2026-07-01T18:00:00+00:00", "no time zone"),
    ("event_signals.0.intervals.0.dtstart", NAIVE, "no time zone"),
    ("event_signals.0.intervals.0.dtstart", T0 + 2 * HOUR, "no interval falls inside"),
    ("event_signals.0.intervals.0.duration", "PT1H", "not a time span"),
    ("event_signals.0.intervals.0.signal_payload", 1.5, "not a whole number"),
    ("event_signals.0.intervals.0.signal_payload", math.nan, "not a whole number"),
    ("event_signals.0.intervals.0.signal_payload", math.inf, "not a whole number"),
    ("event_signals.0.intervals.0.signal_payload", 4, "outside 0-3"),
    ("event_signals.0.intervals.0.signal_payload", 10**400, "outside 0-3"),
    ("event_signals.0.intervals.0.signal_payload", True, "is not a number"),
    ("event_signals.0.intervals.0.signal_payload", None, "is not a number"),
    ("event_signals.0.intervals.0.signal_payload", "2", "is not a number"),
    ("event_signals.0.intervals.0.signal_payload", ..., "is not a number"),
]


@pytest.mark.parametrize(("path", "value", "message"), REJECTIONS)
def test_rejections(path: str, value: Any, message: str) -> None:
    result = parse_event(mutate(path, value), random_offset=0.0)
    assert result.plan is None
    assert result.event_id == "ev1"
    assert result.error is not None
    assert message in result.error


def two_intervals(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    return make_event(intervals=[first, second])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            make_event(intervals=[interval(1.0, timedelta(0)), interval(2.0, 10 * MIN)]),
            "interval 1 has duration 0; only the last interval may be open-ended",
        ),
        (
            two_intervals(interval(1.0, 30 * MIN), interval(2.0, 10 * MIN, dtstart=T0 + 10 * MIN)),
            "interval 2 starts before interval 1 ends",
        ),
        (
            make_event(intervals=[interval(1.0, 10 * MIN), {"signal_payload": 2.0}]),
            "interval 2 has no duration",
        ),
    ],
)
def test_interval_sequence_rejections(raw: dict[str, Any], message: str) -> None:
    assert error_of(raw) == message


def test_two_simple_signals_are_ambiguous() -> None:
    raw = make_event()
    raw["event_signals"].append(copy.deepcopy(raw["event_signals"][0]))
    assert error_of(raw) == "the event has more than one SIMPLE signal"


# Malformed VTN input seen against the real client (notes/openleadr.md §8): what openleadr
# delivers to the handler, and what the schedule makes of it.
FIELD_CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("intervals without dtstart", make_event(), None),
    ("SIMPLE level 5", mutate("event_signals.0.intervals.0.signal_payload", 5.0), "outside 0-3"),
    ("SIMPLE level -1", mutate("event_signals.0.intervals.0.signal_payload", -1.0), "outside"),
    ("payload 'high'", mutate("event_signals.0.intervals.0.signal_payload", "high"), "number"),
    ("empty intervals", make_event(intervals=[]), "no intervals"),
    ("signalName FOO", make_event(signal_name="FOO"), "no SIMPLE signal"),
    ("x-custom signal only", make_event(signal_name="x-custom"), "no SIMPLE signal"),
    ("duration -PT1M", mutate("active_period.duration", -MIN), "negative"),
    ("interval -PT1M", make_event(intervals=[interval(1.0, -MIN)]), "negative"),
    ("PT0S (open-ended)", make_event(duration=timedelta(0)), None),
    ("interval without duration", make_event(intervals=[{"signal_payload": 1.0}]), "duration"),
    ("dtstart without Z", make_event(dtstart="2026-07-01T18:00:00"), "no time zone"),
    ("+00:00 dtstart", make_event(dtstart="2026-07-01T18:00:00+00:00"), "no time zone"),
    ("already completed", make_event(dtstart=T0 - timedelta(days=1)), None),
]


@pytest.mark.parametrize(
    ("raw", "message"), [c[1:] for c in FIELD_CASES], ids=[c[0] for c in FIELD_CASES]
)
def test_field_cases(raw: dict[str, Any], message: str | None) -> None:
    result = parse_event(raw, random_offset=0.0)
    if message is None:
        assert result.plan is not None
    else:
        assert result.error is not None
        assert message in result.error


# --- start-after randomisation ------------------------------------------------------------

WINDOW = {"tolerate": {"startafter": 10 * MIN}}


@pytest.mark.parametrize(
    ("fraction", "offset"),
    [(0.0, timedelta(0)), (0.5, 5 * MIN), (1, 10 * MIN), (2.0, 10 * MIN), (-1.0, timedelta(0))],
)
def test_fixed_fraction_offset(fraction: float, offset: timedelta) -> None:
    plan = plan_of(make_event(tolerance=WINDOW), random_offset=fraction)
    assert plan.offset == offset
    assert plan.start == T0 + offset
    assert plan.segments == (Segment(T0 + offset, T0 + HOUR + offset, 2),)


def test_nan_fraction_means_no_offset() -> None:
    assert plan_of(make_event(tolerance=WINDOW), random_offset=math.nan).offset == timedelta(0)


def test_open_ended_segment_is_shifted_too() -> None:
    raw = make_event(duration=timedelta(0), tolerance=WINDOW, intervals=[interval(1.0, 0 * MIN)])
    assert plan_of(raw, random_offset=1.0).segments == (Segment(T0 + 10 * MIN, None, 1),)


@pytest.mark.parametrize(
    ("drawn", "offset"), [(3 * MIN, 3 * MIN), (HOUR, 10 * MIN), (-MIN, 0 * MIN)]
)
def test_offset_source_is_asked_and_clamped(drawn: timedelta, offset: timedelta) -> None:
    calls: list[tuple[str, timedelta]] = []

    def source(event_id: str, window: timedelta) -> timedelta:
        calls.append((event_id, window))
        return drawn

    assert plan_of(make_event(tolerance=WINDOW), random_offset=source).offset == offset
    assert calls == [("ev1", 10 * MIN)]


@pytest.mark.parametrize(
    "tolerance",
    [None, {}, {"tolerate": None}, {"tolerate": {}}, {"tolerate": {"startafter": timedelta(0)}}],
)
def test_no_window_means_no_offset(tolerance: Any) -> None:
    def source(event_id: str, window: timedelta) -> timedelta:
        raise AssertionError("not asked without a window")

    raw = mutate("active_period.tolerance", tolerance)
    assert plan_of(raw, random_offset=source).offset == timedelta(0)


def test_openleadr_object_form_of_tolerance() -> None:
    raw = make_event(tolerance={"startafter": 10 * MIN})
    assert plan_of(raw, random_offset=1.0).offset == 10 * MIN


def test_stable_offset_survives_modifications_and_restarts() -> None:
    first = plan_of(make_event(tolerance=WINDOW), random_offset=StableOffset("ven-a"))
    modified = make_event(tolerance=WINDOW, mod=4, intervals=[interval(3.0)])
    second = plan_of(modified, random_offset=StableOffset("ven-a"))
    assert first.offset == second.offset
    assert timedelta(0) <= first.offset <= 10 * MIN
    assert first.offset.microseconds == 0


def test_stable_offset_spreads_events_and_vens() -> None:
    window = HOUR
    offsets = {StableOffset("ven-a")(f"ev{n}", window) for n in range(20)}
    assert len(offsets) > 10
    assert all(timedelta(0) <= o <= window for o in offsets)
    assert StableOffset("ven-a")("ev1", window) != StableOffset("ven-b")("ev1", window)
    assert StableOffset("ven-a")("ev1", timedelta(0)) == timedelta(0)


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


# --- the real thing -----------------------------------------------------------------------


def test_event_as_openleadr_delivers_it() -> None:
    """Round-trip an oadrDistributeEvent through openleadr's own message code."""
    event = objects.Event(
        event_descriptor=objects.EventDescriptor(
            event_id="007",
            modification_number=2,
            market_context="http://mc",
            event_status="far",
            priority=1,
            test_event=False,
        ),
        active_period=objects.ActivePeriod(
            dtstart=T0, duration=HOUR, tolerance={"startafter": 10 * MIN}
        ),
        event_signals=[
            objects.EventSignal(
                signal_name="SIMPLE",
                signal_type="level",
                signal_id="s1",
                intervals=[
                    objects.Interval(dtstart=T0, duration=20 * MIN, signal_payload=1),
                    objects.Interval(dtstart=T0 + 20 * MIN, duration=40 * MIN, signal_payload=3),
                ],
            )
        ],
        targets=[objects.Target(ven_id="ven1")],
    )
    xml = messaging.create_message(
        "oadrDistributeEvent", request_id="r1", vtn_id="vtn", events=[event]
    )
    _, payload = messaging.parse_message(xml)
    delivered = payload["events"][0]
    assert delivered["active_period"]["tolerance"] == {"tolerate": {"startafter": 10 * MIN}}
    result = plan_of(delivered, random_offset=0.5)
    # openleadr parses the numeric id "007" into the int 7.
    assert (result.event_id, result.modification_number, result.offset) == ("7", 2, 5 * MIN)
    assert result.segments == (
        Segment(T0 + 5 * MIN, T0 + 25 * MIN, 1),
        Segment(T0 + 25 * MIN, T0 + 65 * MIN, 3),
    )


# --- hostile input found by fuzzing (tests/engine/test_fuzz_events.py) --------------------

HUGE = 10**5000  # more digits than Python turns into text (int_max_str_digits is 4300)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("event_descriptor.event_status", "event_status <int> is not text"),
        ("active_period.dtstart", "<int> is not a date and time"),
        ("active_period.duration", "duration <int> that is not a time span"),
        ("event_signals.0.intervals.0.signal_payload", "SIMPLE level <int> is outside 0-3"),
    ],
)
def test_integers_too_long_to_print_are_rejected_not_raised(path: str, message: str) -> None:
    assert message in error_of(mutate(path, HUGE))
    assert message in error_of(mutate(path, -HUGE))


@pytest.mark.parametrize("field", ["modification_number", "priority"])
@pytest.mark.parametrize("value", [2**32, HUGE], ids=["2**32", "10**5000"])
def test_numbers_beyond_unsigned_int_are_rejected(field: str, value: int) -> None:
    # xs:unsignedInt in OpenADR; larger ones would also break JSON past 64 bits.
    assert "from 0 to 4294967295" in error_of(mutate(f"event_descriptor.{field}", value))


def test_largest_unsigned_int_is_accepted() -> None:
    raw = mutate("event_descriptor.priority", 2**32 - 1)
    plan = plan_of(mutate("event_descriptor.modification_number", 2**32 - 1, raw))
    assert (plan.modification_number, plan.priority) == (2**32 - 1, 2**32 - 1)
    # The lowest real priority still outranks "no priority" (0).
    schedule = Schedule()
    schedule.upsert(plan)
    schedule.upsert(plan_of(make_event(event_id="none", priority=0)))
    assert schedule.active_event_at(T0) is plan


def test_event_id_too_long_to_print_is_unusable() -> None:
    assert normalise_event_id(HUGE) is None
    result = parse_event(mutate("event_descriptor.event_id", HUGE), random_offset=0.0)
    assert (result.event_id, result.plan) == (None, None)
    assert result.error == "the event has no usable event_id"


@pytest.mark.parametrize(
    ("path", "value", "shown"),
    [
        # A control character or a line break in a VTN's text must not forge log lines.
        ("active_period.dtstart", "18:00\nERROR forged", r"'18:00\nERROR forged'"),
        ("active_period.dtstart", "\x1f", r"'\x1f'"),
        ("event_signals.0.intervals.0.signal_payload", "x" * 5000, "'xxxxxxxx"),
        ("event_signals.0.intervals.0.signal_payload", 1e308, "1e+308"),
        ("event_signals.0.intervals.0.signal_payload", [[[[0]]]] * 100, "[[[[0]]], [[[0]]], "),
    ],
)
def test_rejection_reasons_quote_input_on_one_short_line(path: str, value: Any, shown: str) -> None:
    message = error_of(mutate(path, value))
    assert shown in message
    assert message.isprintable()
    assert len(message) <= 150


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


def minute_intervals(count: int) -> list[dict[str, Any]]:
    """``count`` one-minute intervals cycling through levels 1, 2, 3 (prices as levels)."""
    return [interval(float(1 + n % 3), MIN) for n in range(count)]


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
