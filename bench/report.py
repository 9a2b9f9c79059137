"""The benchmark's results as Markdown tables (and a JSON-ready dict)."""

from __future__ import annotations

import dataclasses
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custom_components.loadshed_ven.bacnet import BacnetLimits

from .grid import CellResult, median, p95
from .ha import HaResult
from .large import LargeSetup
from .loopwatch import SlowCallbacks

TARGET_POINTS = 500
TARGET_LATENCY = 0.020
TARGET_SECONDS = 1.0  # about twice the bound the limits set (0.52 s for 500 points)
LARGE_TARGET_SECONDS = 8.0  # 5,000 points
LARGE_TARGET_SETUP = 2.0  # set-up of the 5,000-point entry
# Client CPU per point while shedding: half of what write + whole read-back cost before the
# requests were pre-encoded and the answers parsed from their bytes (2.3 ms).
TARGET_CPU_PER_POINT = 0.00115
TARGET_SPEEDUP = 10.0
TARGET_FIRST_WRITE = 0.2
TARGET_CALLBACK = 0.1

GRID_HEADER = (
    "| Points | Per controller | Routed points | Latency (ms) | Shed median (s) | Shed p95 (s) "
    "| Release median (s) | Release p95 (s) | Sequential shed (s) | Sequential release (s) "
    "| Speed-up | Ideal (s) | Shed CPU (s) | Peak in flight |"
)


@dataclass(kw_only=True)
class LoopResult:
    """Slow event-loop callbacks of the engine's shed and release of ``points`` points."""

    points: int
    per_device: int
    latency: float
    shed: SlowCallbacks  # timed directly, debug mode off
    release: SlowCallbacks
    shed_debug: SlowCallbacks  # asyncio debug mode
    release_debug: SlowCallbacks


@dataclass(kw_only=True)
class BenchResult:
    """Everything one run measured."""

    limits: BacnetLimits
    repeats: int
    building_start_seconds: float
    cells: list[CellResult]
    loop: list[LoopResult]
    ha: HaResult | None
    large_setup: LargeSetup | None = None


