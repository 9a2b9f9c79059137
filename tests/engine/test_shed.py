"""The shed controller's decisions: what it writes, releases and remembers.

These tests exercise the engine's logic with an in-memory stand-in for the BACnet side (a
dictionary of priority slots); the BACnet adapter tests run the same paths against the simulated
controllers.
"""

from __future__ import annotations

import pytest

from custom_components.loadshed_ven.engine.overrides import (
    FailureKind,
    Outcome,
    PointState,
    PointStatus,
)
from custom_components.loadshed_ven.engine.points import OverridePoint, PointValue
from custom_components.loadshed_ven.engine.shed import ApplyReport, ShedController, ShedPolicy

from .shed_helpers import KEYS, NOW, SlotTable, sample_points


@pytest.fixture
def table() -> SlotTable:
    return SlotTable()


@pytest.fixture
def controller(table: SlotTable) -> ShedController:
    return ShedController(sample_points(), table, clock=lambda: NOW)


async def test_level_1_writes_each_points_level_1_value(
    controller: ShedController, table: SlotTable
) -> None:
    report = await controller.apply_level(1, "e1")
    assert sorted(report.written) == sorted(KEYS)
    assert table.slots == {KEYS[0]: 78.0, KEYS[1]: 78.0, KEYS[2]: "active"}
    state = controller.state(KEYS[0])
    assert state.status is PointStatus.HELD
    assert (state.written_value, state.event_id, state.written_at, state.verified) == (
        78.0,
        "e1",
        NOW,
        True,
    )
    assert controller.shedding


async def test_same_level_again_writes_nothing(
    controller: ShedController, table: SlotTable
) -> None:
    await controller.apply_level(1, "e1")
    table.calls.clear()
    assert await controller.apply_level(1, "e1") == ApplyReport()
    assert table.calls == []
    assert controller.policy == ShedPolicy()


async def test_level_change_rewrites_only_changed_values(
    controller: ShedController, table: SlotTable
) -> None:
    await controller.apply_level(1, "e1")
    table.calls.clear()
    report = await controller.apply_level(2, "e1")
    assert sorted(report.written) == sorted(KEYS[:2])  # the binary point is "active" at 1 and 2
    assert table.slots[KEYS[0]] == 80.0


async def test_level_0_and_below_the_policy_release(table: SlotTable) -> None:
    controller = ShedController(
        sample_points(), table, clock=lambda: NOW, policy=ShedPolicy(shed_level=2)
    )
    assert (await controller.apply_level(1, "e1")).written == ()  # level 1 does not shed here
    await controller.apply_level(3, "e1")
    assert table.slots[KEYS[0]] == 82.0
    report = await controller.apply_level(0, "e1")
    assert sorted(report.released) == sorted(KEYS)
    assert set(table.slots.values()) == {None}
    assert all(s.status is PointStatus.RELEASED for s in controller.states())


async def test_operator_release_sticks_for_the_event_only(
    controller: ShedController, table: SlotTable
) -> None:
    await controller.apply_level(1, "e1")
    state = await controller.release_point(KEYS[0])
    assert state.status is PointStatus.RELEASED
    assert state.operator_released
    assert table.slots[KEYS[0]] is None

    await controller.apply_level(2, "e1")  # a modification of the same event
    assert table.slots[KEYS[0]] is None
    assert table.slots[KEYS[1]] == 80.0

    await controller.apply_level(1, "e2")  # the next event writes it again
    assert table.slots[KEYS[0]] == 78.0
    assert not controller.state(KEYS[0]).operator_released


async def test_hold_point_applies_the_current_or_level_1_value(
    controller: ShedController, table: SlotTable
) -> None:
    state = await controller.hold_point(KEYS[0])  # no event: level 1's value
    assert (state.status, table.slots[KEYS[0]]) == (PointStatus.HELD, 78.0)
    await controller.apply_level(3, "e1")
    await controller.release_point(KEYS[1])
    state = await controller.hold_point(KEYS[1])
    assert (state.written_value, state.operator_released) == (82.0, False)


async def test_owner_priority_is_reported_not_fought(
    controller: ShedController, table: SlotTable
) -> None:
    table.others[KEYS[1]] = 8
    await controller.apply_level(1, "e1")
    state = controller.state(KEYS[1])
    assert (state.status, state.owner_priority, state.verified) == (PointStatus.OWNED, 8, True)
    table.calls.clear()
    await controller.apply_level(1, "e1")
    assert table.calls == []  # no rewriting against the other writer
    await controller.release_all()
    assert table.slots[KEYS[1]] is None  # our slot is still released at the end


async def test_failed_write_is_kept_for_release_and_retry(
    controller: ShedController, table: SlotTable
) -> None:
    table.offline.add(KEYS[0])
    report = await controller.apply_level(1, "e1")
    assert report.failed == (KEYS[0],)
    state = controller.state(KEYS[0])
    assert (state.status, state.failure, state.verified) == (
        PointStatus.FAILED,
        FailureKind.OFFLINE,
        False,
    )
    assert state.holds_override  # it may have landed: release must still try it

    table.offline.clear()
    report = await controller.retry_failed()
    assert report.written == (KEYS[0],)
    assert controller.state(KEYS[0]).status is PointStatus.HELD


