"""The integration inside a real Home Assistant: set-up cost, and the way from an event to writes.

A Home Assistant instance, built as HA's bootstrap builds one (registries and config entries from
a temporary config directory whose ``custom_components`` links to this checkout's) but without
the default integrations, loads a config entry with the given points against the simulated
building, VTN and meter included. Then the simulated VTN sends level-1 events that start a few
seconds ahead; the VEN receives them through its ordinary polling, the integration arms its one
timer, and the simulated controllers record when each priority slot changes. That gives the delay
from the interval's start (and end) to the first and the last verified write (and release). Last,
in the same instance, the event-loop lag of large events (:mod:`bench.lag`).

Only Home Assistant's public interfaces are used: the entry is stored as HA stores entries,
set up and unloaded through ``hass.config_entries``, and observed through the entity registry,
states and the integration's documented bus events; never through its runtime objects.
"""

from __future__ import annotations

import asyncio
import gc
import json
import resource
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homeassistant import bootstrap, loader
from homeassistant.config_entries import ConfigEntries, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component

from custom_components.loadshed_ven.engine.points import OverridePoint

from .lag import DOMAIN, EVENT_RECEIVED, KnownEvents, LagCase, LagResult, measure_lag
from .loopwatch import Mode, SlowCallbacks, watch_callbacks
from .simclient import BuildingLayout, SimHost

INTEGRATION_DIR = Path(__file__).resolve().parents[1] / "custom_components" / DOMAIN
VEN_NAME = "bench-ven"
EVENT_LEAD_SECONDS = 4.0  # the VTN is polled every second: the event arrives well ahead
EVENT_SECONDS = 10  # long enough for the slowest shed of the default sizes
WAIT_SLACK_SECONDS = 30.0
# Minutes over which an event's end releases, in waves (the entry option). 0 releases at once,
# which keeps the release timings comparable from one version to the next.
RELEASE_WINDOW_MINUTES = 0

# The entry option of the release window, in minutes (the bench stays apart from the HA layer).
RELEASE_WINDOW_OPTION = "release_window"


class HaBenchError(RuntimeError):
    """The Home Assistant part could not be measured."""


@dataclass(kw_only=True)
class Timing:
    """Delays (s) from a boundary of the interval to the first and last slot change there."""

    first: float
    last: float
    changes: int


@dataclass(kw_only=True)
class HaResult:
    """What the Home Assistant part measured."""

    points: int
    release_window: int | None  # the entry's release window option (minutes), as HA loaded it
    setup_seconds: float
    setup_rss_bytes: int
    traced_bytes: int  # Python memory the entry holds once set up (tracemalloc, second set-up)
    received_ahead: float  # seconds between the event reaching the runtime and its start
    shed: Timing
    release: Timing
    shed_callbacks: SlowCallbacks  # timed directly, debug mode off
    release_callbacks: SlowCallbacks
    shed_debug: SlowCallbacks  # asyncio debug mode (a second event)
    release_debug: SlowCallbacks
    lag: list[LagResult]  # large events, after the cycles above
    # A release in waves: the option set to ``staggered_window`` minutes for one more event.
    staggered_window: int = 0
    staggered: Timing | None = None
    staggered_callbacks: SlowCallbacks | None = None


def entry_data(
    host: SimHost, layout: BuildingLayout, points: list[OverridePoint]
) -> dict[str, Any]:
    """Entry data as the config flow stores it (like the integration tests' ``entry_data``)."""
    return {
        "vtn_url": host.vtn_url,
        "ven_name": VEN_NAME,
        "interface": "127.0.0.1/32",
        "port": 0,  # ephemeral: a client on 47808 would answer itself on loopback
        "device_instance": 3990101,
        "routers": f"{layout.network}={layout.router_ip}",
        "point_mode": "bulk",
        "points": [
            {
                "address": p.address,
                "object_type": p.object_type,
                "instance": p.instance,
                "priority": p.priority,
                "values": list(p.values),
                "name": p.name,
            }
            for p in points
        ],
        "meter_source": "modbus",
        "host": "127.0.0.1",
        "modbus_port": host.meter_port,
        "unit_id": 1,
        "register": 17,
        "register_type": "input",
        "data_type": "float32",
        "word_order": "big",
        "scale": 1.0,
        "meter_interval": 10,
        "shed_level": 1,
        "normal_level": 0,
        "act_on_test_events": False,
    }


