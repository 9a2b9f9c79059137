"""Shed and release-all wall times of the integration's engine, and the sequential baseline.

Each cell drives a :class:`ShedController` over a :class:`BacnetOverrideWriter` with the
integration's default limits (or the ones given), the same pair ``async_setup_entry`` builds, and
checks every point in the simulated controllers' priority arrays after each pass. The baseline is
the way the original application worked: one point at a time, write, read back, next.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from custom_components.loadshed_ven.bacnet import BacnetLimits, BacnetOverrideWriter, BacnetStack
from custom_components.loadshed_ven.engine.points import OverridePoint
from custom_components.loadshed_ven.engine.shed import ShedController

from .layout import LEVEL_VALUES, PRIORITY, Shape, object_key
from .loopwatch import Mode, SlowCallbacks, watch_callbacks
from .simclient import SimHost

PASS_DEADLINE_SECONDS = 120.0  # as in the integration's __init__.py
ROUND_TRIPS_PER_POINT = 2  # a write (or release), then the priority-array read-back
ROUND_TRIP_CPU_SECONDS = 0.0035  # a loopback round trip without latency, for planning only


def _utcnow() -> datetime:
    return datetime.now(UTC)


class BenchError(AssertionError):
    """The building does not hold what the engine reported: the measurement is void."""


@dataclass(frozen=True, kw_only=True)
class Cell:
    """One grid cell: a building shape at one controller latency."""

    shape: Shape
    latency: float


@dataclass(kw_only=True)
class CellResult:
    """What one cell measured (seconds)."""

    cell: Cell
    routed_points: int
    shed: list[float] = field(default_factory=list)
    release: list[float] = field(default_factory=list)
    # CPU seconds of each shed: this process (the integration's side) and the building's.
    shed_cpu: list[float] = field(default_factory=list)
    shed_sim_cpu: list[float] = field(default_factory=list)
    baseline_shed: float = 0.0
    baseline_release: float = 0.0
    baseline_sampled: int = 0  # points the baseline timed; fewer than the cell's: extrapolated
    ideal: float = 0.0
    peak_in_flight: int = 0
    # Points found holding our value after a shed, and NULL after a release, in the simulated
    # controllers' priority arrays (every pass, baseline included).
    verified_written: int = 0
    verified_released: int = 0


def median(values: list[float]) -> float:
    """The median (mean of the middle two for an even count)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def p95(values: list[float]) -> float:
    """The 95th percentile, nearest rank (with fewer than 20 values: the slowest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def ideal_seconds(points: list[OverridePoint], limits: BacnetLimits, latency: float) -> float:
    """The lower bound the limits allow: the busiest limit's share of round trips x latency.

    Each point costs two round trips of ``latency``; the overall limit, the busiest controller
    (per-device limit) and the routed trunk (per-network limit) each serialise their share.
    """
    per_device = Counter(p.address for p in points)
    routed = sum(1 for p in points if ":" in p.address)
    waves = max(
        math.ceil(len(points) / limits.overall),
        *(math.ceil(n / limits.per_device) for n in per_device.values()),
        math.ceil(routed / limits.per_network),
    )
    return waves * ROUND_TRIPS_PER_POINT * latency


async def verify(host: SimHost, points: list[OverridePoint], expected: object) -> None:
    """Raise BenchError unless every point's slot holds ``expected`` in the simulated building."""
    values = await host.slots([object_key(p) for p in points], PRIORITY)
    wrong = [p.key for p, v in zip(points, values, strict=True) if v != expected]
    if wrong:
        raise BenchError(f"{len(wrong)} point(s) do not hold {expected!r}: {wrong[:5]}")


def controller_for(points: list[OverridePoint], writer: BacnetOverrideWriter) -> ShedController:
    """A controller as the integration builds it (level 1 sheds, 120 s pass deadline)."""
    return ShedController(points, writer, clock=_utcnow, pass_deadline=PASS_DEADLINE_SECONDS)


@dataclass(frozen=True, kw_only=True)
class Pass:
    """Wall times of one shed and one release-all, and the CPU time of the shed."""

    shed: float
    release: float
    shed_cpu: float
    shed_sim_cpu: float


async def timed[T](operation: Callable[[], Awaitable[T]]) -> tuple[float, T]:
    """Wall time of one awaited operation, and its result."""
    began = time.perf_counter()
    result = await operation()
    return time.perf_counter() - began, result


