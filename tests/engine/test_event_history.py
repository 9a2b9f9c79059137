"""What the entities are shown about events: the event in force, the next, the last seen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from custom_components.loadshed_ven.engine.event_history import KEPT, EventHistory, EventStatus
from custom_components.loadshed_ven.engine.event_plan import EventPlan, Segment
from custom_components.loadshed_ven.engine.schedule import Schedule

T0 = datetime(2026, 7, 1, 14, 0, tzinfo=UTC)


def plan(event_id: str, start: datetime = T0, minutes: int = 60, level: int = 1) -> EventPlan:
    end = start + timedelta(minutes=minutes)
    return EventPlan(
        event_id=event_id,
        modification_number=0,
        status="far",
        test_event=False,
        priority=0,
        start=start,
        end=end,
        offset=timedelta(0),
        segments=(Segment(start, end, level),),
    )


def history(*plans: EventPlan, opted_out: set[str] | None = None) -> EventHistory:
    schedule = Schedule()
    seen = EventHistory(schedule, opted_out if opted_out is not None else set())
    for p in plans:
        schedule.upsert(p)
        seen.remember(p)
    return seen


def test_current_is_the_event_in_force_else_the_next_else_the_last_seen() -> None:
    now, later = plan("now"), plan("later", start=T0 + timedelta(hours=3))
    seen = history(now, later)
    view = seen.current(T0 + timedelta(minutes=5))
    assert view is not None
    assert (view.event_id, view.status) == ("now", "active")
    view = seen.current(T0 + timedelta(hours=2))
    assert view is not None
    assert (view.event_id, view.status) == ("later", "scheduled")


def test_withdrawn_event_is_shown_cancelled() -> None:
    schedule = Schedule()
    seen = EventHistory(schedule, set())
    schedule.upsert(plan("gone"))
    seen.remember(plan("gone"))
    schedule.retain_only(set())  # the VTN no longer lists it
    seen.mark_cancelled("gone")
    view = seen.current(T0 + timedelta(minutes=5))
    assert view is not None
    assert (view.event_id, view.status) == ("gone", "cancelled")


def test_event_ended_early_is_shown_completed_from_then_on() -> None:
    schedule = Schedule()
    seen = EventHistory(schedule, set())
    seen.remember(plan("manual-1", minutes=120))
    stop = T0 + timedelta(minutes=10)
    seen.mark_ended("manual-1", stop)
    view = seen.current(stop)
    assert view is not None
    assert (view.status, view.end, view.manual) == ("completed", stop, True)
    ended = seen.get("manual-1")
    assert ended is not None
    assert ended.segments == (Segment(T0, stop, 1),)


def test_opted_out_events_say_so() -> None:
    opted_out: set[str] = set()
    seen = history(plan("a"), opted_out=opted_out)
    opted_out.add("a")  # the runtime's own set, read as it changes
    assert [v.status for v in seen.recent(T0, 5)] == ["opted_out"]


def test_memory_is_bounded_but_keeps_every_scheduled_event() -> None:
    schedule = Schedule()
    seen = EventHistory(schedule, set())
    for n in range(KEPT + 30):
        seen.remember(plan(f"old-{n}", start=T0 - timedelta(days=2)))
    assert len(seen.recent(T0, 1000)) == KEPT
    assert "old-0" not in seen
    assert f"old-{KEPT + 29}" in seen
    scheduled = [plan(f"s-{n}", start=T0 + timedelta(minutes=n)) for n in range(KEPT + 10)]
    for p in scheduled:
        schedule.upsert(p)
        seen.remember(p)
    assert all(p.event_id in seen for p in scheduled)


def test_remembering_again_makes_an_event_the_most_recent() -> None:
    seen = history(plan("a"), plan("b"))
    seen.remember(plan("a"))
    assert [v.event_id for v in seen.recent(T0, 5)] == ["b", "a"]


def test_only_scheduled_and_active_events_are_open() -> None:
    """Open means an operator can still opt out of it."""
    assert {status for status in EventStatus if status.open} == {
        EventStatus.SCHEDULED,
        EventStatus.ACTIVE,
    }
    assert [str(status) for status in EventStatus] == [
        "scheduled",
        "active",
        "completed",
        "cancelled",
        "opted_out",
    ]  # entity states and translations: the values never change


def test_marking_an_unknown_event_changes_nothing() -> None:
    seen = history(plan("known"))
    seen.mark_cancelled("unknown")
    seen.mark_ended("unknown", T0)
    assert "unknown" not in seen
    assert [v.event_id for v in seen.recent(T0, 5)] == ["known"]