def machine() -> str:
    """CPU count and model, Python version: the context every number needs."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    load = ""
    if hasattr(os, "getloadavg"):
        load = f", load average {os.getloadavg()[0]:.2f} at the end"
    return (
        f"{os.cpu_count()} CPU ({model}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}{load}"
    )


def _s(seconds: float) -> str:
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"


def grid_rows(cells: list[CellResult]) -> list[str]:
    """The grid table: one row per cell."""
    rows = [GRID_HEADER, "|" + "---:|" * (GRID_HEADER.count("|") - 1)]
    for c in cells:
        estimated = "~" if c.baseline_sampled < c.cell.shape.points else ""
        shed = median(c.shed)
        speedup = c.baseline_shed / shed if shed > 0 else float("inf")
        rows.append(
            f"| {c.cell.shape.points} | {c.cell.shape.per_device} | {c.routed_points} "
            f"| {c.cell.latency * 1000:.0f} | {_s(shed)} | {_s(p95(c.shed))} "
            f"| {_s(median(c.release))} | {_s(p95(c.release))} "
            f"| {estimated}{_s(c.baseline_shed)} | {estimated}{_s(c.baseline_release)} "
            f"| {speedup:.1f}x | {_s(c.ideal)} "
            f"| {median(c.shed_cpu):.2f} + {median(c.shed_sim_cpu):.2f} | {c.peak_in_flight} |"
        )
    return rows


def _callback(watched: SlowCallbacks) -> str:
    longest = watched.longest
    if longest is None:
        return f"< {watched.threshold * 1000:.0f} ms"
    return f"{longest * 1000:.0f} ms"


def _pair(plain: SlowCallbacks, debug: SlowCallbacks) -> str:
    """Both measures and the longest collector pause: "plain / debug (GC n ms)"."""
    gc_ms = max(plain.longest_gc, debug.longest_gc) * 1000
    return f"{_callback(plain)} / {_callback(debug)} (GC {gc_ms:.0f} ms)"


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def target_rows(result: BenchResult) -> list[str]:
    """The README's targets for 500 points at 20 ms, each with the measured value."""
    rows = ["| Target | Limit | Measured | Met |", "|---|---:|---:|---|"]
    for c in result.cells:
        if (c.cell.shape.points, c.cell.latency) != (TARGET_POINTS, TARGET_LATENCY):
            continue
        label = f"{c.cell.shape.points} points, {c.cell.shape.per_device} per controller"
        shed, release = median(c.shed), median(c.release)
        speedup = c.baseline_shed / shed if shed > 0 else float("inf")
        cpu = median(c.shed_cpu) / c.cell.shape.points
        rows += [
            f"| Client CPU per point while shedding, {label} (median) "
            f"| {TARGET_CPU_PER_POINT * 1000:.2f} ms | {cpu * 1000:.2f} ms "
            f"| {_met(cpu <= TARGET_CPU_PER_POINT)} |",
            f"| Shed, {label} (median; p95 {_s(p95(c.shed))} s) | {TARGET_SECONDS} s "
            f"| {_s(shed)} s | {_met(shed <= TARGET_SECONDS)} |",
            f"| Speed-up over one at a time, {label} | {TARGET_SPEEDUP:.0f}x "
            f"| {speedup:.1f}x | {_met(speedup >= TARGET_SPEEDUP)} |",
            f"| Release-all, {label} (median; p95 {_s(p95(c.release))} s) | {TARGET_SECONDS} s "
            f"| {_s(release)} s | {_met(release <= TARGET_SECONDS)} |",
        ]
    rows += large_target_rows(result)
    for loop in result.loop:
        if loop.points != TARGET_POINTS:
            continue
        rows.append(
            _callback_target(
                f"engine shedding {loop.points} points ({loop.per_device} per controller)",
                loop.shed,
                loop.shed_debug,
            )
        )
    if result.ha is not None:
        rows += [
            f"| Longest event-loop callback, {lag.case.label}: while delivered / "
            f"over {lag.polls} polls | {TARGET_CALLBACK * 1000:.0f} ms "
            f"| {_callback(lag.delivery)} / {_callback(lag.steady)} "
            f"| {_met(lag.delivered and _within(lag.delivery) and _within(lag.steady))} |"
            for lag in result.ha.lag
        ]
    if result.ha is not None and result.ha.points == TARGET_POINTS:
        ha = result.ha
        rows.append(
            f"| First write after the interval starts (Home Assistant, {ha.points} points) "
            f"| {TARGET_FIRST_WRITE} s | {_s(ha.shed.first)} s "
            f"| {_met(ha.shed.first <= TARGET_FIRST_WRITE)} |"
        )
        rows.append(
            _callback_target(
                f"Home Assistant shedding {ha.points} points", ha.shed_callbacks, ha.shed_debug
            )
        )
    return rows


def large_target_rows(result: BenchResult) -> list[str]:
    """The campus-scale targets: the 5,000-point shed and release, and the entry's set-up."""
    rows = []
    for c in result.cells:
        if c.cell.shape.points < 10 * TARGET_POINTS or c.cell.latency != TARGET_LATENCY:
            continue
        label = (
            f"{c.cell.shape.points} points, {c.cell.shape.devices} controllers "
            f"x {c.cell.shape.per_device}, {c.routed_points} routed"
        )
        for what, values in (("Shed", c.shed), ("Release-all", c.release)):
            value = median(values)
            rows.append(
                f"| {what}, {label} (median of {len(values)}) | {LARGE_TARGET_SECONDS:.0f} s "
                f"| {_s(value)} s | {_met(value <= LARGE_TARGET_SECONDS)} |"
            )
    large = result.large_setup
    if large is not None:
        rows.append(
            f"| Set-up of an entry with {large.points} points (Home Assistant; longest "
            f"callback {_callback(large.setup_callbacks)}) | {LARGE_TARGET_SETUP:.0f} s "
            f"| {_s(large.setup_seconds)} s | {_met(large.setup_seconds <= LARGE_TARGET_SETUP)} |"
        )
    return rows


