"""``python -m bench``: shed and release at building scale, against the simulated building.

Prints a Markdown table to stdout (progress goes to stderr); ``--json FILE`` also writes the raw
numbers. ``scripts/bench --help`` lists the options.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from custom_components.loadshed_ven.bacnet import (
    BacnetLimits,
    BacnetStack,
    LocalInterface,
    StackRegistry,
)

from .grid import Cell, CellResult, measure_cell, watch_loop
from .ha import RELEASE_WINDOW_MINUTES, measure_ha
from .lag import DEFAULT_CASES, LagCase
from .large import LARGE_PER_DEVICE, LARGE_POINTS, LARGE_REPEATS, measure_large_setup
from .layout import (
    Shape,
    building_for,
    extra_objects,
    ip_addresses,
    points_for,
    routed_addresses,
)
from .report import TARGET_LATENCY, TARGET_POINTS, BenchResult, LoopResult, as_dict, markdown
from .simclient import SimHost

BENCH_DEVICE_INSTANCE = 3990042


@dataclass(frozen=True, kw_only=True)
class Options:
    """What to run."""

    sizes: tuple[int, ...] = (50, 200, 500, 1000)
    per_device: tuple[int, ...] = (1, 10)
    latencies: tuple[float, ...] = (0.0, 0.020, 0.100)
    repeats: int = 3
    routed_share: float = 0.1
    baseline_budget: float = 2.0
    full_target_baseline: bool = False  # time every point of the 500-point 20 ms baseline
    loop_points: int = TARGET_POINTS  # 0: skip the event-loop measurement
    ha_points: int = TARGET_POINTS  # 0: skip Home Assistant
    large_points: int = 0  # the campus-scale cell and entry set-up (10 per controller); 0: skip
    release_window: int = RELEASE_WINDOW_MINUTES  # the entries' release window option, minutes
    staggered_window: int = 0  # minutes: one more Home Assistant event released in waves; 0: skip
    lag_cases: tuple[LagCase, ...] = DEFAULT_CASES  # large events, in Home Assistant
    lag_polls: int = 12  # polls watched after delivery (openleadr's status job runs every 10 s)
    limits: BacnetLimits = field(default_factory=BacnetLimits)
    base_ip: str = "127.50.0.1"
    router_ip: str = "127.51.0.1"
    network: int = 12345
    json_path: Path | None = None


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def _lag_cases(text: str) -> tuple[LagCase, ...]:
    cases = []
    for part in text.split(","):
        if part.strip():
            events, _, intervals = part.strip().partition("x")
            cases.append(LagCase(events=int(events), intervals=int(intervals)))
    return tuple(cases)


def _millis(text: str) -> tuple[float, ...]:
    return tuple(float(part) / 1000 for part in text.split(",") if part.strip())


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Options from the command line."""
    default = Options()
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Shed and release-all wall times of the integration's BACnet engine against "
        "the simulated building on loopback, next to a one-point-at-a-time baseline.",
    )
    parser.add_argument("--quick", action="store_true", help="a small run: 50 points, 0 and 20 ms")
    parser.add_argument(
        "--targets",
        action="store_true",
        help="only what the targets need: 500 points at 20 ms, the event loop, Home Assistant",
    )
    parser.add_argument("--sizes", type=_ints, help="points per cell (default 50,200,500,1000)")
    parser.add_argument("--per-device", type=_ints, help="points per controller (default 1,10)")
    parser.add_argument(
        "--latency", type=_millis, help="controller latency in ms (default 0,20,100)"
    )
    parser.add_argument("--repeats", type=int, help=f"passes per cell (default {default.repeats})")
    parser.add_argument(
        "--routed-share",
        type=float,
        default=default.routed_share,
        help="share of controllers behind the router (default 0.1)",
    )
    parser.add_argument(
        "--baseline-budget",
        type=float,
        default=default.baseline_budget,
        help="seconds a sequential phase may take before it is sampled and scaled "
        "(default 2; 0: always every point)",
    )
    parser.add_argument(
        "--full-target-baseline",
        action="store_true",
        help="time every point of the 500-point 20 ms baseline (about 50 s; --targets does)",
    )
    parser.add_argument("--loop-points", type=int, help="points for the event-loop measurement")
    parser.add_argument("--ha-points", type=int, help="points in the Home Assistant entry")
    parser.add_argument("--no-ha", action="store_true", help="skip Home Assistant")
    parser.add_argument(
        "--large-points",
        type=int,
        help=f"points of the campus-scale cell, {LARGE_PER_DEVICE} per controller, and of the "
        f"entry whose set-up is timed (--targets: {LARGE_POINTS}; default 0: skip)",
    )
    parser.add_argument(
        "--release-window",
        type=int,
        default=default.release_window,
        help="the entries' release window option in minutes (default 0: release at once, "
        "as the release timings assume)",
    )
    parser.add_argument(
        "--staggered-window",
        type=int,
        help="minutes: one more Home Assistant event whose end releases in waves over this "
        "window, timed (--targets: 1; default 0: skip)",
    )
    parser.add_argument(
        "--lag",
        type=_lag_cases,
        help="large-event cases in Home Assistant as EVENTSxINTERVALS "
        "(default 1x1440,1000x1; an empty string skips them)",
    )
    parser.add_argument(
        "--lag-polls", type=int, help="polls watched after a large delivery (default 12)"
    )
    parser.add_argument("--per-device-limit", type=int, help="try another per-controller limit")
    parser.add_argument("--per-network-limit", type=int, help="try another per-network limit")
    parser.add_argument("--overall-limit", type=int, help="try another overall limit")
    parser.add_argument("--base-ip", default=default.base_ip, help="first controller address")
    parser.add_argument("--router-ip", default=default.router_ip, help="the router's address")
    parser.add_argument("--json", type=Path, help="also write the raw results to this file")
    args = parser.parse_args(argv)

    preset: dict[str, object] = {}
    if args.quick:
        preset = {
            "sizes": (50,),
            "latencies": (0.0, 0.020),
            "repeats": 2,
            "loop_points": 50,
            "ha_points": 50,
            "lag_polls": 3,
        }
    elif args.targets:
        preset = {
            "sizes": (TARGET_POINTS,),
            "latencies": (TARGET_LATENCY,),
            "repeats": 5,
            "full_target_baseline": True,
            "large_points": LARGE_POINTS,
            "staggered_window": 1,
        }
    limits = BacnetLimits()
    limits = BacnetLimits(
        per_device=args.per_device_limit or limits.per_device,
        per_network=args.per_network_limit or limits.per_network,
        overall=args.overall_limit or limits.overall,
    )
    chosen = {
        "sizes": args.sizes,
        "per_device": args.per_device,
        "latencies": args.latency,
        "repeats": args.repeats,
        "loop_points": args.loop_points,
        "ha_points": 0 if args.no_ha else args.ha_points,
        "large_points": args.large_points,
        "staggered_window": args.staggered_window,
        "full_target_baseline": args.full_target_baseline or None,
        "lag_cases": args.lag,
        "lag_polls": args.lag_polls,
    }
    values = {**preset, **{k: v for k, v in chosen.items() if v is not None}}
    return Options(
        **values,
        routed_share=args.routed_share,
        baseline_budget=args.baseline_budget,
        release_window=args.release_window,
        limits=limits,
        base_ip=args.base_ip,
        router_ip=args.router_ip,
        json_path=args.json,
    )


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def run(options: Options) -> BenchResult:
    """Start the building, run every cell, the event-loop and Home Assistant measurements."""
    shapes = [
        Shape(points=n, per_device=k, routed_share=options.routed_share)
        for n in options.sizes
        for k in options.per_device
    ]
    # The event-loop passes use every per-controller layout; Home Assistant one point each.
    extra_shapes = [
        Shape(points=options.loop_points, per_device=k, routed_share=options.routed_share)
        for k in options.per_device
        if options.loop_points > 0
    ]
    if options.ha_points > 0:
        extra_shapes.append(
            Shape(points=options.ha_points, per_device=1, routed_share=options.routed_share)
        )
    large = Shape(
        points=options.large_points,
        per_device=LARGE_PER_DEVICE,
        routed_share=options.routed_share,
    )
    if large.points > 0:
        extra_shapes.append(large)
    layout = building_for(
        [*shapes, *extra_shapes],
        base_ip=options.base_ip,
        router_ip=options.router_ip,
        network=options.network,
    )
    ips, routed = ip_addresses(layout), routed_addresses(layout)
    async with SimHost() as host:
        _progress(f"starting {layout.ip_devices} + {layout.routed_devices} routed controllers")
        await host.start(layout)
        addresses, count = extra_objects([*shapes, *extra_shapes], ips, routed)
        if count:
            await host.add_objects(addresses, count)
        registry = StackRegistry()
        handle = await registry.acquire(
            LocalInterface(
                address="127.0.0.1/32",
                port=0,
                device_instance=BENCH_DEVICE_INSTANCE,
                routes={layout.network: layout.router_ip},
            )
        )
        try:
            cells = await _grid(options, host, handle.stack, shapes, ips=ips, routed=routed)
            if large.points > 0:
                cells.append(
                    await _large_cell(options, host, handle.stack, large, ips=ips, routed=routed)
                )
            loops = await _loops(options, host, handle.stack, ips, routed)
        finally:
            await handle.release()
        ha = None
        if options.ha_points > 0:
            _progress(f"Home Assistant with {options.ha_points} points")
            await host.set_latency(TARGET_LATENCY)
            shape = Shape(points=options.ha_points, per_device=1, routed_share=options.routed_share)
            if options.lag_cases:
                _progress(", ".join(case.label for case in options.lag_cases))
            ha = await measure_ha(
                host,
                layout,
                points_for(shape, ips, routed),
                lag_cases=options.lag_cases,
                lag_polls=options.lag_polls,
                release_window=options.release_window,
                staggered_window=options.staggered_window,
            )
        large_setup = None
        if large.points > 0 and options.ha_points > 0:
            _progress(f"Home Assistant set-up of an entry with {large.points} points")
            await host.set_latency(TARGET_LATENCY)
            large_setup = await measure_large_setup(
                host,
                layout,
                points_for(large, ips, routed),
                release_window=options.release_window,
            )
        return BenchResult(
            limits=options.limits,
            repeats=options.repeats,
            building_start_seconds=host.start_seconds,
            cells=cells,
            loop=loops,
            ha=ha,
            large_setup=large_setup,
        )


