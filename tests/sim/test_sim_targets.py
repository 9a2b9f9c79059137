"""The simulated VTN's targeted events and signal types, and the command line that sends them."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from sim.__main__ import _new_event_body
from sim.vtn_event_model import SimEvent

NOW = datetime(2026, 7, 1, 18, 0, tzinfo=UTC)


def _event(**kwargs: object) -> SimEvent:
    return SimEvent.create(
        None,
        level=1,
        intervals=None,
        duration=timedelta(minutes=5),
        start=NOW,
        start_after=None,
        test_event=False,
        response_required="always",
        priority=0,
        **kwargs,  # type: ignore[arg-type]
    )


def test_the_eitarget_names_what_was_given() -> None:
    event = _event(targets={"resource_id": ["A", "B"], "group_id": ["g"]}, signal_type="price")
    copy = event.to_openleadr("ven-1", "http://mc", NOW)
    assert copy.targets == [{"resource_id": "A"}, {"resource_id": "B"}, {"group_id": "g"}]
    assert copy.event_signals[0].signal_type == "price"
    summary = event.summary(NOW)
    assert summary["targets"] == {"resource_id": ["A", "B"], "group_id": ["g"]}
    assert summary["signal_type"] == "price"


def test_without_targets_the_eitarget_is_the_receiving_ven() -> None:
    copy = _event().to_openleadr("ven-1", "http://mc", NOW)
    assert copy.targets == [{"ven_id": "ven-1"}]
    assert copy.event_signals[0].signal_type == "level"


def test_an_unknown_target_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="target kinds"):
        _event(targets={"zone": ["1"]})


def test_the_command_line_sends_targets_and_the_signal_type() -> None:
    args = argparse.Namespace(
        intervals=None,
        level=1,
        duration="5m",
        start_in=None,
        start_after=None,
        ven=None,
        test=False,
        resource=["A", "B"],
        group=None,
        target_ven=["other"],
        party=None,
        signal_type="delta",
    )
    body = _new_event_body(args)
    assert body["targets"] == {"resource_id": ["A", "B"], "ven_id": ["other"]}
    assert body["signal_type"] == "delta"