async def shed_and_release(
    host: SimHost, writer: BacnetOverrideWriter, points: list[OverridePoint], run: int
) -> Pass:
    """One verified shed (level 1) and one verified release-all."""
    controller = controller_for(points, writer)
    sim_cpu, cpu = await host.cpu_seconds(), time.process_time()
    shed_s, report = await timed(lambda: controller.apply_level(1, f"bench-{run}"))
    cpu, sim_cpu = time.process_time() - cpu, await host.cpu_seconds() - sim_cpu
    if report.failed or len(report.written) != len(points):
        raise BenchError(f"shed: {len(report.failed)} failed, e.g. {report.failed[:3]}")
    await verify(host, points, LEVEL_VALUES[0])
    release_s, report = await timed(controller.release_all)
    if report.failed or len(report.released) != len(points):
        raise BenchError(f"release: {len(report.failed)} failed, e.g. {report.failed[:3]}")
    await verify(host, points, None)
    return Pass(shed=shed_s, release=release_s, shed_cpu=cpu, shed_sim_cpu=sim_cpu)


def baseline_sample(
    points: list[OverridePoint], latency: float, budget: float
) -> list[OverridePoint]:
    """Every point when one at a time should fit ``budget`` seconds a phase, else an even spread.

    The spread keeps the routed share; its time is scaled up to all points. A budget of 0 means
    every point.
    """
    per_point = ROUND_TRIPS_PER_POINT * (latency + ROUND_TRIP_CPU_SECONDS)
    if budget <= 0 or len(points) * per_point <= budget:
        return points
    wanted = max(10, int(budget / per_point))
    step = len(points) / wanted
    return [points[int(i * step)] for i in range(wanted)]


async def sequential(
    host: SimHost, writer: BacnetOverrideWriter, points: list[OverridePoint]
) -> tuple[float, float]:
    """The original application's way: write, read back, next point; then the same to release."""
    began = time.perf_counter()
    for point in points:
        if not (await writer.write(point, LEVEL_VALUES[0])).ok:
            raise BenchError(f"baseline write of {point.key} failed")
    shed_s = time.perf_counter() - began
    await verify(host, points, LEVEL_VALUES[0])
    began = time.perf_counter()
    for point in points:
        if not (await writer.release(point)).ok:
            raise BenchError(f"baseline release of {point.key} failed")
    release_s = time.perf_counter() - began
    await verify(host, points, None)
    return shed_s, release_s


async def measure_cell(
    host: SimHost,
    stack: BacnetStack,
    cell: Cell,
    points: list[OverridePoint],
    *,
    limits: BacnetLimits,
    repeats: int,
    baseline_budget: float,
) -> CellResult:
    """Run one cell: ``repeats`` shed/release passes, then the sequential baseline."""
    await host.set_latency(cell.latency)
    result = CellResult(
        cell=cell,
        routed_points=sum(1 for p in points if ":" in p.address),
        ideal=ideal_seconds(points, limits, cell.latency),
    )
    writer = BacnetOverrideWriter(stack, limits)
    await host.peak_in_flight()  # forget earlier cells
    for run in range(repeats):
        one = await shed_and_release(host, writer, points, run)
        result.shed.append(one.shed)
        result.release.append(one.release)
        result.shed_cpu.append(one.shed_cpu)
        result.shed_sim_cpu.append(one.shed_sim_cpu)
        result.verified_written += len(points)
        result.verified_released += len(points)
    result.peak_in_flight = await host.peak_in_flight()
    sample = baseline_sample(points, cell.latency, baseline_budget)
    one_at_a_time = BacnetOverrideWriter(stack, BacnetLimits(per_device=1, overall=1))
    shed_s, release_s = await sequential(host, one_at_a_time, sample)
    scale = len(points) / len(sample)
    result.baseline_shed, result.baseline_release = shed_s * scale, release_s * scale
    result.baseline_sampled = len(sample)
    result.verified_written += len(sample)
    result.verified_released += len(sample)
    return result


async def watch_loop(
    host: SimHost,
    stack: BacnetStack,
    points: list[OverridePoint],
    *,
    limits: BacnetLimits,
    latency: float,
    mode: Mode,
) -> tuple[SlowCallbacks, SlowCallbacks]:
    """The slow event-loop callbacks of one shed and one release-all (see :mod:`.loopwatch`)."""
    await host.set_latency(latency)
    writer = BacnetOverrideWriter(stack, limits)
    controller = controller_for(points, writer)
    # Each pass starts in a callback of its own (sleep(0)), so what it does before its first
    # await is timed too, and what the bench does in between is not.
    with watch_callbacks(mode) as shed:
        await asyncio.sleep(0)
        report = await controller.apply_level(1, "bench-loop")
    await asyncio.sleep(0)
    if report.failed:
        raise BenchError(f"shed: {len(report.failed)} failed")
    with watch_callbacks(mode) as release:
        await asyncio.sleep(0)
        report = await controller.release_all()
    await asyncio.sleep(0)
    if report.failed:
        raise BenchError(f"release: {len(report.failed)} failed")
    await verify(host, points, None)
    return shed, release