def rss_bytes() -> int:
    """The process's resident set size now."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize()


async def _wait(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    try:
        async with asyncio.timeout(seconds):
            while not predicate():  # noqa: ASYNC110 - the runtime offers no event to wait on
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise HaBenchError(f"timed out after {seconds:.0f} s waiting for {what}") from None


async def _changes_at(
    host: SimHost, boundary: float, expected: int, *, slack: float = 0.0
) -> Timing:
    """Wait until ``expected`` setpoint slots changed; delays are from ``boundary`` (epoch s).

    ``slack``: seconds more to wait, for changes spread on purpose (a release in waves).
    """
    deadline = time.monotonic() + WAIT_SLACK_SECONDS + slack + max(0.0, boundary - time.time())
    while True:
        first, last, count = await host.watched()
        if count >= expected and first is not None and last is not None:
            return Timing(first=first - boundary, last=last - boundary, changes=count)
        if time.monotonic() > deadline:
            raise HaBenchError(f"only {count} of {expected} slots changed")
        await asyncio.sleep(0.1)


@dataclass(kw_only=True)
class _Cycle:
    received_ahead: float
    shed: Timing
    release: Timing
    shed_callbacks: SlowCallbacks
    release_callbacks: SlowCallbacks


async def _event_cycle(
    hass: HomeAssistant,
    host: SimHost,
    points: int,
    *,
    mode: Mode,
    seconds: int,
    lead: float,
    release_slack: float = 0.0,
) -> _Cycle:
    """One level-1 event from the VTN, sent ahead of its start: shed at start, release at end."""
    received: list[float] = []
    unsubscribe = hass.bus.async_listen(EVENT_RECEIVED, lambda _: received.append(time.time()))
    await host.watch()
    _, start = await host.add_event(level=1, start_in=lead, duration=seconds)
    await asyncio.sleep(max(0.0, start - time.time() - 1.0))
    with watch_callbacks(mode) as shed_slow:
        shed = await _changes_at(host, start, points)
    unsubscribe()
    if not received:
        raise HaBenchError("the event never reached the integration")
    end = start + seconds
    await asyncio.sleep(max(0.0, end - time.time() - 1.0))
    await host.watch()
    with watch_callbacks(mode) as release_slow:
        release = await _changes_at(host, end, points, slack=release_slack)
    return _Cycle(
        received_ahead=start - received[0],
        shed=shed,
        release=release,
        shed_callbacks=shed_slow,
        release_callbacks=release_slow,
    )


def entry_options(release_window: int = RELEASE_WINDOW_MINUTES) -> dict[str, Any]:
    """Entry options as the options flow stores them; only what the benchmark sets."""
    return {RELEASE_WINDOW_OPTION: release_window}


def release_window_of(hass: HomeAssistant, entry_id: str) -> int | None:
    """The release window (minutes) in the loaded entry's options; None when not set."""
    entry = hass.config_entries.async_get_entry(entry_id)
    value = None if entry is None else entry.options.get(RELEASE_WINDOW_OPTION)
    return None if value is None else int(value)


def store_entry(
    config_dir: Path,
    entry_id: str,
    data: dict[str, Any],
    unique_id: str,
    options: dict[str, Any] | None = None,
) -> None:
    """Write the entry as Home Assistant stores config entries (its oldest storage format).

    HA migrates the file on load, so the same file fits every version; it is how an entry
    created by the config flow comes back after a restart.
    """
    entry = {
        "entry_id": entry_id,
        "domain": DOMAIN,
        "title": VEN_NAME,
        "data": data,
        "options": entry_options() if options is None else options,
        "source": "user",
        "unique_id": unique_id,
        "version": 1,
    }
    storage = config_dir / ".storage"
    storage.mkdir()
    (storage / "core.config_entries").write_text(
        json.dumps(
            {
                "version": 1,
                "minor_version": 1,
                "key": "core.config_entries",
                "data": {"entries": [entry]},
            }
        )
    )


@asynccontextmanager
async def home_assistant(config_dir: Path) -> AsyncIterator[HomeAssistant]:
    """A started Home Assistant on ``config_dir``, stopped on exit.

    The steps of ``bootstrap.async_from_config_dict`` up to the core integration; the default
    integrations (frontend, HTTP server, ...) are left out: the entry needs none of them.
    """
    custom = config_dir / "custom_components"
    custom.mkdir()
    (custom / DOMAIN).symlink_to(INTEGRATION_DIR, target_is_directory=True)
    hass = HomeAssistant(str(config_dir))
    hass.config.skip_pip = True
    loader.async_setup(hass)
    hass.config_entries = ConfigEntries(hass, {})
    await bootstrap.async_load_base_functionality(hass)
    try:
        if not await async_setup_component(hass, "homeassistant", {}):
            raise HaBenchError("Home Assistant's core integration did not set up")
        await hass.async_start()
        yield hass
    finally:
        await hass.async_stop()


async def setup_entry(hass: HomeAssistant, entry_id: str) -> float:
    """Set up the stored entry; seconds until it and its platforms are loaded."""
    began = time.perf_counter()
    ok = await hass.config_entries.async_setup(entry_id)
    await hass.async_block_till_done()
    entry = hass.config_entries.async_get_entry(entry_id)
    state = entry.state if entry is not None else None
    if not ok or state is not ConfigEntryState.LOADED:
        raise HaBenchError(f"set-up failed: {state}")
    return time.perf_counter() - began


async def unload_entry(hass: HomeAssistant, entry_id: str) -> None:
    """Unload the entry (its stack closes; the building keeps no override of ours)."""
    if not await hass.config_entries.async_unload(entry_id):
        raise HaBenchError("unload failed")
    await hass.async_block_till_done()


