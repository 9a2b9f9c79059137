"""Targeted events: reading ``eiTarget``, which points an event reaches, per-point levels."""

from __future__ import annotations

from typing import Any

import pytest

from custom_components.loadshed_ven.engine.schedule import Schedule
from custom_components.loadshed_ven.engine.targets import (
    MAX_TARGETS,
    EventTargets,
    PointTargets,
    scopes_of_points,
)

from .schedule_helpers import HOUR, MIN, T0, error_of, interval, make_event, plan_of


def targeted(targets: Any, **kwargs: Any) -> dict[str, Any]:
    raw = make_event(**kwargs)
    raw["targets"] = targets
    return raw


def points() -> PointTargets:
    return PointTargets(
        {"a1": ("A", "g"), "a2": ("A", "g"), "b1": ("B", None), "x1": (None, None)},
        ven_id="me",
    )


# --- parsing -------------------------------------------------------------------------------


def test_targets_are_read_by_kind() -> None:
    raw = targeted(
        [
            {"resource_id": "A"},
            {"resource_id": 7},
            {"group_id": ["g", "h"]},
            {"ven_id": "me", "party_id": "p"},
            {"end_device_asset": "Thermostat"},
        ]
    )
    assert plan_of(raw).targets == EventTargets(
        ven_ids=frozenset({"me"}),
        resource_ids=frozenset({"A", "7"}),
        group_ids=frozenset({"g", "h"}),
        party_ids=frozenset({"p"}),
    )


@pytest.mark.parametrize("targets", [None, [], [{"end_device_asset": "x"}], [{}]])
def test_no_readable_targets_means_every_point(targets: Any) -> None:
    assert plan_of(targeted(targets)).targets is None


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ("A", "not a list"),
        (["A"], "not a dictionary"),
        ([{"resource_id": None}], "unreadable"),
        ([{"resource_id": [1.5j]}], "unreadable"),
        ([{"resource_id": [str(n) for n in range(MAX_TARGETS + 1)]}], "more than"),
    ],
)
def test_unreadable_targets_reject_the_event(targets: Any, message: str) -> None:
    assert message in error_of(targeted(targets))


def test_a_cancel_with_unreadable_targets_is_still_a_cancel() -> None:
    plan = plan_of(targeted("junk", status="cancelled"))
    assert plan.cancelled
    assert plan.targets is None


@pytest.mark.parametrize("signal_type", ["price", "delta", "x-loadControlCapacity", 3])
def test_a_simple_signal_that_is_not_a_level_is_not_acted_on(signal_type: Any) -> None:
    raw = make_event()
    raw["event_signals"][0]["signal_type"] = signal_type
    assert "only 'level' is acted on" in error_of(raw)


@pytest.mark.parametrize("signal_type", ["level", " LEVEL ", None])
def test_a_level_or_missing_signal_type_is_acted_on(signal_type: Any) -> None:
    raw = make_event()
    raw["event_signals"][0]["signal_type"] = signal_type
    assert plan_of(raw).segments[0].level == 2


def test_a_price_signal_beside_a_level_signal_is_ignored() -> None:
    raw = make_event()
    price = {**raw["event_signals"][0], "signal_type": "price", "intervals": [interval(9.0)]}
    raw["event_signals"].insert(0, price)
    assert plan_of(raw).segments[0].level == 2


# --- which points an event reaches ----------------------------------------------------------


@pytest.mark.parametrize(
    ("targets", "reached"),
    [
        (None, {"a1", "a2", "b1", "x1"}),
        (EventTargets(), {"a1", "a2", "b1", "x1"}),
        (EventTargets(ven_ids=frozenset({"me", "other"})), {"a1", "a2", "b1", "x1"}),
        (EventTargets(party_ids=frozenset({"p"})), {"a1", "a2", "b1", "x1"}),
        (EventTargets(resource_ids=frozenset({"A"})), {"a1", "a2"}),
        (EventTargets(group_ids=frozenset({"g"})), {"a1", "a2"}),
        (
            EventTargets(resource_ids=frozenset({"B"}), group_ids=frozenset({"g"})),
            {"a1", "a2", "b1"},
        ),
        (EventTargets(ven_ids=frozenset({"other"})), set()),
        (EventTargets(resource_ids=frozenset({"Z"})), set()),
    ],
)
def test_reach(targets: EventTargets | None, reached: set[str]) -> None:
    pts = points()
    levels = pts.scope_levels([(targets, 2)])
    got = set(pts.point_levels(levels)) if levels is not None else {"a1", "a2", "b1", "x1"}
    assert got == reached
    assert pts.reaches_any(targets) == bool(reached)


