"""Durations typed on the simulator's command line."""

from datetime import timedelta

import pytest

from sim.duration import parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90", timedelta(seconds=90)),
        ("2.5", timedelta(seconds=2.5)),
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1H5M10S", timedelta(hours=1, minutes=5, seconds=10)),
        ("PT10M", timedelta(minutes=10)),
        ("pt1h", timedelta(hours=1)),
        (" 5m ", timedelta(minutes=5)),
    ],
)
def test_parses(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "  ", "ten minutes", "5x", "m5", "5m junk", "-"])
def test_rejects_with_a_readable_message(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)