def _within(watched: SlowCallbacks) -> bool:
    return (watched.longest or 0.0) <= TARGET_CALLBACK


def _ratio(watched: SlowCallbacks, baseline: SlowCallbacks) -> str:
    """How many times the baseline's longest callback (each at least the threshold)."""
    value = max(watched.longest or 0.0, watched.threshold)
    base = max(baseline.longest or 0.0, baseline.threshold)
    return f"{value / base:.1f}x"


def lag_rows(ha: HaResult) -> list[str]:
    """Large events: the loop's longest callbacks, next to the shed baseline of the same run."""
    limit = f"{TARGET_CALLBACK * 1000:.0f} ms"
    rows = [
        f"| Large events (target: no callback over {limit}) | Known / sent, time "
        f"| Longest callback while delivered (over {limit}) | Longest over the next polls "
        f"(over {limit}) | vs. shedding {ha.points} points ({_callback(ha.shed_callbacks)}) |",
        "|---|---:|---:|---:|---:|",
    ]
    rows += [
        f"| {lag.case.label} | {lag.known:,} / {lag.case.events:,}, "
        f"{_s(lag.delivery_seconds)} s "
        f"| {_callback(lag.delivery)} ({lag.delivery.over(TARGET_CALLBACK)}) "
        f"| {_callback(lag.steady)} ({lag.steady.over(TARGET_CALLBACK)}, {lag.polls} polls) "
        f"| {_ratio(lag.delivery, ha.shed_callbacks)} / {_ratio(lag.steady, ha.shed_callbacks)} |"
        for lag in ha.lag
    ]
    return rows


def lag_stacks(ha: HaResult) -> list[str]:
    """Where the loop was during callbacks over the target: the most sampled stack per case."""
    lines = []
    for lag in ha.lag:
        for window, watched in (("delivery", lag.delivery), ("next polls", lag.steady)):
            if _within(watched) or not watched.top_stall_stack:
                continue
            lines.append(f"- {lag.case.label}, {window}: `{watched.top_stall_stack}`")
    return lines


def _callback_target(what: str, plain: SlowCallbacks, debug: SlowCallbacks) -> str:
    met = "/".join(
        "yes" if (w.longest or 0.0) <= TARGET_CALLBACK else "**no**" for w in (plain, debug)
    )
    return (
        f"| Longest event-loop callback, {what}: plain / asyncio debug mode "
        f"| {TARGET_CALLBACK * 1000:.0f} ms | {_callback(plain)} / {_callback(debug)} | {met} |"
    )


def ha_rows(ha: HaResult) -> list[str]:
    """Set-up cost and event timing inside Home Assistant."""
    mib = 1024 * 1024
    return [
        "| Home Assistant | Value |",
        "|---|---:|",
        f"| Release window (entry option, minutes) | {_window(ha.release_window)} |",
        f"| Set-up of an entry with {ha.points} points (entry set-up, platforms, "
        f"{ha.points + 1} switches) | {_s(ha.setup_seconds)} s |",
        f"| Resident memory added by that set-up | {ha.setup_rss_bytes / mib:.1f} MiB |",
        f"| Python memory held by the entry (tracemalloc, second set-up) "
        f"| {ha.traced_bytes / mib:.1f} MiB |",
        f"| Event received ahead of its start | {_s(ha.received_ahead)} s |",
        f"| Interval start to first / last write at a controller ({ha.shed.changes} slots) "
        f"| {_s(ha.shed.first)} s / {_s(ha.shed.last)} s |",
        f"| Interval end to first / last release at a controller ({ha.release.changes} slots) "
        f"| {_s(ha.release.first)} s / {_s(ha.release.last)} s |",
        f"| Longest callback while shedding: plain / debug mode (longest GC pause) "
        f"| {_pair(ha.shed_callbacks, ha.shed_debug)} |",
        f"| Longest callback while releasing: plain / debug mode (longest GC pause) "
        f"| {_pair(ha.release_callbacks, ha.release_debug)} |",
        *_staggered_rows(ha),
    ]


