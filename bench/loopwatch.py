"""The longest event-loop callbacks while something runs, two ways, and garbage-collector pauses.

* ``debug``: asyncio's own debug mode times every callback and logs those slower than
  ``loop.slow_callback_duration`` ("Executing <Handle ...> took 0.123 seconds"); the watcher sets
  a low threshold and collects the records. Debug mode itself makes some work much slower
  (every task created records where it was created), so its numbers are an upper bound.
* ``plain``: debug mode stays off and each callback is timed directly around ``Handle._run``,
  which is what every callback, task step and timer runs through.

In both modes the collector's pauses are recorded too: a full collection runs inside whatever
callback happens to allocate at that moment.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import gc
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

DEFAULT_THRESHOLD = 0.005  # seconds; faster callbacks are not recorded
type Mode = Literal["debug", "plain", "off"]


@dataclass(kw_only=True)
class SlowCallbacks:
    """Callbacks slower than ``threshold`` seen while watching, and garbage-collector pauses."""

    mode: Mode
    threshold: float
    seen: list[tuple[float, str]] = field(default_factory=list)  # (seconds, what ran)
    gc_pauses: list[float] = field(default_factory=list)  # seconds, every collection

    @property
    def longest(self) -> float | None:
        """The slowest callback in seconds; None when every one was below the threshold."""
        return max((s for s, _ in self.seen), default=None)

    @property
    def longest_what(self) -> str:
        """A short description of the slowest callback."""
        return max(self.seen)[1][:160] if self.seen else ""

    @property
    def longest_gc(self) -> float:
        """The longest garbage-collector pause in seconds (0 when none ran)."""
        return max(self.gc_pauses, default=0.0)

    def over(self, limit: float) -> int:
        """How many callbacks took longer than ``limit`` seconds."""
        return sum(1 for s, _ in self.seen if s > limit)


class _DebugLog(logging.Handler):
    def __init__(self, result: SlowCallbacks) -> None:
        super().__init__(logging.WARNING)
        self._result = result

    def emit(self, record: logging.LogRecord) -> None:
        # asyncio.base_events: logger.warning('Executing %s took %.3f seconds', handle, dt)
        if record.msg != "Executing %s took %.3f seconds" or not isinstance(record.args, tuple):
            return
        what, seconds = record.args
        if isinstance(seconds, float):
            self._result.seen.append((seconds, str(what)))


@contextmanager
def _gc_pauses(result: SlowCallbacks) -> Iterator[None]:
    started = 0.0

    def on_gc(phase: str, _info: dict[str, Any]) -> None:
        nonlocal started
        if phase == "start":
            started = time.perf_counter()
        else:
            result.gc_pauses.append(time.perf_counter() - started)

    gc.callbacks.append(on_gc)
    try:
        yield
    finally:
        gc.callbacks.remove(on_gc)


@contextmanager
def _debug_mode(result: SlowCallbacks) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    logger = logging.getLogger("asyncio")
    collector = _DebugLog(result)
    was = (loop.get_debug(), loop.slow_callback_duration, logger.propagate)
    logger.addHandler(collector)
    logger.propagate = False  # collected, not printed
    loop.slow_callback_duration = result.threshold
    loop.set_debug(True)
    try:
        yield
    finally:
        loop.set_debug(was[0])
        loop.slow_callback_duration = was[1]
        logger.removeHandler(collector)
        logger.propagate = was[2]


@contextmanager
def _timed_handles(result: SlowCallbacks) -> Iterator[None]:
    original: Callable[[asyncio.Handle], None] = asyncio.events.Handle._run
    threshold = result.threshold

    def timed_run(handle: asyncio.Handle) -> None:
        began = time.perf_counter()
        original(handle)
        took = time.perf_counter() - began
        if took > threshold:
            result.seen.append((took, repr(handle)))

    setattr(asyncio.events.Handle, "_run", timed_run)  # noqa: B010 - typed as a method
    try:
        yield
    finally:
        setattr(asyncio.events.Handle, "_run", original)  # noqa: B010


@contextmanager
def watch_callbacks(
    mode: Mode = "debug", threshold: float = DEFAULT_THRESHOLD
) -> Iterator[SlowCallbacks]:
    """Collect callbacks slower than ``threshold`` (see the module docstring for ``mode``).

    ``off`` changes nothing and collects nothing.
    """
    result = SlowCallbacks(mode=mode, threshold=threshold)
    if mode == "off":
        yield result
        return
    watcher = _debug_mode(result) if mode == "debug" else _timed_handles(result)
    with _gc_pauses(result), watcher:
        yield result
