"""Events aimed at some resources: ``ShedController.apply_level(point_levels=...)``."""

from __future__ import annotations

import pytest

from custom_components.loadshed_ven.engine.shed import ShedController, ShedPolicy

from .shed_helpers import KEYS, NOW, SlotTable, sample_points

A, B, C = KEYS


@pytest.fixture
def table() -> SlotTable:
    return SlotTable()


@pytest.fixture
def controller(table: SlotTable) -> ShedController:
    return ShedController(sample_points(), table, clock=lambda: NOW)


async def test_only_the_points_given_a_level_are_written(
    controller: ShedController, table: SlotTable
) -> None:
    report = await controller.apply_level(2, "e1", point_levels={A: 2})
    assert report.written == (A,)
    assert table.slots == {A: 80.0}
    assert controller.shedding  # the building's level sheds
    assert not controller.state(B).holds_override


async def test_each_point_follows_its_own_level(
    controller: ShedController, table: SlotTable
) -> None:
    await controller.apply_level(3, "e1", point_levels={A: 3, B: 1, C: 0})
    assert table.slots == {A: 82.0, B: 78.0}


async def test_a_point_dropping_to_zero_is_released(
    controller: ShedController, table: SlotTable
) -> None:
    await controller.apply_level(2, "e1", point_levels={A: 2, B: 2})
    report = await controller.apply_level(2, "e2", point_levels={A: 2})
    assert report.released == (B,)
    assert table.slots == {A: 80.0, B: None}


async def test_none_makes_every_point_follow_the_building_again(
    controller: ShedController, table: SlotTable
) -> None:
    await controller.apply_level(1, "e1", point_levels={A: 1})
    await controller.apply_level(1, "e2")
    assert table.slots == {A: 78.0, B: 78.0, C: "active"}


async def test_a_level_between_normal_and_shed_keeps_each_points_own_level(
    table: SlotTable,
) -> None:
    controller = ShedController(
        sample_points(), table, policy=ShedPolicy(shed_level=2, normal_level=0), clock=lambda: NOW
    )
    await controller.apply_level(2, "e1", point_levels={A: 2, B: 2})
    # Level 1 is neither shed nor normal: A keeps the 2 it followed; B is released at 0.
    await controller.apply_level(2, "e1", point_levels={A: 1, B: 0})
    assert table.slots == {A: 80.0, B: None}


async def test_the_first_targeted_pass_starts_from_the_building_level(table: SlotTable) -> None:
    controller = ShedController(
        sample_points(), table, policy=ShedPolicy(shed_level=2, normal_level=0), clock=lambda: NOW
    )
    await controller.apply_level(3, "e1")
    # An in-between level keeps what the point followed before: the building's 3.
    await controller.apply_level(3, "e1", point_levels={A: 1, B: 3})
    assert table.slots == {A: 82.0, B: 82.0, C: None}


async def test_nothing_is_written_while_the_building_does_not_shed(
    controller: ShedController, table: SlotTable
) -> None:
    report = await controller.apply_level(0, None, point_levels={A: 2})
    assert report.written == ()
    assert table.slots == {}


async def test_out_of_range_point_levels_are_refused(controller: ShedController) -> None:
    with pytest.raises(ValueError, match="point's SIMPLE level"):
        await controller.apply_level(2, "e1", point_levels={A: 4})


async def test_retry_and_holding_use_the_points_own_levels(
    controller: ShedController, table: SlotTable
) -> None:
    table.offline.add(B)
    await controller.apply_level(2, "e1", point_levels={A: 2, B: 1})
    table.offline.clear()
    report = await controller.retry_failed()
    assert report.written == (B,)
    assert table.slots == {A: 80.0, B: 78.0}
    # Holding B: its release waits for a later pass.
    report = await controller.apply_level(2, "e1", point_levels={A: 2}, holding=frozenset({B}))
    assert report.released == ()
    assert controller.holding == frozenset({B})
    assert table.slots[B] == 78.0


async def test_an_operator_hold_uses_the_points_own_level(
    controller: ShedController, table: SlotTable
) -> None:
    await controller.apply_level(3, "e1", point_levels={A: 3, B: 1})
    await controller.release_point(B)
    assert table.slots == {A: 82.0, B: None}
    # B's own event says 1: held again at 1, not at the building's 3.
    await controller.hold_point(B)
    assert table.slots == {A: 82.0, B: 78.0}
    # C is reached by no event: held at the building's level.
    await controller.hold_point(C)
    assert controller.state(C).written_value == "active"
