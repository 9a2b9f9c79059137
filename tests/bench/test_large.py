"""The campus-scale part of ``scripts/bench``, scaled down: its cell, its entry and its report rows.

The building runs in its own process on loopback addresses of this test process only.
"""

from __future__ import annotations

import os

from bench.__main__ import Options, run
from bench.large import LARGE_PER_DEVICE, measure_large_setup
from bench.layout import PRIORITY, Shape, ip_addresses, object_key, points_for, routed_addresses
from bench.report import large_rows, markdown
from bench.simclient import BuildingLayout, SimHost

_OCTET = os.getpid() % 200
BASE_IP = f"127.54.{_OCTET}.1"
ROUTER_IP = f"127.55.{_OCTET}.1"
POINTS = 30  # 3 controllers of 10 points, one of them routed


async def test_large_cell_runs_ten_points_per_controller(socket_enabled: None) -> None:
    options = Options(
        sizes=(),
        per_device=(1,),
        latencies=(0.020,),
        repeats=1,
        routed_share=0.3,
        loop_points=0,
        ha_points=0,
        large_points=POINTS,
        base_ip=BASE_IP,
        router_ip=ROUTER_IP,
    )
    result = await run(options)
    [cell] = result.cells
    assert (cell.cell.shape.points, cell.cell.shape.per_device) == (POINTS, LARGE_PER_DEVICE)
    assert cell.routed_points == LARGE_PER_DEVICE
    # Every point was found holding our value, then NULL, in the building (pass and baseline).
    assert cell.verified_written == cell.verified_released == POINTS + cell.baseline_sampled
    assert result.large_setup is None  # no Home Assistant asked for
    assert f"| {POINTS} | {LARGE_PER_DEVICE} | {LARGE_PER_DEVICE} | 20 |" in markdown(result)


async def test_large_entry_setup_reads_its_release_window(socket_enabled: None) -> None:
    layout = BuildingLayout(ip_devices=2, routed_devices=1, base_ip=BASE_IP, router_ip=ROUTER_IP)
    shape = Shape(points=POINTS, per_device=LARGE_PER_DEVICE, routed_share=0.3)
    async with SimHost() as host:
        await host.start(layout)
        await host.add_objects([*ip_addresses(layout), *routed_addresses(layout)], 9)
        points = points_for(shape, ip_addresses(layout), routed_addresses(layout))
        result = await measure_large_setup(host, layout, points, release_window=3)
        # Set up and unloaded: nothing of ours is left in the building.
        assert await host.slots([object_key(p) for p in points], PRIORITY) == [None] * POINTS
    assert result.points == POINTS
    assert result.release_window == 3  # read back from the loaded entry's options
    assert result.setup_seconds > 0
    assert result.setup_callbacks.mode == "plain"
    rows = large_rows(result)
    assert rows[2] == "| Release window (entry option, minutes) | 3 |"
