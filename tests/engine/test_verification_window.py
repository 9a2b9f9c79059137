"""Changing the baseline window of a running shed verifier."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from custom_components.loadshed_ven.engine.verification import BUCKETS, ShedVerifier

T = datetime(2026, 7, 1, 18, 0, tzinfo=UTC)


def s(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def _baseline(verifier: ShedVerifier) -> float | None:
    verifier.start(T, "e1")
    result = verifier.current()
    assert result is not None
    return result.baseline_kw


def test_a_shorter_window_drops_older_readings_from_the_baseline() -> None:
    verifier = ShedVerifier(timedelta(minutes=15))
    verifier.add_reading(s(-600), 200.0)
    verifier.add_reading(s(-60), 100.0)
    verifier.set_window(timedelta(minutes=5))
    assert verifier.window == timedelta(minutes=5)
    assert _baseline(verifier) == 100.0


def test_a_longer_window_keeps_the_readings_already_taken() -> None:
    verifier = ShedVerifier(timedelta(minutes=5))
    verifier.add_reading(s(-240), 200.0)
    verifier.add_reading(s(-236), 300.0)  # another old bucket, the same new one
    verifier.add_reading(s(-60), 100.0)
    verifier.set_window(timedelta(minutes=30))
    assert _baseline(verifier) == 200.0
    verifier.add_reading(s(10), 50.0)


def test_a_shed_in_progress_keeps_its_baseline() -> None:
    verifier = ShedVerifier(timedelta(minutes=15))
    verifier.add_reading(s(-600), 200.0)
    verifier.add_reading(s(-60), 100.0)
    verifier.start(T, "e1")
    verifier.set_window(timedelta(minutes=1))
    verifier.add_reading(s(60), 90.0)
    result = verifier.current()
    assert result is not None
    assert result.baseline_kw == 150.0


def test_an_empty_window_resizes_to_an_empty_one() -> None:
    verifier = ShedVerifier(timedelta(minutes=15))
    verifier.set_window(timedelta(minutes=5))
    assert verifier.buckets == 0
    assert _baseline(verifier) is None


def test_the_resized_window_stays_bounded() -> None:
    verifier = ShedVerifier(timedelta(minutes=60))
    for second in range(-3600, 0, 15):
        verifier.add_reading(s(second), 100.0)
    verifier.set_window(timedelta(minutes=1))
    assert verifier.buckets <= BUCKETS + 1
    assert _baseline(verifier) == 100.0