def _connected(hass: HomeAssistant, entry_id: str) -> Callable[[], bool]:
    """Whether the entry's "VTN connected" binary sensor is on."""
    registry = er.async_get(hass)
    ids = [
        e.entity_id
        for e in er.async_entries_for_config_entry(registry, entry_id)
        if e.domain == "binary_sensor" and e.translation_key == "vtn_connected"
    ]
    if len(ids) != 1:
        raise HaBenchError(f"expected one VTN connected sensor, found {ids}")

    def on() -> bool:
        state = hass.states.get(ids[0])
        return state is not None and state.state == "on"

    return on


async def measure_ha(
    host: SimHost,
    layout: BuildingLayout,
    points: list[OverridePoint],
    *,
    event_seconds: int = EVENT_SECONDS,
    lead_seconds: float = EVENT_LEAD_SECONDS,
    lag_cases: tuple[LagCase, ...] = (),
    lag_polls: int = 12,
    release_window: int = RELEASE_WINDOW_MINUTES,
    staggered_window: int = 0,
) -> HaResult:
    """Set up an entry with ``points`` in a fresh Home Assistant and time events through it.

    ``release_window`` is the entry's option (minutes); the release timings assume 0. With
    ``staggered_window`` (minutes), one more event is released in waves over that window.
    """
    entry_id = uuid.uuid4().hex
    with tempfile.TemporaryDirectory(prefix="loadshed-bench-") as config_dir:
        store_entry(
            Path(config_dir),
            entry_id,
            entry_data(host, layout, points),
            unique_id=f"{host.vtn_url.lower()}|{VEN_NAME}",
            options=entry_options(release_window),
        )
        async with home_assistant(Path(config_dir)) as hass:
            return await _measure(
                hass,
                entry_id,
                host,
                len(points),
                seconds=event_seconds,
                lead=lead_seconds,
                lag=(lag_cases, lag_polls),
                staggered_window=staggered_window,
            )


async def _measure(
    hass: HomeAssistant,
    entry_id: str,
    host: SimHost,
    points: int,
    *,
    seconds: int,
    lead: float,
    lag: tuple[tuple[LagCase, ...], int],
    staggered_window: int = 0,
) -> HaResult:
    gc.collect()
    rss_before = rss_bytes()
    setup_seconds = await setup_entry(hass, entry_id)
    window = release_window_of(hass, entry_id)
    gc.collect()
    setup_rss = rss_bytes() - rss_before
    await _wait(_connected(hass, entry_id), WAIT_SLACK_SECONDS, "the VEN to register")

    # Timings without asyncio debug mode (it slows every callback), then callbacks with it.
    plain = await _event_cycle(hass, host, points, mode="plain", seconds=seconds, lead=lead)
    debug = await _event_cycle(hass, host, points, mode="debug", seconds=seconds, lead=lead)
    staggered = (
        await _staggered_cycle(
            hass,
            entry_id,
            host,
            points,
            minutes=staggered_window,
            seconds=seconds,
            lead=lead,
        )
        if staggered_window > 0
        else None
    )
    cases, polls = lag
    with KnownEvents(hass, entry_id) as known:
        lags = [await measure_lag(host, known, case, polls=polls) for case in cases]

    await unload_entry(hass, entry_id)
    gc.collect()
    tracemalloc.start()
    try:
        traced_before = tracemalloc.get_traced_memory()[0]
        await setup_entry(hass, entry_id)
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - traced_before
    finally:
        tracemalloc.stop()
    await unload_entry(hass, entry_id)
    return HaResult(
        points=points,
        release_window=window,
        setup_seconds=setup_seconds,
        setup_rss_bytes=setup_rss,
        traced_bytes=traced,
        received_ahead=plain.received_ahead,
        shed=plain.shed,
        release=plain.release,
        shed_callbacks=plain.shed_callbacks,
        release_callbacks=plain.release_callbacks,
        shed_debug=debug.shed_callbacks,
        release_debug=debug.release_callbacks,
        lag=lags,
        staggered_window=staggered_window,
        staggered=None if staggered is None else staggered.release,
        staggered_callbacks=None if staggered is None else staggered.release_callbacks,
    )


async def _staggered_cycle(
    hass: HomeAssistant,
    entry_id: str,
    host: SimHost,
    points: int,
    *,
    minutes: int,
    seconds: int,
    lead: float,
) -> _Cycle:
    """One more event, released in waves: the option is changed live, as the options flow does."""
    entry = hass.config_entries.async_get_entry(entry_id)
    if entry is None:
        raise HaBenchError("the entry went away")
    before = dict(entry.options)
    hass.config_entries.async_update_entry(
        entry, options={**before, RELEASE_WINDOW_OPTION: minutes}
    )
    await hass.async_block_till_done()
    try:
        return await _event_cycle(
            hass,
            host,
            points,
            mode="plain",
            seconds=seconds,
            lead=lead,
            release_slack=minutes * 60.0,
        )
    finally:
        hass.config_entries.async_update_entry(entry, options=before)
        await hass.async_block_till_done()
