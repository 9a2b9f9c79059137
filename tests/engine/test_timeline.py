"""The timeline's edges: empty input, empty pieces, and counting its breakpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from custom_components.loadshed_ven.engine.schedule import Schedule
from custom_components.loadshed_ven.engine.timeline import Rank, Timeline

T0 = datetime(2026, 7, 1, 14, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
RANK: Rank = (0, 0, T0, "e1")


def test_empty_pieces_and_empty_events_change_nothing() -> None:
    timeline = Timeline()
    timeline.add([])
    timeline.rebuild([(T0, T0, RANK), (T0 + HOUR, T0, RANK)])  # no time in force
    assert len(timeline) == 0
    assert timeline.rank_at(T0) is None
    assert timeline.next_change_after(T0 - HOUR) is None


def test_one_piece_is_two_breakpoints() -> None:
    timeline = Timeline()
    timeline.rebuild([(T0, T0 + HOUR, RANK)])
    assert len(timeline) == 2
    assert timeline.rank_at(T0) == RANK
    assert timeline.rank_at(T0 + HOUR) is None
    assert timeline.next_change_after(T0) == T0 + HOUR


def test_setting_act_on_test_to_its_value_keeps_the_schedule() -> None:
    schedule = Schedule(act_on_test=True)
    schedule.act_on_test = True
    assert schedule.act_on_test
    schedule.act_on_test = False
    assert not schedule.act_on_test