async def _grid(
    options: Options,
    host: SimHost,
    stack: BacnetStack,
    shapes: list[Shape],
    *,
    ips: list[str],
    routed: list[str],
) -> list[CellResult]:
    results = []
    for shape in shapes:
        points = points_for(shape, ips, routed)
        for latency in options.latencies:
            is_target = (shape.points, latency) == (TARGET_POINTS, TARGET_LATENCY)
            full = is_target and options.full_target_baseline
            began = time.perf_counter()
            result = await measure_cell(
                host,
                stack,
                Cell(shape=shape, latency=latency),
                points,
                limits=options.limits,
                repeats=options.repeats,
                baseline_budget=0.0 if full else options.baseline_budget,
            )
            _progress(
                f"{shape.points} points, {shape.per_device} per controller, "
                f"{latency * 1000:.0f} ms: {time.perf_counter() - began:.1f} s"
            )
            results.append(result)
    return results


async def _large_cell(
    options: Options,
    host: SimHost,
    stack: BacnetStack,
    shape: Shape,
    *,
    ips: list[str],
    routed: list[str],
) -> CellResult:
    """The campus-scale cell: target latency only, fewer passes, a sampled baseline."""
    _progress(f"{shape.points} points, {shape.per_device} per controller")
    return await measure_cell(
        host,
        stack,
        Cell(shape=shape, latency=TARGET_LATENCY),
        points_for(shape, ips, routed),
        limits=options.limits,
        repeats=min(options.repeats, LARGE_REPEATS),
        baseline_budget=options.baseline_budget or 2.0,
    )


async def _loops(
    options: Options, host: SimHost, stack: BacnetStack, ips: list[str], routed: list[str]
) -> list[LoopResult]:
    if options.loop_points <= 0:
        return []
    results = []
    for per_device in options.per_device:
        shape = Shape(
            points=options.loop_points, per_device=per_device, routed_share=options.routed_share
        )
        _progress(f"event loop: {shape.points} points, {per_device} per controller")
        points = points_for(shape, ips, routed)
        watched = {
            mode: await watch_loop(
                host, stack, points, limits=options.limits, latency=TARGET_LATENCY, mode=mode
            )
            for mode in ("plain", "debug")
        }
        results.append(
            LoopResult(
                points=shape.points,
                per_device=per_device,
                latency=TARGET_LATENCY,
                shed=watched["plain"][0],
                release=watched["plain"][1],
                shed_debug=watched["debug"][0],
                release_debug=watched["debug"][1],
            )
        )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the report."""
    options = parse_args(argv)
    result = asyncio.run(run(options))
    print(markdown(result))
    if options.json_path is not None:
        options.json_path.write_text(json.dumps(as_dict(result), indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
