"""The campus-scale entry: 5,000 points on 500 controllers, 10 each, a tenth of them routed.

The engine's shed and release-all of those points are a grid cell like the others
(:mod:`bench.grid`); here a fresh Home Assistant sets up one config entry with all of them, and
the time until the entry is loaded, the memory it adds and the event loop's longest callback
meanwhile are recorded. The entry's release window option is set (0 by default) and read back
from the loaded entry, so a run with staggered releases says so in its report.
"""

from __future__ import annotations

import gc
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from custom_components.loadshed_ven.engine.points import OverridePoint

from .ha import (
    RELEASE_WINDOW_MINUTES,
    VEN_NAME,
    entry_data,
    entry_options,
    home_assistant,
    release_window_of,
    rss_bytes,
    setup_entry,
    store_entry,
    unload_entry,
)
from .loopwatch import SlowCallbacks, watch_callbacks
from .simclient import BuildingLayout, SimHost

LARGE_POINTS = 5000
LARGE_PER_DEVICE = 10
LARGE_REPEATS = 3  # passes of the 5,000-point cell (each verifies every point in the building)


@dataclass(kw_only=True)
class LargeSetup:
    """Set-up of the large entry in Home Assistant."""

    points: int
    release_window: int | None  # the entry's release window option (minutes), as loaded
    setup_seconds: float
    setup_rss_bytes: int
    setup_callbacks: SlowCallbacks  # the loop's slow callbacks during set-up (timed directly)


async def measure_large_setup(
    host: SimHost,
    layout: BuildingLayout,
    points: list[OverridePoint],
    *,
    release_window: int = RELEASE_WINDOW_MINUTES,
) -> LargeSetup:
    """Set up (then unload) one entry with ``points`` in a fresh Home Assistant."""
    entry_id = uuid.uuid4().hex
    with tempfile.TemporaryDirectory(prefix="loadshed-bench-large-") as config_dir:
        store_entry(
            Path(config_dir),
            entry_id,
            entry_data(host, layout, points),
            unique_id=f"{host.vtn_url.lower()}|{VEN_NAME}",
            options=entry_options(release_window),
        )
        async with home_assistant(Path(config_dir)) as hass:
            gc.collect()
            rss_before = rss_bytes()
            with watch_callbacks("plain") as slow:
                seconds = await setup_entry(hass, entry_id)
            gc.collect()
            added = rss_bytes() - rss_before
            window = release_window_of(hass, entry_id)
            await unload_entry(hass, entry_id)
    return LargeSetup(
        points=len(points),
        release_window=window,
        setup_seconds=seconds,
        setup_rss_bytes=added,
        setup_callbacks=slow,
    )
