"""Event-loop lag of large but valid VTN events inside Home Assistant.

Each case queues events at the simulated VTN: either one event of many one-minute intervals
(a day of one-minute prices sent as SIMPLE levels) or many one-interval events in one message.
They start well after the measurement, so no controller is written and every millisecond measured
is the VEN's own: receiving, parsing and scheduling them. Callbacks are timed directly (asyncio
debug mode off) in two windows: while the message is delivered and handled (with the poll that
follows, which carries the VEN's opt responses), and over the next polls with the events known,
long enough to include openleadr's 10-second event-status job. Afterwards the events are
withdrawn at the VTN and the VEN's implied cancellation is awaited.

Which events the integration knows is read from its documented bus events (received, modified,
cancelled), not from its internals.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self

from homeassistant.core import Event, HomeAssistant, callback

from .loopwatch import SlowCallbacks, watch_callbacks
from .simclient import SimHost

INTERVAL_SECONDS = 60
START_IN_SECONDS = 3600.0  # far beyond the measurement: nothing is shed meanwhile
POLL_SECONDS = 1.0  # the simulated VTN asks for a poll every second
DELIVERY_TIMEOUT = 120.0

# The integration's domain and its bus events for automations (a documented interface).
DOMAIN: Final = "loadshed_ven"
EVENT_RECEIVED: Final = f"{DOMAIN}_event_received"
EVENT_MODIFIED: Final = f"{DOMAIN}_event_modified"
EVENT_CANCELLED: Final = f"{DOMAIN}_event_cancelled"


class KnownEvents:
    """The VTN events a config entry holds, as its bus events tell (a context manager)."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Prepare; listening starts on entering the context."""
        self._hass = hass
        self._entry_id = entry_id
        self.ids: set[str] = set()
        self._unsubscribe: list[Callable[[], None]] = []

    @callback
    def _on_event(self, event: Event) -> None:
        data = event.data
        if data.get("config_entry_id") != self._entry_id or "event_id" not in data:
            return
        if event.event_type == EVENT_CANCELLED:
            self.ids.discard(data["event_id"])
        else:
            self.ids.add(data["event_id"])

    def __enter__(self) -> Self:
        """Start listening."""
        self._unsubscribe = [
            self._hass.bus.async_listen(kind, self._on_event)
            for kind in (EVENT_RECEIVED, EVENT_MODIFIED, EVENT_CANCELLED)
        ]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop listening."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []


@dataclass(frozen=True, kw_only=True)
class LagCase:
    """``events`` events of ``intervals`` one-minute intervals each, in one message."""

    events: int
    intervals: int

    @property
    def label(self) -> str:
        """How the report names the case."""
        if self.events == 1:
            return f"one event of {self.intervals:,} one-minute intervals"
        per = "one interval" if self.intervals == 1 else f"{self.intervals:,} intervals"
        return f"one message of {self.events:,} events ({per} each)"


DEFAULT_CASES = (LagCase(events=1, intervals=1440), LagCase(events=1000, intervals=1))


@dataclass(kw_only=True)
class LagResult:
    """What one case measured."""

    case: LagCase
    known: int  # events the integration held at the end of the delivery window
    delivery_seconds: float  # from queueing at the VTN to the integration knowing every event
    delivered: bool
    polls: int  # polls in the steady window
    delivery: SlowCallbacks
    steady: SlowCallbacks


def _known(known: KnownEvents, event_ids: list[str]) -> int:
    return sum(1 for event_id in event_ids if event_id in known.ids)


async def _until(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def measure_lag(host: SimHost, held: KnownEvents, case: LagCase, *, polls: int) -> LagResult:
    """Deliver ``case`` to the VEN and time the loop's callbacks then and over ``polls`` polls."""
    began = time.perf_counter()
    with watch_callbacks("plain") as delivery:
        event_ids = await host.add_events(
            case.events, case.intervals, INTERVAL_SECONDS, START_IN_SECONDS
        )
        delivered = await _until(
            lambda: _known(held, event_ids) == len(event_ids), DELIVERY_TIMEOUT
        )
        took = time.perf_counter() - began
        known = _known(held, event_ids)
        await asyncio.sleep(POLL_SECONDS)  # the poll that answers the VTN's opt requests
    with watch_callbacks("plain") as steady:
        await asyncio.sleep(polls * POLL_SECONDS)
    await host.remove_events(event_ids)
    await _until(lambda: _known(held, event_ids) == 0, DELIVERY_TIMEOUT)
    return LagResult(
        case=case,
        known=known,
        delivery_seconds=took,
        delivered=delivered,
        polls=polls,
        delivery=delivery,
        steady=steady,
    )
