"""Shed verification through the release window: power saved goes on, the peak after release."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from custom_components.loadshed_ven.engine.verification import (
    SETTLING,
    ShedVerification,
    ShedVerifier,
)

T = datetime(2026, 7, 1, 18, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=15)
RELEASE = timedelta(seconds=60)


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


def shed_at_90(end: float = 100.0) -> ShedVerifier:
    """A baseline of 100 kW, then 90 kW shed from 0 s until the shed ends at ``end`` s."""
    verifier = ShedVerifier(WINDOW)
    verifier.add_reading(s(-10), 100.0)
    verifier.start(T, "evt")
    verifier.add_reading(s(0), 90.0)
    verifier.add_reading(s(end), 90.0)
    return verifier


def test_power_saved_is_measured_on_through_the_release_window() -> None:
    verifier = shed_at_90()
    verifier.end(s(100), release=RELEASE)
    result = current(verifier)
    assert not result.shedding
    assert result.measuring
    assert result.release_ends == s(160)
    # While the release goes on, kW saved is live, as while shedding.
    verifier.add_reading(s(130), 94.0)
    assert current(verifier).kw_saved == pytest.approx(6.0)
    assert current(verifier).energy_kwh == pytest.approx(kwh(10 * 100 + 8 * 30))
    # The reading past the window's end is cut there (96 kW interpolated at 160 s), then frozen.
    verifier.add_reading(s(190), 98.0)
    result = current(verifier)
    assert not result.measuring
    assert result.measured == timedelta(seconds=160)
    assert result.energy_kwh == pytest.approx(kwh(10 * 100 + 8 * 30 + 5 * 30))
    assert result.kw_saved == pytest.approx(result.energy_kwh / (160 / 3600))
    # Later readings are baseline again, and change nothing here.
    verifier.add_reading(s(220), 100.0)
    assert current(verifier).energy_kwh == result.energy_kwh


def test_the_peak_after_release_spans_the_window_and_the_settling_time() -> None:
    verifier = shed_at_90()
    assert current(verifier).peak_after_release_kw is None
    verifier.end(s(100), release=RELEASE)
    assert current(verifier).peak_after_release_kw is None
    verifier.add_reading(s(130), 104.0)
    verifier.add_reading(s(140), None)  # a failed read is no peak
    verifier.add_reading(s(170), 101.0)
    assert current(verifier).peak_after_release_kw == 104.0
    settled = (s(160) + SETTLING - T).total_seconds()
    verifier.add_reading(s(settled), 112.0)  # the last moment still counts
    verifier.add_reading(s(settled + 1), 150.0)  # too late: no longer the rebound
    assert current(verifier).peak_after_release_kw == 112.0


def test_readings_during_the_shed_are_no_peak_after_release() -> None:
    verifier = shed_at_90()
    verifier.add_reading(s(99), 120.0)
    verifier.end(s(100), release=RELEASE)
    assert current(verifier).peak_after_release_kw is None


def test_without_a_release_window_the_shed_is_frozen_at_its_end() -> None:
    verifier = shed_at_90(end=90)
    verifier.end(s(100))
    result = current(verifier)
    assert not result.measuring
    assert result.release_ends == s(100)
    assert result.energy_kwh == pytest.approx(kwh(10 * 100))
    # The peak is still sought for the settling time.
    verifier.add_reading(s(150), 103.0)
    assert current(verifier).peak_after_release_kw == 103.0
    assert current(verifier).energy_kwh == pytest.approx(kwh(10 * 100))


def test_a_negative_release_counts_as_none() -> None:
    verifier = shed_at_90()
    verifier.end(s(100), release=-RELEASE)
    assert current(verifier).release_ends == s(100)
    assert not current(verifier).measuring


def test_a_new_shed_within_the_release_window_ends_the_measurement_there() -> None:
    verifier = shed_at_90()
    verifier.end(s(100), release=RELEASE)
    verifier.add_reading(s(120), 95.0)
    verifier.start(s(130), "evt-2")  # the 95 kW reading holds until the new start
    # The new shed's baseline is the readings before the first shed only.
    assert current(verifier).baseline_kw == pytest.approx(100.0)
    assert current(verifier).event_id == "evt-2"


def test_a_new_shed_after_the_release_window_keeps_the_frozen_values() -> None:
    verifier = shed_at_90()
    verifier.end(s(100), release=RELEASE)
    verifier.start(s(400), "evt-2")
    result = current(verifier)
    assert result.event_id == "evt-2"
    assert result.measuring


def test_a_reading_at_the_end_of_the_release_window_closes_without_a_cut() -> None:
    verifier = shed_at_90()
    verifier.end(s(100), release=RELEASE)
    verifier.add_reading(s(160), 96.0)
    result = current(verifier)
    assert not result.measuring
    assert result.measured == timedelta(seconds=160)
    assert result.energy_kwh == pytest.approx(kwh(10 * 100 + 7 * 60))


def test_the_first_reading_past_the_window_after_a_gap_measures_nothing_more() -> None:
    verifier = shed_at_90()
    verifier.end(s(100), release=RELEASE)
    verifier.add_reading(s(120), None)
    verifier.add_reading(s(200), 97.0)
    result = current(verifier)
    assert not result.measuring
    assert result.measured == timedelta(seconds=100)


def test_the_stretch_before_the_shed_end_is_not_counted_twice() -> None:
    """A reading at the release window's end after one at the same instant adds nothing."""
    verifier = shed_at_90()
    verifier.end(s(100), release=timedelta(0))
    verifier.add_reading(s(100), 90.0)
    assert current(verifier).measured == timedelta(seconds=100)
