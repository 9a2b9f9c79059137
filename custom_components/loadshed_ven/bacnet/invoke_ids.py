"""Invoke IDs that a controller does not mistake for repeats of earlier requests.

Controllers that detect duplicate requests keep their answer to each (client address, invoke
ID) for a while and answer a request repeating that pair from the cache, without executing it.
bacpypes3 numbers requests with one counter per application, for every destination together,
starting at 0. Two things then repeat a pair within seconds: a stack re-created on the same
address (a reload) counting from 0 again, and a pass sending more than 256 requests, so that the
counter wraps while one controller still remembers an ID.

:class:`InvokeIds` numbers requests per destination instead, never reuses an ID towards a
destination within :data:`REUSE_AFTER` seconds while another is free, and lives for the whole
process per local address, so a new stack goes on where the last one stopped.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Hashable
from typing import Final

INVOKE_IDS: Final = 256
# Longer than any duplicate-detection window seen (a few seconds) and than one transaction
# (APDU timeout x tries); an ID is reused earlier only towards a controller sent more than 256
# requests within it, and then the least recently used one.
REUSE_AFTER: Final = 30.0


class _Destination:
    """The IDs sent to one destination: the next to try and when each recent one was used."""

    def __init__(self, start: int) -> None:
        self.next = start
        self.used: dict[int, float] = {}  # invoke ID -> when, oldest first

    def take(self, now: float) -> int:
        while self.used and next(iter(self.used.values())) <= now - REUSE_AFTER:
            del self.used[next(iter(self.used))]  # forget what no controller still remembers
        if len(self.used) >= INVOKE_IDS:
            invoke_id = next(iter(self.used))  # all recent: the least recently used one
        else:
            invoke_id = self.next
            while invoke_id in self.used:
                invoke_id = (invoke_id + 1) % INVOKE_IDS
        self.used.pop(invoke_id, None)
        self.used[invoke_id] = now
        self.next = (invoke_id + 1) % INVOKE_IDS
        return invoke_id


class InvokeIds:
    """Hands out invoke IDs per destination (any hashable address)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        first: Callable[[], int] = lambda: random.randrange(INVOKE_IDS),  # noqa: S311
    ) -> None:
        """Start empty; ``first`` picks where each new destination starts counting.

        Random by default: a restarted process is then unlikely to repeat what the last one
        sent just before it stopped.
        """
        self._clock = clock
        self._first = first
        self._destinations: dict[Hashable, _Destination] = {}

    def take(self, destination: Hashable) -> int:
        """The invoke ID for the next confirmed request to ``destination``."""
        state = self._destinations.get(destination)
        if state is None:
            state = self._destinations[destination] = _Destination(self._first() % INVOKE_IDS)
        return state.take(self._clock())


# One numbering per local (IP, port), for the whole process: it outlives each stack.
_by_interface: dict[tuple[str, int], InvokeIds] = {}


def invoke_ids_for(key: tuple[str, int]) -> InvokeIds:
    """The invoke-ID numbering of the local address ``key`` (local IP, port)."""
    numbering = _by_interface.get(key)
    if numbering is None:
        numbering = _by_interface[key] = InvokeIds()
    return numbering
