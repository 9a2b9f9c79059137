"""Events the parser refuses (engine/schedule.py) and its reasons, hostile input included."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from custom_components.loadshed_ven.engine.schedule import Schedule, normalise_event_id, parse_event

from .schedule_helpers import HOUR, MIN, NAIVE, T0, error_of, interval, make_event, mutate, plan_of

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
