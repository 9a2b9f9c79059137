"""Event parsing (engine/schedule.py): accepted events, cancellations, and an event as
openleadr delivers it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from openleadr import messaging, objects

from custom_components.loadshed_ven.engine.schedule import (
    EventPlan,
    Schedule,
    Segment,
    normalise_event_id,
)
from custom_components.loadshed_ven.engine.targets import EventTargets

from .schedule_helpers import HOUR, MIN, T0, error_of, interval, make_event, mutate, plan_of

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
        targets=EventTargets(ven_ids=frozenset({"ven1"})),
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
