"""A small run of ``scripts/bench``: correct results and a complete table, no timing assertions.

The benchmark checks the simulated controllers' priority arrays after every pass (our value in
every point's slot after a shed, NULL after a release) and counts what it found; a mismatch
aborts the run. The building runs in its own process on a loopback /24 of this test process.
"""

from __future__ import annotations

import os
import re

from bench.__main__ import Options, parse_args, run
from bench.ha import measure_ha
from bench.lag import LagCase
from bench.layout import (
    PRIORITY,
    Shape,
    ip_addresses,
    object_key,
    points_for,
    routed_addresses,
)
from bench.report import lag_rows, markdown
from bench.simclient import BuildingLayout, SimHost

# Addresses of this test process only (the benchmark itself defaults to 127.50/127.51).
_OCTET = os.getpid() % 200
BASE_IP = f"127.52.{_OCTET}.1"
ROUTER_IP = f"127.53.{_OCTET}.1"
HA_BASE_IP = f"127.52.{_OCTET}.101"
HA_ROUTER_IP = f"127.53.{_OCTET}.101"
POINTS = 20
LATENCIES = (0.0, 0.020)
PER_DEVICE = (1, 10)
LAG_CASES = (LagCase(events=1, intervals=60), LagCase(events=20, intervals=1))


async def test_small_run_writes_and_releases_every_point(socket_enabled: None) -> None:
    options = Options(
        sizes=(POINTS,),
        per_device=PER_DEVICE,
        latencies=LATENCIES,
        repeats=1,
        routed_share=0.2,
        baseline_budget=0.0,  # one at a time over every point
        loop_points=POINTS,
        ha_points=0,
        base_ip=BASE_IP,
        router_ip=ROUTER_IP,
    )
    result = await run(options)

    assert [(c.cell.shape.per_device, c.cell.latency) for c in result.cells] == [
        (per_device, latency) for per_device in PER_DEVICE for latency in LATENCIES
    ]
    for cell in result.cells:
        assert cell.routed_points > 0  # routed controllers took part
        assert cell.baseline_sampled == POINTS
        # The concurrent pass and the one-at-a-time baseline, each seen in the building.
        assert cell.verified_written == 2 * POINTS
        assert cell.verified_released == 2 * POINTS
        assert len(cell.shed) == len(cell.release) == 1
    assert [loop.per_device for loop in result.loop] == list(PER_DEVICE)

    table = markdown(result)
    rows = [line for line in table.splitlines() if re.match(rf"\| {POINTS} \| ", line)]
    assert len(rows) == len(PER_DEVICE) * len(LATENCIES)
    for row, cell in zip(rows, result.cells, strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 14
        assert cells[:4] == [
            str(POINTS),
            str(cell.cell.shape.per_device),
            str(cell.routed_points),
            f"{cell.cell.latency * 1000:.0f}",
        ]
        assert cells[10].endswith("x")  # the speed-up over the baseline
    assert "Longest callback while shedding" in table


def test_command_line_presets() -> None:
    quick = parse_args(["--quick"])
    assert quick.sizes == (50,)
    assert quick.latencies == (0.0, 0.020)
    targets = parse_args(["--targets", "--no-ha", "--overall-limit", "48"])
    assert targets.sizes == (500,)
    assert targets.ha_points == 0
    assert targets.limits.overall == 48
    assert targets.full_target_baseline
    assert not quick.full_target_baseline
    assert (targets.large_points, quick.large_points) == (5000, 0)
    assert targets.release_window == quick.release_window == 0  # release at once
    assert (targets.staggered_window, quick.staggered_window) == (1, 0)
    assert parse_args(["--release-window", "5"]).release_window == 5
    custom = parse_args(["--sizes", "10,30", "--latency", "0,5", "--repeats", "1"])
    assert (custom.sizes, custom.latencies, custom.repeats) == ((10, 30), (0.0, 0.005), 1)
    assert parse_args([]).lag_cases == (
        LagCase(events=1, intervals=1440),
        LagCase(events=1000, intervals=1),
    )
    lag = parse_args(["--quick", "--lag", "2x30,5x1", "--lag-polls", "2"])
    assert lag.lag_cases == (LagCase(events=2, intervals=30), LagCase(events=5, intervals=1))
    assert lag.lag_polls == 2
    assert parse_args(["--lag", ""]).lag_cases == ()


async def test_home_assistant_part_sees_every_write_and_release(socket_enabled: None) -> None:
    layout = BuildingLayout(
        ip_devices=POINTS - 2, routed_devices=2, base_ip=HA_BASE_IP, router_ip=HA_ROUTER_IP
    )
    shape = Shape(points=POINTS, per_device=1, routed_share=0.1)
    async with SimHost() as host:
        await host.start(layout)
        await host.set_latency(0.020)
        points = points_for(shape, ip_addresses(layout), routed_addresses(layout))
        assert sum(1 for p in points if ":" in p.address) == 2
        result = await measure_ha(
            host,
            layout,
            points,
            event_seconds=2,
            lead_seconds=2.0,
            lag_cases=LAG_CASES,
            lag_polls=1,
        )
        # Every setpoint changed once at the start and once at the end of each event ...
        assert result.shed.changes == result.release.changes == POINTS
        assert 0 <= result.shed.first <= result.shed.last
        assert 0 <= result.release.first <= result.release.last
        assert result.received_ahead > 0  # the event was known before it started
        # ... and nothing is left in the building after the entry was unloaded.
        assert await host.slots([object_key(p) for p in points], PRIORITY) == [None] * POINTS
    assert result.setup_seconds > 0
    assert result.release_window == 0  # the option, as Home Assistant loaded the entry
    assert result.traced_bytes > 0
    assert result.shed_debug.mode == "debug"
    # The large-event cases: every event reached the runtime, and each has its table row.
    assert [lag.case for lag in result.lag] == list(LAG_CASES)
    for lag in result.lag:
        assert lag.delivered
        assert lag.known == lag.case.events
        assert lag.delivery.mode == lag.steady.mode == "plain"
    rows = lag_rows(result)
    assert "one event of 60 one-minute intervals" in rows[2]
    assert "one message of 20 events (one interval each)" in rows[3]
    assert all(row.endswith("x |") for row in rows[2:])
