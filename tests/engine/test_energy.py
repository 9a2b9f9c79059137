"""Grid energy from kW readings (trapezoidal, import only) and from a meter's energy register."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from custom_components.loadshed_ven.engine.energy import (
    CounterTracker,
    PowerIntegrator,
    import_kwh,
)

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
GAP = timedelta(seconds=30)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# ---- import_kwh ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "hours", "expected"),
    [
        (100.0, 100.0, 1.0, 100.0),
        (0.0, 100.0, 1.0, 50.0),
        (100.0, 300.0, 0.5, 100.0),
        (-50.0, -10.0, 1.0, 0.0),  # export only
        (0.0, -10.0, 1.0, 0.0),
        (100.0, -100.0, 1.0, 25.0),  # crosses zero half-way: triangle 100 kW x 0.5 h / 2
        (-100.0, 300.0, 1.0, 300.0 * 300.0 / (2 * 400.0)),
    ],
)
def test_import_kwh(start: float, end: float, hours: float, expected: float) -> None:
    assert import_kwh(start, end, hours) == pytest.approx(expected)


# ---- PowerIntegrator ---------------------------------------------------------------------------


def test_trapezoids_add_up() -> None:
    integrator = PowerIntegrator(max_gap=GAP)
    assert integrator.add(at(0), 360.0) == 0.0  # the first reading only starts the curve
    assert integrator.add(at(10), 360.0) == pytest.approx(1.0)  # 360 kW for 10 s
    assert integrator.add(at(20), 720.0) == pytest.approx(1.5)
    assert integrator.total_kwh == pytest.approx(2.5)


def test_export_adds_nothing_and_total_never_decreases() -> None:
    integrator = PowerIntegrator(max_gap=GAP)
    totals = []
    for second, kw in enumerate([360.0, -360.0, -720.0, 0.0, 360.0]):
        integrator.add(at(10 * second), kw)
        totals.append(integrator.total_kwh)
    assert totals == sorted(totals)
    # 360 -> -360 crosses zero half-way (0.25 kWh); export adds nothing; 0 -> 360 adds 0.5.
    assert integrator.total_kwh == pytest.approx(0.25 + 0.5)


def test_gap_longer_than_max_gap_is_not_integrated() -> None:
    integrator = PowerIntegrator(max_gap=GAP)
    integrator.add(at(0), 360.0)
    assert integrator.add(at(31), 360.0) == 0.0
    assert integrator.add(at(41), 360.0) == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [None, math.nan, math.inf, 2e6, -2e6])
def test_failed_or_implausible_reading_is_a_gap(bad: float | None) -> None:
    integrator = PowerIntegrator(max_gap=GAP, max_kw=1e6)
    integrator.add(at(0), 360.0)
    assert integrator.add(at(10), bad) == 0.0
    # The interval around the bad reading is unknown: not integrated.
    assert integrator.add(at(20), 360.0) == 0.0
    assert integrator.add(at(30), 360.0) == pytest.approx(1.0)


def test_reading_at_the_same_instant_or_earlier_is_ignored() -> None:
    integrator = PowerIntegrator(max_gap=GAP)
    integrator.add(at(10), 360.0)
    assert integrator.add(at(10), 720.0) == 0.0
    assert integrator.add(at(5), 720.0) == 0.0
    assert integrator.add(at(20), 360.0) == pytest.approx(1.0)  # from the kept reading


def test_integrator_round_trip_continues_after_restart() -> None:
    integrator = PowerIntegrator(max_gap=GAP)
    integrator.add(at(0), 360.0)
    integrator.add(at(10), 360.0)
    restored = PowerIntegrator.from_dict(integrator.as_dict(), max_gap=GAP, max_kw=1e6)
    assert restored == PowerIntegrator(
        max_gap=GAP, max_kw=1e6, total_kwh=integrator.total_kwh, last_at=at(10), last_kw=360.0
    )
    assert restored.add(at(20), 360.0) == pytest.approx(1.0)  # a quick restart: integrated
    assert restored.total_kwh == pytest.approx(2.0)


@pytest.mark.parametrize(
    "stored",
    [
        None,
        [],
        {},
        {"total_kwh": "12"},
        {"total_kwh": True},
        {"total_kwh": -1.0},
        {"total_kwh": math.nan},
    ],
)
def test_integrator_unreadable_state_starts_from_zero(stored: Any) -> None:
    assert PowerIntegrator.from_dict(stored, max_gap=GAP) == PowerIntegrator(max_gap=GAP)


@pytest.mark.parametrize(
    "last",
    [
        {"last_at": None, "last_kw": 1.0},
        {"last_at": "yesterday", "last_kw": 1.0},
        {"last_at": "2026-07-01T12:00:00", "last_kw": 1.0},  # no time zone
        {"last_at": "2026-07-01T12:00:00+00:00", "last_kw": None},
    ],
)
def test_integrator_keeps_total_without_a_usable_last_reading(last: dict[str, Any]) -> None:
    restored = PowerIntegrator.from_dict({"total_kwh": 5, **last}, max_gap=GAP)
    assert restored == PowerIntegrator(max_gap=GAP, total_kwh=5.0)


# ---- CounterTracker ----------------------------------------------------------------------------


def test_counter_follows_the_register() -> None:
    tracker = CounterTracker(max_kw=1000.0)
    assert tracker.total_kwh is None
    assert tracker.add(at(0), 5000.0) == 0.0
    assert tracker.total_kwh == 5000.0  # starts at what the meter shows
    assert tracker.add(at(36), 5002.5) == pytest.approx(2.5)  # 250 kW for 36 s
    assert tracker.add(at(72), 5002.5) == 0.0
    assert tracker.total_kwh == pytest.approx(5002.5)


@pytest.mark.parametrize("bad", [None, math.nan, -math.inf, -1.0])
def test_counter_ignores_unusable_readings(bad: float | None) -> None:
    tracker = CounterTracker(max_kw=1000.0)
    tracker.add(at(0), 100.0)
    assert tracker.add(at(10), bad) == 0.0
    assert tracker.add(at(36), 110.0) == pytest.approx(10.0)


def test_counter_glitch_is_never_counted() -> None:
    tracker = CounterTracker(max_kw=1000.0)
    tracker.add(at(0), 100.0)
    # 1e30 (a misread word order) and a dip: neither counts, nor does the way back.
    assert tracker.add(at(36), 1e30) == 0.0
    assert tracker.add(at(72), 50.0) == 0.0
    assert tracker.add(at(108), 120.0) == pytest.approx(20.0)  # plausible from 100 over 108 s
    assert tracker.total_kwh == pytest.approx(120.0)


def test_counter_jump_beyond_max_power_is_not_counted() -> None:
    tracker = CounterTracker(max_kw=1000.0)
    tracker.add(at(0), 100.0)
    assert tracker.add(at(36), 111.0) == 0.0  # 11 kWh in 36 s = 1100 kW, beyond 1000 x 1.05
    assert tracker.total_kwh == 100.0


def test_counter_carries_on_after_a_confirmed_reset() -> None:
    tracker = CounterTracker(max_kw=1000.0)
    tracker.add(at(0), 90_000.0)
    totals = []
    for second, kwh in [(36, 0.5), (72, 3.0), (108, 5.0)]:
        tracker.add(at(second), kwh)
        totals.append(tracker.total_kwh)
    # The reset is not counted; from the confirming reading on, increases are.
    assert totals == [90_000.0, 90_002.5, 90_004.5]


def test_counter_discontinuity_not_confirmed_waits_again() -> None:
    tracker = CounterTracker(max_kw=1000.0)
    tracker.add(at(0), 1000.0)
    tracker.add(at(36), 10.0)
    tracker.add(at(72), 5.0)  # not plausible from 10 either: becomes the new candidate
    assert tracker.total_kwh == 1000.0
    assert tracker.add(at(108), 6.0) == pytest.approx(1.0)
    assert tracker.total_kwh == pytest.approx(1001.0)


def test_counter_round_trip_counts_what_the_meter_counted_meanwhile() -> None:
    tracker = CounterTracker(max_kw=1000.0)
    tracker.add(at(0), 100.0)
    tracker.add(at(36), 105.0)
    restored = CounterTracker.from_dict(tracker.as_dict(), max_kw=1000.0)
    assert restored.as_dict() == tracker.as_dict()
    # An hour later the meter has counted 400 kWh more: plausible, so counted.
    assert restored.add(at(3636), 505.0) == pytest.approx(400.0)
    assert restored.total_kwh == pytest.approx(505.0)


def test_counter_restored_total_without_last_reading_rebases() -> None:
    restored = CounterTracker.from_dict({"total_kwh": 42.0, "last_at": None}, max_kw=1.0)
    assert restored.add(at(0), 7.0) == 0.0
    assert restored.total_kwh == 42.0  # kept: never decreases
    assert restored.add(at(3600), 7.5) == pytest.approx(0.5)
    assert restored.total_kwh == pytest.approx(42.5)


@pytest.mark.parametrize(
    "stored",
    [None, "x", {}, {"total_kwh": None}, {"total_kwh": -3.0}, {"total_kwh": math.inf}],
)
def test_counter_unreadable_state_starts_afresh(stored: Any) -> None:
    assert (
        CounterTracker.from_dict(stored, max_kw=1.0).as_dict()
        == CounterTracker(max_kw=1.0).as_dict()
    )


def test_counter_restored_negative_last_reading_is_dropped() -> None:
    stored = {"total_kwh": 1.0, "last_at": T0.isoformat(), "last_kwh": -1.0}
    assert CounterTracker.from_dict(stored, max_kw=1.0).last is None
