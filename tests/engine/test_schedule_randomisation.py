"""Start-after randomisation of event times (engine/schedule.py)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest

from custom_components.loadshed_ven.engine.schedule import Segment, StableOffset

from .schedule_helpers import HOUR, MIN, T0, WINDOW, interval, make_event, mutate, plan_of

# --- start-after randomisation ------------------------------------------------------------


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
