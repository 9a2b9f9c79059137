"""The longest event-loop callbacks while something runs, two ways, and garbage-collector pauses.

* ``debug``: asyncio's own debug mode times every callback and logs those slower than
  ``loop.slow_callback_duration`` ("Executing <Handle ...> took 0.123 seconds"); the watcher sets
  a low threshold and collects the records. Debug mode itself makes some work much slower
  (every task created records where it was created), so its numbers are an upper bound.
* ``plain``: debug mode stays off and each callback is timed directly around ``Handle._run``,
  which is what every callback, task step and timer runs through.

In both modes the collector's pauses are recorded too: a full collection runs inside whatever
callback happens to allocate at that moment. In ``plain`` mode a sampling thread also records
where the loop's thread is while one callback has run longer than ``STALL_SECONDS``: the
stacks seen most often name the code that dominates a stall.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import gc
import logging
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

DEFAULT_THRESHOLD = 0.005  # seconds; faster callbacks are not recorded
STALL_SECONDS = 0.05  # a callback running this long gets its stack sampled
SAMPLE_SECONDS = 0.01
STACK_FRAMES = 6  # innermost frames kept per sample
type Mode = Literal["debug", "plain", "off"]


@dataclass(kw_only=True)
class SlowCallbacks:
    """Callbacks slower than ``threshold`` seen while watching, and garbage-collector pauses."""

    mode: Mode
    threshold: float
    seen: list[tuple[float, str]] = field(default_factory=list)  # (seconds, what ran)
    gc_pauses: list[float] = field(default_factory=list)  # seconds, every collection
    # "file:line function" frames, innermost last, joined by " > " -> samples in stalls
    stall_stacks: dict[str, int] = field(default_factory=dict)

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

    @property
    def top_stall_stack(self) -> str:
        """The stack sampled most often during stalls ("" when none was sampled)."""
        if not self.stall_stacks:
            return ""
        return max(self.stall_stacks.items(), key=lambda item: item[1])[0]

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


def _frames(frame: Any) -> str:
    stack = traceback.extract_stack(frame)[-STACK_FRAMES:]
    return " > ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in stack)


@contextmanager
def _timed_handles(result: SlowCallbacks) -> Iterator[None]:
    original: Callable[[asyncio.Handle], None] = asyncio.events.Handle._run
    threshold = result.threshold
    loop_thread = threading.get_ident()
    running: list[float] = []  # start of the callback running now, if any
    stop = threading.Event()
    samples: Counter[str] = Counter()

    def timed_run(handle: asyncio.Handle) -> None:
        began = time.perf_counter()
        running.append(began)
        try:
            original(handle)
        finally:
            running.pop()
        took = time.perf_counter() - began
        if took > threshold:
            result.seen.append((took, repr(handle)))

    def sample() -> None:
        while not stop.wait(SAMPLE_SECONDS):
            if running and time.perf_counter() - running[0] > STALL_SECONDS:
                frame = sys._current_frames().get(loop_thread)
                if frame is not None:
                    samples[_frames(frame)] += 1

    sampler = threading.Thread(target=sample, name="loopwatch-sampler", daemon=True)
    setattr(asyncio.events.Handle, "_run", timed_run)  # noqa: B010 - typed as a method
    sampler.start()
    try:
        yield
    finally:
        setattr(asyncio.events.Handle, "_run", original)  # noqa: B010
        stop.set()
        sampler.join()
        result.stall_stacks.update(samples)


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
