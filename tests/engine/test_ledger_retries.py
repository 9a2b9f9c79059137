"""Retries of unsettled ledger records (each record's own backoff), and the shed controller's
persistence hooks: intent recorded before a write goes out, a retry limited to some points.
"""

from __future__ import annotations

from collections.abc import Sequence

from custom_components.loadshed_ven.engine import ledger_records as ledger
from custom_components.loadshed_ven.engine.overrides import (
    FailureKind,
    Outcome,
    PointState,
    PointStatus,
)
from custom_components.loadshed_ven.engine.points import OverridePoint, PointValue
from custom_components.loadshed_ven.engine.retries import Backoff, RetrySchedule
from custom_components.loadshed_ven.engine.shed import ShedController

from .ledger_helpers import ANALOG, MULTI, NOW
from .shed_helpers import OperationWriter

# ---- retries ----------------------------------------------------------------------------


def test_retry_delay_doubles_up_to_the_cap() -> None:
    delays = [ledger.retry_delay(n, initial=10, cap=300) for n in range(8)]
    assert delays == [10, 20, 40, 80, 160, 300, 300, 300]
    assert ledger.retry_delay(-1, initial=10, cap=300) == 10
    assert ledger.retry_delay(10_000, initial=10, cap=300) == 300
    assert ledger.retry_delay(0, initial=10, cap=5) == 5


BACKOFF = Backoff(initial=10.0, cap=300.0)


def test_failing_point_does_not_delay_other_points_retry() -> None:
    """Each record keeps its own backoff: one refused or long-failing point never sets the
    time of another one's first retry."""
    schedule = RetrySchedule()
    schedule.sync({"denied@10": True}, 0.0, BACKOFF)
    assert schedule.due_at("denied@10") == 300.0  # refused: only at the cap
    schedule.sync({"denied@10": True, "offline@10": False}, 100.0, BACKOFF)
    assert schedule.due_at("offline@10") == 110.0
    assert schedule.next_due() == 110.0
    assert schedule.delay_of_next() == 10.0
    assert schedule.due(110.0) == {"offline@10"}


def test_each_record_doubles_its_own_delay_and_settling_resets_it() -> None:
    schedule = RetrySchedule()
    schedule.sync({"a@10": False}, 0.0, BACKOFF)
    dues = []
    for _ in range(7):
        now = schedule.due_at("a@10")
        assert now is not None
        schedule.retried({"a@10": False}, schedule.due(now), now, BACKOFF)
        dues.append(schedule.due_at("a@10"))
    assert dues == [30.0, 70.0, 150.0, 310.0, 610.0, 910.0, 1210.0]  # 20, 40, ... capped at 300
    schedule.sync({"b@10": False}, 1000.0, BACKOFF)  # a newcomer starts from 10 s
    assert schedule.due_at("b@10") == 1010.0
    schedule.retried({"b@10": False}, {"a@10"}, 1210.0, BACKOFF)  # a settled in its retry
    assert "a@10" not in schedule
    schedule.sync({}, 1300.0, BACKOFF)  # b settled by a pass
    assert len(schedule) == 0
    assert schedule.next_due() is None
    assert schedule.delay_of_next() is None
    schedule.sync({"a@10": False}, 2000.0, BACKOFF)  # failing again: from the start
    assert schedule.due_at("a@10") == 2010.0


def test_refused_record_waits_the_cap_between_retries_and_others_keep_their_time() -> None:
    schedule = RetrySchedule()
    schedule.sync({"a@10": False, "d@10": True}, 0.0, BACKOFF)
    schedule.retried({"a@10": False, "d@10": True}, {"a@10"}, 10.0, BACKOFF)
    assert (schedule.due_at("a@10"), schedule.due_at("d@10")) == (30.0, 300.0)
    schedule.retried({"a@10": False, "d@10": True}, {"d@10"}, 300.0, BACKOFF)
    assert schedule.due_at("d@10") == 600.0
    schedule.retried({"d@10": True}, {"unknown@10"}, 300.0, BACKOFF)  # not scheduled: ignored
    schedule.clear()
    assert schedule.due(10_000.0) == set()


# ---- the controller's persistence hooks -------------------------------------------------


class Slots(OperationWriter):
    """Priority slots per point key; records the order of hook calls and BACnet operations."""

    def __init__(self, log: list[str]) -> None:
        self.slots: dict[str, PointValue | None] = {}
        self.denied: set[str] = set()
        self.log = log

    async def _op(self, op: str, point: OverridePoint, value: PointValue | None) -> Outcome:
        self.log.append(f"{op} {point.key}")
        if point.key in self.denied:
            return Outcome(ok=False, failure=FailureKind.ACCESS_DENIED, detail="denied")
        if op != "read":
            self.slots[point.key] = value
        return Outcome(ok=True, slot_value=self.slots.get(point.key))


async def test_intent_is_recorded_before_the_write_goes_out() -> None:
    log: list[str] = []
    slots = Slots(log)
    controller = ShedController([ANALOG, MULTI], slots, clock=lambda: NOW)
    seen: list[list[PointState]] = []

    async def before_send(states: Sequence[PointState]) -> None:
        log.append("intent")
        seen.append(list(states))

    async def after_pass(states: Sequence[PointState]) -> None:
        log.append("saved")

    controller.set_persistence(before_send=before_send, after_pass=after_pass)
    await controller.apply_level(1, "ev-1")
    assert log == ["intent", f"write {ANALOG.key}", f"write {MULTI.key}", "saved"]
    assert [s.status for s in seen[0]] == [PointStatus.PENDING] * 2
    assert [s.written_value for s in seen[0]] == [78.0, 2]

    log.clear()
    await controller.apply_level(0, "ev-1")  # a release needs no intent: it is already tracked
    assert log == [f"release {ANALOG.key}", f"release {MULTI.key}", "saved"]
    log.clear()
    await controller.apply_level(0, "ev-1")  # nothing to do: no pass, no save
    assert log == []


async def test_retry_failed_can_be_limited_to_some_points() -> None:
    slots = Slots([])
    slots.denied = {ANALOG.key, MULTI.key}
    controller = ShedController([ANALOG, MULTI], slots, clock=lambda: NOW)
    report = await controller.apply_level(1, "ev-1")
    assert sorted(report.failed) == sorted([ANALOG.key, MULTI.key])
    slots.denied.clear()
    report = await controller.retry_failed({MULTI.key})
    assert report.written == (MULTI.key,)
    assert controller.state(ANALOG.key).status is PointStatus.FAILED
    report = await controller.retry_failed()
    assert report.written == (ANALOG.key,)


def test_a_retry_of_a_record_settled_meanwhile_is_ignored() -> None:
    """A pass may settle a record while its retry runs: the retry's outcome must not revive it."""
    schedule = RetrySchedule()
    schedule.sync({"a@10": False}, 0.0, BACKOFF)
    schedule.sync({}, 5.0, BACKOFF)  # settled by a pass before the retry ended
    schedule.retried({"a@10": False}, {"a@10"}, 10.0, BACKOFF)
    assert "a@10" not in schedule
    assert schedule.next_due() is None


def test_a_record_its_retry_settled_is_dropped() -> None:
    schedule = RetrySchedule()
    schedule.sync({"a@10": False, "b@10": False}, 0.0, BACKOFF)
    schedule.retried({"b@10": False}, {"a@10", "b@10"}, 10.0, BACKOFF)
    assert "a@10" not in schedule
    assert schedule.due_at("b@10") == 30.0  # still failing: 20 s later
