"""Changing a running shed controller: its policy, and points added or removed while it runs."""

from __future__ import annotations

import asyncio

from custom_components.loadshed_ven.engine.overrides import PointStatus
from custom_components.loadshed_ven.engine.points import OverridePoint
from custom_components.loadshed_ven.engine.shed import ShedController, ShedPolicy

from .shed_helpers import KEYS, NOW, SlotTable, sample_points

EXTRA = OverridePoint(address="127.0.0.4", object_type="analogValue", instance=7, values=(1, 2, 3))


def _controller(table: SlotTable, points: list[OverridePoint] | None = None) -> ShedController:
    return ShedController(sample_points() if points is None else points, table, clock=lambda: NOW)


async def test_set_policy_applies_from_the_next_pass() -> None:
    table = SlotTable()
    controller = _controller(table)
    await controller.apply_level(1, "e1")
    assert controller.shedding
    controller.set_policy(ShedPolicy(shed_level=2))
    assert controller.policy == ShedPolicy(shed_level=2)
    assert controller.shedding is False  # level 1 no longer sheds...
    assert set(table.slots.values()) != {None}  # ...but nothing was released yet
    report = await controller.apply_level(1, "e1")  # the next pass follows the new policy
    assert sorted(report.released) == sorted(KEYS)


async def test_added_points_start_released_and_follow_the_next_pass() -> None:
    table = SlotTable()
    controller = _controller(table)
    await controller.apply_level(2, "e1")
    before = controller.state(KEYS[0])
    await controller.add_points([EXTRA, sample_points()[0]])
    assert controller.state(KEYS[0]) is before  # a configured key keeps its state
    assert controller.state(EXTRA.key).status is PointStatus.RELEASED
    assert [s.point.key for s in controller.states()] == [*KEYS, EXTRA.key]
    report = await controller.apply_level(2, "e1")
    assert report.written == (EXTRA.key,)
    assert table.slots[EXTRA.key] == 2.0


async def test_add_points_waits_for_a_pass_in_progress() -> None:
    table = SlotTable()
    controller = _controller(table)
    apply = asyncio.create_task(controller.apply_level(1, "e1"))
    await asyncio.sleep(0)  # the pass holds the lock now
    await controller.add_points([EXTRA])
    assert apply.done()
    assert (await apply).written  # the pass walked the points it started with
    assert controller.state(EXTRA.key).status is PointStatus.RELEASED


async def test_removed_points_are_released_then_forgotten() -> None:
    table = SlotTable()
    controller = _controller(table)
    await controller.apply_level(1, "e1")
    stuck = await controller.remove_points([KEYS[0], KEYS[0], "not-configured"])
    assert stuck == []
    assert table.slots[KEYS[0]] is None
    assert [s.point.key for s in controller.states()] == KEYS[1:]
    assert await controller.remove_points([]) == []


async def test_a_point_whose_release_fails_stays_configured() -> None:
    table = SlotTable()
    controller = _controller(table)
    await controller.apply_level(1, "e1")
    table.offline.add(KEYS[1])
    stuck = await controller.remove_points([KEYS[0], KEYS[1]])
    assert stuck == [KEYS[1]]
    assert [s.point.key for s in controller.states()] == KEYS[1:]
    assert controller.state(KEYS[1]).holds_override
    table.offline.clear()
    assert await controller.remove_points([KEYS[1]]) == []
    assert [s.point.key for s in controller.states()] == KEYS[2:]
