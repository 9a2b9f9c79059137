"""Offset points in a shed: values added to the value in force when the shed starts.

The base (the value in force) is read once per shed, recorded with the intent before the first
write, reused by level changes, retries and restarts, and cleared by a verified release.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import replace
from typing import Any

import pytest

from custom_components.loadshed_ven.engine import ledger_records as ledger
from custom_components.loadshed_ven.engine.ledger_records import Action
from custom_components.loadshed_ven.engine.overrides import (
    FailureKind,
    Outcome,
    PointState,
    PointStatus,
    value_in_force,
)
from custom_components.loadshed_ven.engine.points import OverridePoint
from custom_components.loadshed_ven.engine.shed import ShedController

from .shed_helpers import NOW, SlotTable

ZONE = OverridePoint(
    address="127.0.0.2",
    object_type="analog-value",
    instance=302,
    values=(2, 4, 6),
    offset=True,
    max_value=78,
)
PLAIN = OverridePoint(
    address="127.0.0.3", object_type="analog-value", instance=302, values=(78, 80, 82)
)
KEY = ZONE.key


@pytest.fixture
def table() -> SlotTable:
    return SlotTable()


@pytest.fixture
def controller(table: SlotTable) -> ShedController:
    return ShedController([ZONE, PLAIN], table, clock=lambda: NOW)


def _reads(table: SlotTable) -> int:
    return sum(1 for op, _, _ in table.calls if op == "read_pv")


# ---- the base ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state_changes", "reading", "expected"),
    [
        ({}, Outcome(ok=True, present_value=72), 72.0),
        # Our earlier value is there but outranked: what is in force is the owner's.
        (
            {"status": PointStatus.FAILED, "written_value": 74.0},
            Outcome(ok=True, slot_value=74.0, owner_priority=8, present_value=70.0),
            70.0,
        ),
        (
            {"status": PointStatus.FAILED, "written_value": 74.0},
            Outcome(ok=True, slot_value=None, present_value=72.0),
            72.0,
        ),
        (
            {"status": PointStatus.FAILED, "written_value": 74.0},
            Outcome(ok=True, slot_value=74.0, present_value=74.0),
            "written before the value in force was recorded",
        ),
        ({}, Outcome(ok=False, failure=FailureKind.OFFLINE, detail="no answer"), "no answer"),
        ({}, Outcome(ok=False), "could not be read"),
        ({}, Outcome(ok=True, present_value="inactive"), "'inactive' is not a number"),
        ({}, Outcome(ok=True, present_value=math.nan), "nan is not a number"),
        ({}, Outcome(ok=True, present_value=True), "True is not a number"),
    ],
)
def test_value_in_force(
    state_changes: dict[str, Any], reading: Outcome, expected: float | str
) -> None:
    base = value_in_force(replace(PointState(point=ZONE), **state_changes), reading)
    if isinstance(expected, float):
        assert base == expected
    else:
        assert isinstance(base, Outcome)
        assert not base.ok
        assert base.failure in (FailureKind.OFFLINE, FailureKind.ERROR)
        assert expected in str(base.detail)


async def test_base_is_read_once_and_reused_by_level_changes(
    controller: ShedController, table: SlotTable
) -> None:
    report = await controller.apply_level(1, "e1")
    assert sorted(report.written) == sorted([KEY, PLAIN.key])
    assert table.slots == {KEY: 74.0, PLAIN.key: 78.0}
    assert controller.state(KEY).base_value == 72.0
    assert controller.state(PLAIN.key).base_value is None
    assert _reads(table) == 1
    # The building's setpoint moves (someone changed it): the shed keeps its own base.
    table.in_force[KEY] = 70.0
    await controller.apply_level(2, "e1")
    assert table.slots[KEY] == 76.0
    assert _reads(table) == 1
    # Level 3 would be 78: still within max 78.
    await controller.apply_level(3, "e1")
    assert table.slots[KEY] == 78.0
    await controller.apply_level(0, "e1")
    assert table.slots[KEY] is None
    assert controller.state(KEY).base_value is None
    await controller.apply_level(1, "e2")  # a new shed: a new base
    assert table.slots[KEY] == 72.0
    assert _reads(table) == 2


async def test_base_is_recorded_before_the_write(
    controller: ShedController, table: SlotTable
) -> None:
    seen: list[tuple[float | None, list[Any]]] = []

    async def before_send(states: Any) -> None:
        by_key = {s.point.key: s for s in states}
        seen.append((by_key[KEY].base_value, [c[0] for c in table.calls]))

    controller.set_persistence(before_send=before_send, after_pass=None)
    await controller.apply_level(1, "e1")
    assert seen == [(72.0, ["read_pv"])]  # read, recorded, and only then written


async def test_operator_release_clears_the_base_and_hold_reads_it_again(
    controller: ShedController, table: SlotTable
) -> None:
    await controller.apply_level(2, "e1")
    await controller.release_point(KEY)
    assert controller.state(KEY).base_value is None
    table.in_force[KEY] = 71.0
    state = await controller.hold_point(KEY)
    assert (state.base_value, state.written_value, table.slots[KEY]) == (71.0, 75.0, 75.0)


async def test_a_failed_write_keeps_its_base_for_the_retry(
    controller: ShedController, table: SlotTable
) -> None:
    await controller.apply_level(1, "e1")
    table.offline.add(KEY)
    await controller.apply_level(2, "e1")
    state = controller.state(KEY)
    assert (state.status, state.base_value, state.written_value) == (
        PointStatus.FAILED,
        72.0,
        76.0,
    )
    table.offline.clear()
    table.in_force[KEY] = 99.0  # never read again while the override is tracked
    assert (await controller.retry_failed()).written == (KEY,)
    assert table.slots[KEY] == 76.0
    assert _reads(table) == 1


async def test_an_unreadable_base_fails_the_point_without_a_write(
    controller: ShedController, table: SlotTable
) -> None:
    table.offline.add(KEY)
    report = await controller.apply_level(1, "e1")
    assert report.failed == (KEY,)
    state = controller.state(KEY)
    assert (state.status, state.verified, state.failure) == (
        PointStatus.RELEASED,
        False,
        FailureKind.OFFLINE,
    )
    assert "the value in force could not be read" in str(state.detail)
    assert ("write", KEY, 74.0) not in table.calls
    assert not state.holds_override  # nothing of ours is there: nothing for the ledger
    # Retried towards the level in force: the base is read again then.
    table.offline.clear()
    assert (await controller.retry_failed()).written == (KEY,)
    assert table.slots[KEY] == 74.0


async def test_an_unsent_refusal_settles_when_the_shed_ends(
    controller: ShedController, table: SlotTable
) -> None:
    table.offline.add(KEY)
    await controller.apply_level(1, "e1")
    changed: list[Any] = []
    controller.add_listener(changed.extend)
    report = await controller.apply_level(0, "e1")
    assert report.failed == ()
    state = controller.state(KEY)
    assert (state.status, state.verified, state.failure) == (PointStatus.RELEASED, True, None)
    assert state in changed
    assert ("release", KEY, None) not in table.calls


async def test_a_raising_base_read_fails_one_point(table: SlotTable) -> None:
    class Broken(SlotTable):
        async def read_present_value(self, point: OverridePoint) -> Outcome:
            raise RuntimeError("bug")

    broken = Broken()
    controller = ShedController([ZONE, PLAIN], broken, clock=lambda: NOW)
    report = await controller.apply_level(1, "e1")
    assert (report.failed, report.written) == ((KEY,), (PLAIN.key,))
    assert "RuntimeError('bug')" in str(controller.state(KEY).detail)


async def test_a_base_read_past_the_pass_deadline_fails(table: SlotTable) -> None:
    class Slow(SlotTable):
        async def read_present_value(self, point: OverridePoint) -> Outcome:
            await asyncio.sleep(1)
            raise AssertionError("cancelled by the deadline")

    controller = ShedController([ZONE], Slow(), clock=lambda: NOW, pass_deadline=0.01)
    report = await controller.apply_level(1, "e1")
    assert report.failed == (KEY,)
    assert controller.state(KEY).failure is FailureKind.OFFLINE


async def test_a_target_beyond_the_limits_is_refused_not_clamped(
    controller: ShedController, table: SlotTable
) -> None:
    table.in_force[KEY] = 73.0
    await controller.apply_level(2, "e1")
    assert table.slots[KEY] == 77.0
    report = await controller.apply_level(3, "e1")  # 73 + 6 = 79 > max 78
    assert report.failed == (KEY,)
    state = controller.state(KEY)
    assert (state.status, state.failure, state.written_value, table.slots[KEY]) == (
        PointStatus.FAILED,  # level 2's value is still there: tracked, and released later
        FailureKind.OUT_OF_RANGE,
        77.0,
        77.0,
    )
    assert "level 3 value 79 (73 +6) is above the point's maximum 78" in str(state.detail)
    await controller.apply_level(0, "e1")
    assert table.slots[KEY] is None
    assert controller.state(KEY).verified


# ---- the ledger --------------------------------------------------------------------------------


async def test_a_restart_mid_event_keeps_the_base(table: SlotTable) -> None:
    before = ShedController([ZONE, PLAIN], table, clock=lambda: NOW)
    await before.apply_level(1, "e1")
    stored = json.loads(json.dumps(ledger.dump(before.states())))
    record = next(r for r in stored["records"] if r["key"] == KEY)
    assert (record["base_value"], record["point"]["offset"]) == (72.0, True)
    assert "base_value" not in next(r for r in stored["records"] if r["key"] != KEY)

    # The process dies. Our 74 is in force now: reading it as the base would give 76.
    after = ShedController([ZONE, PLAIN], table, clock=lambda: NOW)
    configured = {s.point.key: s.point for s in after.states()}
    for state in ledger.load(stored):
        reading = await table.read(state.point)
        decision = ledger.decide(
            state,
            reading,
            configured=ledger.configured_match(state, configured),
            event_active=True,
        )
        assert decision.action is Action.KEEP
        after.restore(ledger.adopted(decision.state, reading, NOW))
    assert after.state(KEY).base_value == 72.0
    await after.apply_level(1, "e1")
    assert table.slots[KEY] == 74.0
    await after.apply_level(2, "e1")
    assert table.slots[KEY] == 76.0
    assert _reads(table) == 1


def test_the_ledger_base_is_tolerant() -> None:
    state = PointState(
        point=ZONE, status=PointStatus.HELD, written_value=74.0, event_id="e", base_value=72.0
    )
    raw = ledger.state_to_dict(state)
    for bad in ("72", math.inf, True, None):
        loaded = ledger.state_from_dict({**raw, "base_value": bad})
        assert loaded is not None
        assert loaded.base_value is None
    del raw["base_value"]  # a record from before offsets existed
    loaded = ledger.state_from_dict(raw)
    assert loaded is not None
    assert loaded.base_value is None


def test_decide_keeps_the_base_only_for_an_offset_point() -> None:
    state = PointState(
        point=ZONE, status=PointStatus.HELD, written_value=74.0, event_id="e", base_value=72.0
    )
    reading = Outcome(ok=True, slot_value=74.0)
    kept = ledger.decide(state, reading, configured=ZONE, event_active=True)
    assert (kept.action, kept.state.base_value) == (Action.KEEP, 72.0)
    absolute = replace(ZONE, values=(74, 76, 78), offset=False)
    now_absolute = ledger.decide(state, reading, configured=absolute, event_active=True)
    assert now_absolute.state.base_value is None
    gone = ledger.decide(state, reading, configured=None, event_active=True)
    assert (gone.action, gone.state.base_value) == (Action.RELEASE, 72.0)