async def test_failed_release_stays_tracked_until_verified(
    controller: ShedController, table: SlotTable
) -> None:
    await controller.apply_level(1, "e1")
    table.offline.add(KEYS[2])
    report = await controller.release_all()
    assert report.failed == (KEYS[2],)
    state = controller.state(KEYS[2])
    assert state.status is PointStatus.FAILED
    assert state.written_value == "active"
    table.offline.clear()
    assert (await controller.retry_failed()).released == (KEYS[2],)  # a release is retried as one
    assert not any(s.holds_override for s in controller.states())


async def test_refused_write_then_refused_release_settles_as_released(
    controller: ShedController, table: SlotTable
) -> None:
    """Nothing of ours landed: the refused release reads the slot back and finds it NULL."""
    table.denied.add(KEYS[0])
    report = await controller.apply_level(1, "e1")
    assert report.failed == (KEYS[0],)
    assert controller.state(KEYS[0]).failure is FailureKind.ACCESS_DENIED
    table.calls.clear()
    report = await controller.apply_level(0, "e1")
    assert KEYS[0] in report.released
    assert ("release", KEYS[0], None) in table.calls
    assert ("read", KEYS[0], None) in table.calls
    assert controller.state(KEYS[0]).status is PointStatus.RELEASED
    assert not any(s.holds_override for s in controller.states())


async def test_refused_release_with_our_value_in_the_slot_stays_tracked(
    controller: ShedController, table: SlotTable
) -> None:
    """The object was locked after our write: our value is still there, so it is not released."""
    await controller.apply_level(1, "e1")
    table.denied.add(KEYS[0])
    report = await controller.apply_level(0, "e1")
    assert report.failed == (KEYS[0],)
    state = controller.state(KEYS[0])
    assert (state.status, state.failure) == (PointStatus.FAILED, FailureKind.ACCESS_DENIED)
    assert state.written_value == 78.0
    assert table.slots[KEYS[0]] == 78.0
    table.denied.clear()
    assert (await controller.retry_failed()).released == (KEYS[0],)


async def test_listeners_see_changed_states(controller: ShedController) -> None:
    seen: list[list[str]] = []
    unsubscribe = controller.add_listener(lambda states: seen.append([s.point.key for s in states]))
    await controller.apply_level(1, "e1")
    unsubscribe()
    await controller.apply_level(0, "e1")
    assert seen == [KEYS]


async def test_a_raising_writer_fails_one_point_not_the_pass(table: SlotTable) -> None:
    class Broken(SlotTable):
        async def write(self, point: OverridePoint, value: PointValue) -> Outcome:
            if point.key == KEYS[1]:
                raise RuntimeError("bug")
            return await super().write(point, value)

    controller = ShedController(sample_points(), Broken(), clock=lambda: NOW)
    report = await controller.apply_level(1, "e1")
    assert report.failed == (KEYS[1],)
    assert controller.state(KEYS[1]).failure is FailureKind.ERROR


async def test_out_of_range_level_is_refused(controller: ShedController, table: SlotTable) -> None:
    with pytest.raises(ValueError, match="outside 0-3"):
        await controller.apply_level(4, "e1")
    assert table.calls == []


def test_restore_only_accepts_configured_points(controller: ShedController) -> None:
    stranger = OverridePoint(address="127.0.0.9", object_type="AV", instance=1, values=(1, 1, 1))
    with pytest.raises(KeyError):
        controller.restore(PointState(point=stranger))
    held = PointState(point=sample_points()[0], status=PointStatus.HELD, written_value=78.0)
    controller.restore(held)
    assert controller.state(KEYS[0]) is held


@pytest.mark.parametrize(("shed", "normal"), [(0, 0), (4, 0), (1, 1), (2, -1)])
def test_policy_refuses_nonsense(shed: int, normal: int) -> None:
    with pytest.raises(ValueError, match="level"):
        ShedPolicy(shed_level=shed, normal_level=normal)


async def test_release_all_sticks_until_the_next_event(
    controller: ShedController, table: SlotTable
) -> None:
    await controller.apply_level(1, "e1")
    await controller.release_all()
    await controller.apply_level(2, "e1")  # the same event moves on: nothing is re-shed
    assert set(table.slots.values()) == {None}
    await controller.hold_point(KEYS[0])  # an operator may turn one back on
    assert table.slots[KEYS[0]] == 80.0
    await controller.apply_level(1, "e2")
    assert table.slots == {KEYS[0]: 78.0, KEYS[1]: 78.0, KEYS[2]: "active"}


@pytest.mark.parametrize(
    ("shed", "normal", "levels", "expected"),
    [
        # seed policy: 1 sheds, 0 is normal
        (1, 0, [1, 0], [78.0, None]),
        # shed at 2, normal 0: level 1 changes nothing (holds a shed, stays released otherwise)
        (2, 0, [1], [None]),
        (2, 0, [2, 1], [80.0, 80.0]),
        (2, 0, [2, 1, 0], [80.0, 80.0, None]),
        # shed at 2, normal 1: level 1 releases
        (2, 1, [2, 1], [80.0, None]),
    ],
)
async def test_levels_between_normal_and_shed_change_nothing(
    table: SlotTable, shed: int, normal: int, levels: list[int], expected: list[object]
) -> None:
    controller = ShedController(
        sample_points()[:1],
        table,
        clock=lambda: NOW,
        policy=ShedPolicy(shed_level=shed, normal_level=normal),
    )
    seen = []
    for level in levels:
        await controller.apply_level(level, "e1")
        seen.append(table.slots.get(KEYS[0]))
    assert seen == expected
