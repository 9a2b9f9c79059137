"""Shed verification: the baseline, kW saved and energy avoided, from meter readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from custom_components.loadshed_ven.engine.verification import (
    BUCKETS,
    ShedVerification,
    ShedVerifier,
)

T = datetime(2026, 7, 1, 18, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=15)


def s(seconds: float) -> datetime:
    """``seconds`` after (or before) the shed start ``T``."""
    return T + timedelta(seconds=seconds)


def kwh(kw_seconds: float) -> float:
    """kW·s in kWh."""
    return kw_seconds / 3600


def current(verifier: ShedVerifier) -> ShedVerification:
    """The verifier's current result, which must exist."""
    result = verifier.current()
    assert result is not None
    return result


def test_nothing_before_the_first_shed() -> None:
    verifier = ShedVerifier(WINDOW)
    verifier.add_reading(s(-10), 100.0)
    assert verifier.current() is None
    assert not verifier.shedding


def test_a_failed_read_before_a_shed_is_no_part_of_the_baseline() -> None:
    verifier = ShedVerifier(WINDOW)
    verifier.add_reading(s(-10), 100.0)
    verifier.add_reading(s(-5), None)
    verifier.start(T, "evt")
    result = current(verifier)
    assert result.baseline_kw == pytest.approx(100.0)
    assert result.latest_kw is None
    assert result.kw_saved is None


def test_a_shed_measured_against_its_baseline() -> None:
    verifier = ShedVerifier(WINDOW)
    verifier.add_reading(s(-20), 100.0)
    verifier.add_reading(s(-10), 102.0)
    verifier.start(T, "evt-1")
    assert verifier.shedding
    result = current(verifier)
    assert result.baseline_kw == pytest.approx(101.0)
    assert result.event_id == "evt-1"
    assert result.started == T
    assert result.shedding
    # Nothing measured yet: the latest reading predates the shed.
    assert result.kw_saved == pytest.approx(-1.0)
    assert result.energy_kwh is None
    assert result.average_kw_saved is None

    # The stretch from -10 s to +10 s is cut at the start, where 96 kW is interpolated.
    verifier.add_reading(s(10), 90.0)
    result = current(verifier)
    assert result.energy_kwh == pytest.approx(kwh((101 - (96 + 90) / 2) * 10))
    assert result.measured == timedelta(seconds=10)
    verifier.add_reading(s(20), 90.0)
    result = current(verifier)
    assert result.kw_saved == pytest.approx(11.0)
    assert result.latest_kw == 90.0
    assert result.energy_kwh == pytest.approx(kwh(80 + 110))

    # The last reading holds until the end; then everything is frozen.
    verifier.end(s(25))
    result = current(verifier)
    assert not verifier.shedding
    assert result.ended == s(25)
    assert result.measured == timedelta(seconds=25)
    assert result.energy_kwh == pytest.approx(kwh(245))
    assert result.average_kw_saved == pytest.approx(9.8)
    assert result.kw_saved == pytest.approx(9.8)
    verifier.add_reading(s(30), 101.0)
    assert current(verifier).energy_kwh == pytest.approx(kwh(245))
    assert current(verifier).kw_saved == pytest.approx(9.8)


def test_no_reading_in_the_window_means_no_baseline() -> None:
    verifier = ShedVerifier(timedelta(minutes=5))
    verifier.add_reading(s(-600), 100.0)  # older than the window
    verifier.start(T, "evt")
    verifier.add_reading(s(10), 90.0)
    verifier.add_reading(s(20), 90.0)
    result = current(verifier)
    assert result.baseline_kw is None
    assert result.kw_saved is None
    assert result.energy_kwh is None
    verifier.end(s(30))
    result = current(verifier)
    assert result.kw_saved is None
    assert result.energy_kwh is None
    assert result.average_kw_saved is None


def test_a_shed_without_any_reading_has_no_baseline() -> None:
    verifier = ShedVerifier(WINDOW)
    verifier.start(T, None)
    verifier.end(s(60))
    result = current(verifier)
    assert result.baseline_kw is None
    assert result.latest_kw is None
    assert result.event_id is None


def test_only_readings_within_the_window_count() -> None:
    verifier = ShedVerifier(timedelta(minutes=5))
    verifier.add_reading(s(-400), 500.0)
    verifier.add_reading(s(-200), 100.0)
    verifier.add_reading(s(-100), 120.0)
    verifier.start(T, "evt")
    assert current(verifier).baseline_kw == pytest.approx(110.0)


def test_readings_in_one_bucket_are_averaged_one_by_one() -> None:
    verifier = ShedVerifier(timedelta(minutes=4))  # 1 s buckets
    verifier.add_reading(s(-0.9), 100.0)
    verifier.add_reading(s(-0.8), 100.0)
    verifier.add_reading(s(-0.7), 130.0)
    assert verifier.buckets == 1
    verifier.start(T, "evt")
    assert current(verifier).baseline_kw == pytest.approx(110.0)


