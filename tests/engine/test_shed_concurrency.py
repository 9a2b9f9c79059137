"""How the shed controller runs a pass: cancelled and overdue passes, the worker pool, and the
order in which routed points and IP controllers are served.

The controllers are the in-memory stand-in of shed_helpers; the BACnet adapter tests run the same
paths against the simulated controllers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from custom_components.loadshed_ven.engine.overrides import FailureKind, Outcome, PointStatus
from custom_components.loadshed_ven.engine.points import OverridePoint, PointValue
from custom_components.loadshed_ven.engine.shed import (
    POOL_SIZE,
    ROUTED_WORKERS,
    ShedController,
    is_routed,
)

from .shed_helpers import KEYS, NOW, SlotTable, sample_points


async def test_a_cancelled_pass_leaves_every_write_tracked() -> None:
    """Intent is recorded before sending: a pass cut short still gets released afterwards."""

    class Hanging(SlotTable):
        hang = True

        async def _op(self, op: str, point: OverridePoint, value: PointValue | None) -> Outcome:
            if op == "write" and self.hang:
                self.slots[point.key] = value  # the controller took it...
                await asyncio.Event().wait()  # ...but the confirmation never comes
            return await super()._op(op, point, value)

    writer = Hanging()
    controller = ShedController(sample_points(), writer, clock=lambda: NOW)
    task = asyncio.create_task(controller.apply_level(1, "e1"))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert {s.status for s in controller.states()} == {PointStatus.PENDING}
    assert all(s.holds_override for s in controller.states())

    writer.hang = False  # the network answers again
    report = await controller.release_all()
    assert sorted(report.released) == sorted(KEYS)
    assert set(writer.slots.values()) == {None}


async def test_the_pass_deadline_fails_only_what_did_not_finish() -> None:
    class OneSlow(SlotTable):
        async def _op(self, op: str, point: OverridePoint, value: PointValue | None) -> Outcome:
            if point.key == KEYS[1] and op == "write":
                await asyncio.sleep(10)
            return await super()._op(op, point, value)

    writer = OneSlow()
    controller = ShedController(sample_points(), writer, clock=lambda: NOW, pass_deadline=0.1)
    report = await controller.apply_level(1, "e1")
    assert sorted(report.written) == sorted([KEYS[0], KEYS[2]])
    assert report.failed == (KEYS[1],)
    slow = controller.state(KEYS[1])
    assert slow.failure is FailureKind.OFFLINE
    assert "0.1 s pass deadline" in (slow.detail or "")
    assert slow.holds_override  # still tracked: the write may have landed


class Gated(SlotTable):
    """Every operation waits for ``gate``; counts operations in flight, routed ones apart."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.routed_in_flight = 0

    async def _op(self, op: str, point: OverridePoint, value: PointValue | None) -> Outcome:
        self.calls.append((op, point.key, value))
        routed = is_routed(point.address)
        self.in_flight += 1
        self.routed_in_flight += routed
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await self.gate.wait()
        self.in_flight -= 1
        self.routed_in_flight -= routed
        self.slots[point.key] = value
        return Outcome(ok=True, slot_value=value)


def _many(addresses: list[str], per_device: int) -> list[OverridePoint]:
    return [
        OverridePoint(
            address=address, object_type="analogValue", instance=instance, values=(78, 80, 82)
        )
        for address in addresses
        for instance in range(per_device)
    ]


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


def test_routed_addresses_are_told_apart() -> None:
    assert is_routed("12345:2")
    assert not is_routed("192.168.1.20")
    assert not is_routed("192.168.1.20:47809")


async def test_routed_points_go_first_then_controllers_take_turns() -> None:
    def point(address: str, instance: int) -> OverridePoint:
        return OverridePoint(
            address=address, object_type="analogValue", instance=instance, values=(78, 80, 82)
        )

    points = [
        point("127.0.0.2", 1),
        point("127.0.0.2", 2),
        point("127.0.0.2", 3),
        point("12345:2", 1),
        point("127.0.0.3", 1),
        point("12345:2", 2),
        point("127.0.0.3", 2),
        point("7:0x10", 1),
    ]
    writer = SlotTable()
    controller = ShedController(points, writer, clock=lambda: NOW)
    report = await controller.apply_level(1, "e1")
    assert sorted(report.written) == sorted(p.key for p in points)
    started = [key for _, key, _ in writer.calls]
    assert started == [
        "12345:2/analog-value,1",
        "7:16/analog-value,1",
        "12345:2/analog-value,2",
        "127.0.0.2/analog-value,1",
        "127.0.0.3/analog-value,1",
        "127.0.0.2/analog-value,2",
        "127.0.0.3/analog-value,2",
        "127.0.0.2/analog-value,3",
    ]


async def test_no_more_than_the_pool_is_in_flight() -> None:
    points = _many([f"127.0.1.{n}" for n in range(1, 31)], per_device=10)
    writer = Gated()
    controller = ShedController(points, writer, clock=lambda: NOW)
    task = asyncio.create_task(controller.apply_level(1, "e1"))
    await _until(lambda: writer.in_flight == POOL_SIZE)
    for _ in range(20):
        await asyncio.sleep(0)
    assert writer.max_in_flight == POOL_SIZE
    assert len(writer.calls) == POOL_SIZE
    writer.gate.set()
    report = await task
    assert len(report.written) == len(points) == len(writer.calls)
    assert writer.max_in_flight == POOL_SIZE


async def test_a_busy_trunk_leaves_workers_for_ip_controllers() -> None:
    routed = _many([f"{n}:1" for n in range(1, 11)], per_device=10)
    direct = _many([f"127.0.2.{n}" for n in range(1, 11)], per_device=10)
    writer = Gated()
    controller = ShedController(routed + direct, writer, clock=lambda: NOW)
    task = asyncio.create_task(controller.apply_level(1, "e1"))
    await _until(lambda: writer.in_flight == POOL_SIZE)
    assert writer.routed_in_flight == ROUTED_WORKERS
    assert writer.in_flight - writer.routed_in_flight == POOL_SIZE - ROUTED_WORKERS
    writer.gate.set()
    report = await task
    assert len(report.written) == len(routed) + len(direct)
