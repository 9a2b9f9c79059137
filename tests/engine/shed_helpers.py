"""The in-memory stand-in for the controllers that the shed controller tests drive."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from custom_components.loadshed_ven.engine.overrides import FailureKind, Outcome
from custom_components.loadshed_ven.engine.points import OverridePoint, PointValue

NOW = datetime(2026, 7, 1, 18, 0, tzinfo=UTC)


class OperationWriter:
    """An in-memory override writer: write, release and read all go to one ``_op``."""

    async def _op(self, op: str, point: OverridePoint, value: PointValue | None) -> Outcome:
        raise NotImplementedError

    async def write(self, point: OverridePoint, value: PointValue) -> Outcome:
        return await self._op("write", point, value)

    async def release(self, point: OverridePoint) -> Outcome:
        return await self._op("release", point, None)

    async def read(self, point: OverridePoint) -> Outcome:
        return await self._op("read", point, None)

    async def read_present_value(self, point: OverridePoint) -> Outcome:
        return await self._op("read_pv", point, None)


class SlotTable(OperationWriter):
    """Priority slots per point key, plus fault switches. Stands in for the controllers."""

    def __init__(self) -> None:
        self.slots: dict[str, PointValue | None] = {}
        self.others: dict[str, int] = {}  # key -> a higher priority someone else holds
        # key -> the present value when our slot is NULL (or outranked): 72 unless set.
        self.in_force: dict[str, PointValue] = {}
        self.offline: set[str] = set()
        self.denied: set[str] = set()  # keys whose writes (NULL included) are refused
        self.calls: list[tuple[str, str, PointValue | None]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def _op(self, op: str, point: OverridePoint, value: PointValue | None) -> Outcome:
        self.calls.append((op, point.key, value))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(0)
        self.in_flight -= 1
        if point.key in self.offline:
            return Outcome(ok=False, failure=FailureKind.OFFLINE, detail="no response")
        if op != "read" and point.key in self.denied:
            return Outcome(ok=False, failure=FailureKind.ACCESS_DENIED, detail="denied")
        if op not in ("read", "read_pv"):
            self.slots[point.key] = value
        ours, owner = self.slots.get(point.key), self.others.get(point.key)
        present = ours if ours is not None and owner is None else self.in_force.get(point.key, 72.0)
        return Outcome(
            ok=True,
            slot_value=ours,
            owner_priority=owner,
            present_value=present if op == "read_pv" else None,
        )


def sample_points() -> list[OverridePoint]:
    return [
        OverridePoint(
            address="127.0.0.2", object_type="analogValue", instance=302, values=(78, 80, 82)
        ),
        OverridePoint(
            address="127.0.0.3", object_type="analogValue", instance=302, values=(78, 80, 82)
        ),
        OverridePoint(
            address="12345:2", object_type="binaryValue", instance=1, values=("active",) * 3
        ),
    ]


KEYS = [p.key for p in sample_points()]