def test_memory_stays_bounded() -> None:
    verifier = ShedVerifier(timedelta(minutes=1))
    for second in range(-3600, 0):
        verifier.add_reading(s(second), 100.0 + second % 2)
    assert verifier.buckets <= BUCKETS + 1
    verifier.start(T, "evt")
    assert current(verifier).baseline_kw == pytest.approx(100.5, abs=0.02)


def test_a_failed_read_breaks_the_curve() -> None:
    verifier = ShedVerifier(WINDOW)
    verifier.add_reading(s(0), 100.0)
    verifier.start(T, "evt")
    verifier.add_reading(s(10), 90.0)
    verifier.add_reading(s(20), None)
    result = current(verifier)
    assert result.kw_saved is None  # the meter is unavailable now
    assert result.energy_kwh == pytest.approx(kwh(50))
    verifier.add_reading(s(30), 80.0)  # after the gap: an anchor only
    assert current(verifier).energy_kwh == pytest.approx(kwh(50))
    assert current(verifier).kw_saved == pytest.approx(20.0)
    verifier.add_reading(s(40), 80.0)
    assert current(verifier).energy_kwh == pytest.approx(kwh(50 + 200))
    assert current(verifier).measured == timedelta(seconds=20)
    verifier.add_reading(s(50), None)
    verifier.end(s(60))  # a failed last read holds nothing
    result = current(verifier)
    assert result.energy_kwh == pytest.approx(kwh(250))
    assert result.average_kw_saved == pytest.approx(12.5)


def test_a_reading_at_the_start_is_not_cut() -> None:
    verifier = ShedVerifier(WINDOW)
    verifier.add_reading(s(-5), 100.0)
    verifier.start(T, "evt")
    verifier.add_reading(s(0), 100.0)  # same moment as the start: nothing measured
    assert current(verifier).energy_kwh is None
    verifier.add_reading(s(0), 90.0)  # same moment again
    assert current(verifier).energy_kwh is None
    verifier.add_reading(s(10), 90.0)
    assert current(verifier).energy_kwh == pytest.approx(kwh(100))


def test_a_reading_from_before_the_last_is_ignored() -> None:
    verifier = ShedVerifier(WINDOW)
    verifier.add_reading(s(-10), 100.0)
    verifier.add_reading(s(-20), 500.0)  # the clock went back
    verifier.start(T, "evt")
    verifier.add_reading(s(10), 90.0)
    verifier.add_reading(s(5), 0.0)
    result = current(verifier)
    assert result.baseline_kw == pytest.approx(100.0)
    assert result.latest_kw == 90.0


def test_the_first_reading_of_a_shed_without_earlier_readings_anchors_only() -> None:
    verifier = ShedVerifier(WINDOW)
    verifier.start(T, "evt")
    verifier.add_reading(s(10), 90.0)
    verifier.add_reading(s(20), 90.0)
    assert current(verifier).baseline_kw is None
    assert current(verifier).energy_kwh is None


def test_readings_during_a_shed_are_no_baseline_for_the_next() -> None:
    verifier = ShedVerifier(WINDOW)
    verifier.add_reading(s(-10), 100.0)
    verifier.start(T, "first")
    verifier.add_reading(s(10), 50.0)
    verifier.end(s(15))
    verifier.add_reading(s(20), 110.0)
    verifier.start(s(30), "second")
    result = current(verifier)
    assert result.event_id == "second"
    assert result.baseline_kw == pytest.approx(105.0)
    # The new shed starts from nothing measured.
    assert result.energy_kwh is None
    assert result.ended is None


def test_starting_again_while_shedding_ends_the_shed_in_progress() -> None:
    verifier = ShedVerifier(WINDOW)
    verifier.add_reading(s(-10), 100.0)
    verifier.start(T, "first")
    verifier.add_reading(s(10), 90.0)
    verifier.start(s(20), "second")
    assert verifier.shedding
    result = current(verifier)
    assert result.event_id == "second"
    assert result.started == s(20)
    # Readings of the first shed are no baseline for the second one.
    assert result.baseline_kw == pytest.approx(100.0)


def test_ending_without_a_shed_in_progress_does_nothing() -> None:
    verifier = ShedVerifier(WINDOW)
    verifier.end(T)
    assert verifier.current() is None
    verifier.add_reading(s(-10), 100.0)
    verifier.start(T, "evt")
    verifier.add_reading(s(10), 90.0)
    verifier.end(s(10))  # at the last reading: nothing to hold
    verifier.end(s(99))  # already ended
    result = current(verifier)
    assert result.ended == s(10)
    assert result.measured == timedelta(seconds=10)


def test_a_shed_without_readings_during_it_measures_nothing() -> None:
    verifier = ShedVerifier(WINDOW)
    verifier.add_reading(s(-10), 100.0)
    verifier.start(T, "evt")
    verifier.end(s(60))  # the reading before the start does not hold into the shed
    result = current(verifier)
    assert result.baseline_kw == pytest.approx(100.0)
    assert result.energy_kwh is None
    assert result.kw_saved is None


def test_the_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ShedVerifier(timedelta(0))