def test_each_scope_follows_the_highest_event_that_reaches_it() -> None:
    pts = points()
    a = EventTargets(resource_ids=frozenset({"A"}))
    b = EventTargets(resource_ids=frozenset({"B"}))
    levels = pts.scope_levels([(a, 3), (b, 1), (None, 2)])
    assert levels is not None
    assert pts.point_levels(levels) == {"a1": 3, "a2": 3, "b1": 2, "x1": 2}
    assert pts.scope_levels([(None, 2), (EventTargets(ven_ids=frozenset({"me"})), 1)]) is None


def test_reached_scopes_and_describe() -> None:
    pts = points()
    a = EventTargets(resource_ids=frozenset({"A"}), group_ids=frozenset({"zz"}))
    assert pts.reached_scopes(a) == (["A"], 2)
    assert pts.reached_scopes(None) == (["A", "B"], 4)
    assert a.describe() == "resourceID A; groupID zz"
    assert EventTargets().describe() == "everything"
    many = EventTargets(ven_ids=frozenset(f"v{n:02}" for n in range(11)))
    assert many.describe().endswith(", ...")
    assert pts.scopes == (("A", "g"), ("B", None), (None, None))


def test_scopes_of_points_from_controller_subentries() -> None:
    scopes = scopes_of_points(
        {"p1": "s1", "p2": "s2", "p3": "s3"},
        {"s1": {"resource_id": " A ", "group_id": ""}, "s2": {"resource_id": 5}},
        ["p1", "p2", "p3", "p4"],
        resource_key="resource_id",
        group_key="group_id",
    )
    assert scopes == {
        "p1": ("A", None),
        "p2": (None, None),
        "p3": (None, None),
        "p4": (None, None),
    }


# --- the schedule ---------------------------------------------------------------------------


def test_events_that_reach_no_point_do_not_count() -> None:
    pts = points()
    schedule = Schedule()
    schedule.targeting = pts
    schedule.upsert(plan_of(targeted([{"ven_id": "other"}], event_id="x")))
    assert schedule.level_at(T0) == 0
    schedule.upsert(plan_of(targeted([{"resource_id": "A"}], event_id="a")))
    assert schedule.level_at(T0) == 2
    assert schedule.active_levels_at(T0) == [(EventTargets(resource_ids=frozenset({"A"})), 2)]
    pts.update({"b1": ("B", None)})
    schedule.targeting = pts  # controllers changed: judged again
    assert schedule.level_at(T0) == 0
    assert schedule.targeting is pts


def test_overlapping_targeted_events_give_each_point_its_level() -> None:
    pts = points()
    schedule = Schedule()
    schedule.targeting = pts
    a = targeted([{"resource_id": "A"}], event_id="a", intervals=[interval(3.0)])
    b = targeted(
        [{"resource_id": "B"}],
        event_id="b",
        dtstart=T0 + 10 * MIN,
        intervals=[interval(1.0, 20 * MIN)],
        duration=20 * MIN,
    )
    schedule.upsert(plan_of(a))
    schedule.upsert(plan_of(b))
    t = T0 + 15 * MIN
    assert schedule.level_at(t) == 3  # the building's level
    levels = pts.scope_levels(schedule.active_levels_at(t))
    assert levels is not None
    assert pts.point_levels(levels) == {"a1": 3, "a2": 3, "b1": 1}
    # b's start and end change b1's level although a (level 3) drives the building throughout.
    assert schedule.next_change_after(T0) == T0 + 10 * MIN
    assert schedule.next_change_after(t) == T0 + 30 * MIN
    assert schedule.next_change_after(T0 + 30 * MIN) == T0 + HOUR
    schedule.remove("b")
    assert schedule.next_change_after(T0) == T0 + HOUR
    assert schedule.prune(T0 + 2 * HOUR) == ["a"]
    assert schedule.active_levels_at(T0 + 2 * HOUR) == []


def test_events_for_the_whole_ven_stay_on_the_cheap_path() -> None:
    schedule = Schedule()
    schedule.targeting = PointTargets({"a1": ("A", None)}, ven_id="ven1")
    schedule.upsert(plan_of(make_event(event_id="u")))  # venID ven1: this VEN, every point
    schedule.upsert(plan_of(make_event(event_id="v", priority=2, intervals=[interval(1.0)])))
    # Only the building's winner: no per-point split, so no per-plan work.
    assert schedule.active_levels_at(T0) == [(EventTargets(ven_ids=frozenset({"ven1"})), 2)]
    assert schedule.next_change_after(T0) == T0 + HOUR
    plain = Schedule()
    plain.upsert(plan_of(targeted(None, event_id="w")))
    assert plain.active_levels_at(T0) == [(None, 2)]
    assert plain.active_levels_at(T0 - MIN) == []
    # A re-delivered plan that lost its targets is no longer targeted.
    schedule.upsert(plan_of(targeted(None, event_id="u")))
    assert schedule.active_levels_at(T0) == [(None, 2)]