def _staggered_rows(ha: HaResult) -> list[str]:
    """The release in waves, when it was measured."""
    if ha.staggered is None or ha.staggered_callbacks is None:
        return []
    window, timing = ha.staggered_window, ha.staggered
    return [
        f"| Staggered release over a {window}-minute window: interval end to first / last "
        f"release at a controller ({timing.changes} slots) "
        f"| {_s(timing.first)} s / {_s(timing.last)} s |",
        f"| Longest callback while releasing in waves (longest GC pause) "
        f"| {_callback(ha.staggered_callbacks)} |",
    ]


def _window(minutes: int | None) -> str:
    return "not set" if minutes is None else str(minutes)


def large_rows(large: LargeSetup) -> list[str]:
    """Set-up of the campus-scale entry."""
    return [
        f"| Home Assistant, {large.points} points | Value |",
        "|---|---:|",
        f"| Release window (entry option, minutes) | {_window(large.release_window)} |",
        f"| Set-up of the entry (entry set-up and platforms) | {_s(large.setup_seconds)} s |",
        f"| Resident memory added by that set-up "
        f"| {large.setup_rss_bytes / (1024 * 1024):.1f} MiB |",
        f"| Longest callback during set-up (longest GC pause) "
        f"| {_callback(large.setup_callbacks)} (GC {large.setup_callbacks.longest_gc * 1000:.0f} "
        "ms) |",
    ]


def loop_rows(loops: list[LoopResult]) -> list[str]:
    """The engine's longest callbacks, outside Home Assistant."""
    return [
        "| Engine alone | Longest callback while shedding: plain / debug mode (GC) "
        "| while releasing |",
        "|---|---:|---:|",
        *(
            f"| {loop.points} points, {loop.per_device} per controller, "
            f"{loop.latency * 1000:.0f} ms latency "
            f"| {_pair(loop.shed, loop.shed_debug)} | {_pair(loop.release, loop.release_debug)} |"
            for loop in loops
        ),
    ]


def markdown(result: BenchResult) -> str:
    """The whole report."""
    limits = result.limits
    lines = [
        "## loadshed_ven benchmark",
        "",
        f"Machine: {machine()}. Loopback only; controller latency is simulated.",
        f"Limits: {limits.per_device} per controller, {limits.per_network} per routed network, "
        f"{limits.overall} overall. Repeats per cell: {result.repeats}; "
        f"building started in {result.building_start_seconds:.1f} s.",
        "",
        *grid_rows(result.cells),
        "",
        "`~`: sequential time of an even sample of the points, scaled to all of them.",
        "",
    ]
    if result.loop:
        lines += [*loop_rows(result.loop), ""]
    if result.ha is not None:
        lines += [*ha_rows(result.ha), ""]
        if result.ha.lag:
            lines += [*lag_rows(result.ha), ""]
            stacks = lag_stacks(result.ha)
            if stacks:
                lines += ["Most sampled stack (innermost last) in callbacks over the target:"]
                lines += [*stacks, ""]
    if result.large_setup is not None:
        lines += [*large_rows(result.large_setup), ""]
    targets = target_rows(result)
    if len(targets) > 2:
        lines += [*targets, ""]
    return "\n".join(lines)


def as_dict(result: BenchResult) -> dict[str, Any]:
    """The result as plain data for ``--json``."""
    data: dict[str, Any] = dataclasses.asdict(result)
    data["machine"] = machine()
    for cell, raw in zip(result.cells, data["cells"], strict=True):
        raw["shed_median"], raw["shed_p95"] = median(cell.shed), p95(cell.shed)
        raw["release_median"], raw["release_p95"] = median(cell.release), p95(cell.release)
    if result.ha is not None:
        for lag, raw in zip(result.ha.lag, data["ha"]["lag"], strict=True):
            raw["label"] = lag.case.label
            for window in ("delivery", "steady"):
                watched: SlowCallbacks = getattr(lag, window)
                raw[window]["longest"] = watched.longest
                raw[window]["over_target"] = watched.over(TARGET_CALLBACK)
                raw[window]["top_stall_stack"] = watched.top_stall_stack
    return data
