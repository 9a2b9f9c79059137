"""Staggered release: the wave plan, and the shed controller holding points for later waves."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from custom_components.loadshed_ven.engine.points import OverridePoint
from custom_components.loadshed_ven.engine.release_waves import (
    MAX_RELEASE_MINUTES,
    WAVE_SPACING,
    ReleasePlan,
    plan_release,
    release_order,
    release_window,
    trunk_of,
    wave_count,
)
from custom_components.loadshed_ven.engine.shed import ShedController

from .shed_helpers import KEYS, NOW, SlotTable, sample_points


def point(address: str, instance: int = 302) -> OverridePoint:
    return OverridePoint(
        address=address, object_type="analog-value", instance=instance, values=(78, 80, 82)
    )


def campus() -> list[OverridePoint]:
    """A big IP controller (40 points), two small ones and a routed trunk of 12 controllers."""
    points = [point("127.0.0.10", i) for i in range(40)]
    points += [point("127.0.0.9"), point("127.0.0.11", 1), point("127.0.0.11", 2)]
    points += [point(f"7:{mac}") for mac in range(12)]
    return points


def at(seconds: float) -> object:
    return NOW + timedelta(seconds=seconds)


# ---- the plan ---------------------------------------------------------------------------------


def test_trunks_are_routed_networks_or_ip_controllers() -> None:
    assert trunk_of("7:0x0a") == "7"
    assert trunk_of("127.0.0.5") == "127.0.0.5"
    assert trunk_of("127.0.0.5:47809") == "127.0.0.5:47809"


def test_release_order_is_by_trunk_controller_and_key_with_numbers_as_numbers() -> None:
    points = [point("127.0.0.10", 3), point("7:2"), point("127.0.0.9"), point("127.0.0.10", 20)]
    ordered = [p.key for p in release_order(points)]
    assert ordered == [
        "7:2/analog-value,302",  # network 7 before 127 (numbers compare as numbers)
        "127.0.0.9/analog-value,302",
        "127.0.0.10/analog-value,3",
        "127.0.0.10/analog-value,20",
    ]
    # Stable: the order of the input does not matter.
    assert [p.key for p in release_order(reversed(points))] == ordered


@pytest.mark.parametrize(
    ("points", "minutes", "waves"),
    [(0, 5, 0), (1, 5, 1), (3, 5, 3), (100, 5, 11), (100, 0, 1), (100, 1, 3), (5, 0.25, 1)],
)
def test_wave_count(points: int, minutes: float, waves: int) -> None:
    assert wave_count(points, timedelta(minutes=minutes)) == waves


def test_waves_are_30_s_apart_from_the_end_to_the_end_of_the_window() -> None:
    plan = plan_release(campus(), timedelta(minutes=5), NOW)
    assert len(plan.waves) == 11
    assert [w.due for w in plan.waves] == [NOW + WAVE_SPACING * i for i in range(11)]
    assert plan.end == NOW + timedelta(minutes=5)
    assert plan.total == 55
    # Every point exactly once.
    keys = [k for w in plan.waves for k in w.keys]
    assert sorted(keys) == sorted(p.key for p in campus())


def test_every_wave_takes_a_slice_of_every_trunk_and_every_big_controller() -> None:
    plan = plan_release(campus(), timedelta(minutes=5), NOW)
    sizes = [len(w.keys) for w in plan.waves]
    assert max(sizes) - min(sizes) <= 1
    for wave in plan.waves:
        big = sum(1 for k in wave.keys if k.startswith("127.0.0.10/"))
        trunk = sum(1 for k in wave.keys if k.startswith("7:"))
        assert big in (3, 4)  # 40 points over 11 waves
        assert trunk in (1, 2)  # 12 controllers over 11 waves
    # The small controllers' points are not all in the first wave.
    small = [i for i, w in enumerate(plan.waves) for k in w.keys if k.startswith("127.0.0.11/")]
    assert len(set(small)) == 2


def test_fewer_points_than_waves_spread_over_the_whole_window() -> None:
    plan = plan_release(
        [point("127.0.0.2"), point("127.0.0.3"), point("1:1")], timedelta(minutes=5), NOW
    )
    assert [w.due for w in plan.waves] == [NOW, at(150), at(300)]
    assert [len(w.keys) for w in plan.waves] == [1, 1, 1]


def test_no_window_is_one_wave_now() -> None:
    plan = plan_release(campus(), timedelta(0), NOW)
    assert len(plan.waves) == 1
    assert plan.waves[0].due == NOW
    assert plan.holding(NOW) == frozenset()
    assert plan.next_due(NOW) is None


def test_no_points_is_an_empty_plan() -> None:
    plan = plan_release([], timedelta(minutes=5), NOW)
    assert plan == ReleasePlan(waves=())
    assert plan.total == 0
    assert plan.end is None
    assert plan.next_due(NOW) is None


def test_what_is_due_and_what_is_held_as_time_passes() -> None:
    plan = plan_release(campus(), timedelta(minutes=5), NOW)
    first = set(plan.waves[0].keys)
    assert plan.due_count(NOW) == 1
    assert plan.released(NOW) == len(first)
    assert plan.holding(NOW) == {p.key for p in campus()} - first
    assert plan.next_due(NOW) == at(30)
    assert plan.next_due(at(29)) == at(30)
    assert plan.due_count(at(45)) == 2
    assert plan.released(at(300)) == 55
    assert plan.holding(at(300)) == frozenset()
    assert plan.next_due(at(300)) is None


def test_the_same_points_always_make_the_same_plan() -> None:
    one = plan_release(campus(), timedelta(minutes=5), NOW)
    two = plan_release(list(reversed(campus())), timedelta(minutes=5), NOW)
    assert one == two


@pytest.mark.parametrize(
    ("raw", "minutes"),
    [
        (5, 5),
        (0, 0),
        (2.5, 2.5),
        (-3, 0),
        (10_000, MAX_RELEASE_MINUTES),
        (None, 7),
        ("5", 7),
        (True, 7),
        (float("nan"), 7),
    ],
)
def test_release_window_option(raw: object, minutes: float) -> None:
    assert release_window(raw, 7) == timedelta(minutes=minutes)


# ---- the shed controller holds what is not due yet --------------------------------------------


@pytest.fixture
def table() -> SlotTable:
    return SlotTable()


@pytest.fixture
async def shed(table: SlotTable) -> ShedController:
    controller = ShedController(sample_points(), table, clock=lambda: NOW)
    await controller.apply_level(1, "e1")
    assert all(table.slots[k] is not None for k in KEYS)
    return controller


async def test_held_points_keep_their_value_and_are_left_out_of_the_pass(
    shed: ShedController, table: SlotTable
) -> None:
    table.calls.clear()
    report = await shed.apply_level(0, None, holding={KEYS[1], KEYS[2]})
    assert report.released == (KEYS[0],)
    assert table.slots[KEYS[0]] is None
    assert table.slots[KEYS[1]] == 78.0
    assert table.slots[KEYS[2]] == "active"
    assert [c[1] for c in table.calls] == [KEYS[0]]
    assert shed.holding == {KEYS[1], KEYS[2]}
    assert not shed.shedding
    assert shed.state(KEYS[1]).holds_override
    # The next wave releases what it no longer holds, the last one everything.
    report = await shed.apply_level(0, None, holding={KEYS[2]})
    assert report.released == (KEYS[1],)
    report = await shed.apply_level(0, None)
    assert report.released == (KEYS[2],)
    assert shed.holding == frozenset()
    assert all(table.slots[k] is None for k in KEYS)


async def test_retries_leave_held_points_alone(shed: ShedController, table: SlotTable) -> None:
    table.offline.add(KEYS[0])
    table.offline.add(KEYS[1])
    report = await shed.apply_level(0, None, holding={KEYS[1]})
    assert report.failed == (KEYS[0],)
    # KEYS[1] fails too: still held, its retry waits for its wave.
    await shed.apply_level(0, None, holding={KEYS[1], KEYS[2]})
    table.offline.clear()
    table.calls.clear()
    report = await shed.retry_failed()
    assert report.released == (KEYS[0],)
    assert [c[1] for c in table.calls] == [KEYS[0]]
    assert table.slots[KEYS[1]] == 78.0


async def test_release_all_releases_held_points_at_once(
    shed: ShedController, table: SlotTable
) -> None:
    await shed.apply_level(0, None, holding={KEYS[1], KEYS[2]})
    report = await shed.release_all()
    assert sorted(report.released) == sorted([KEYS[1], KEYS[2]])
    assert shed.holding == frozenset()
    assert all(table.slots[k] is None for k in KEYS)


async def test_a_new_shed_rewrites_the_held_points_and_the_released_ones(
    shed: ShedController, table: SlotTable
) -> None:
    await shed.apply_level(0, None, holding={KEYS[1], KEYS[2]})
    table.calls.clear()
    report = await shed.apply_level(2, "e2")
    assert shed.holding == frozenset()
    # The binary point holds "active" at every level: it is not written again.
    assert sorted(report.written) == sorted(KEYS[:2])
    assert table.slots == {KEYS[0]: 80.0, KEYS[1]: 80.0, KEYS[2]: "active"}


async def test_holding_a_point_released_already_changes_nothing(
    shed: ShedController, table: SlotTable
) -> None:
    await shed.apply_level(0, None, holding={KEYS[1]})
    table.calls.clear()
    report = await shed.apply_level(0, None, holding={KEYS[0], KEYS[1]})
    assert table.calls == []
    assert report.released == ()
    assert Counter(table.slots.values())[None] == 2
