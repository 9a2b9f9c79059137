"""The resolved level of many events over time, as one step function.

A :class:`Timeline` holds sorted breakpoints; from each breakpoint until the next one a single
:data:`Rank` (or nothing) drives the level. The smallest rank wins wherever events overlap, and
adjacent pieces never hold the same rank, so every breakpoint is a change: "what is in force at
``t``" and "when does that change next" are one bisection each.

Building it from scratch is a sweep over every segment boundary with a heap of the active ranks,
O(S log S) for S segments in all. Adding one event touches only the breakpoints inside its own
span, which keeps a message of many new events near-linear instead of rebuilding per event.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from datetime import datetime

type Rank = tuple[int, int, datetime, str]
"""``(-level, priority rank, first start, event id)``: the smallest drives the level."""
type Piece = tuple[datetime, datetime | None, Rank]
"""``(start, end or None when open-ended, rank)``: one segment of one event."""


def _better(a: Rank | None, b: Rank | None) -> Rank | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


class Timeline:
    """A step function from time to the rank in force (``None``: no event)."""

    def __init__(self) -> None:
        """Start with nothing in force at any time."""
        self._times: list[datetime] = []
        self._ranks: list[Rank | None] = []

    def __len__(self) -> int:
        """The number of breakpoints (changes of the driving rank)."""
        return len(self._times)

    def rank_at(self, t: datetime) -> Rank | None:
        """The rank in force at ``t``."""
        index = bisect_right(self._times, t) - 1
        return None if index < 0 else self._ranks[index]

    def next_change_after(self, t: datetime) -> datetime | None:
        """The first breakpoint after ``t``, or ``None``."""
        index = bisect_right(self._times, t)
        return self._times[index] if index < len(self._times) else None

    def rebuild(self, pieces: Iterable[Piece]) -> None:
        """Replace everything by the pointwise best of ``pieces``."""
        starts: dict[datetime, list[Rank]] = {}
        ends: dict[datetime, list[Rank]] = {}
        for start, end, rank in pieces:
            if end is not None and end <= start:
                continue  # empty: never in force
            starts.setdefault(start, []).append(rank)
            if end is not None:
                ends.setdefault(end, []).append(rank)
        times: list[datetime] = []
        ranks: list[Rank | None] = []
        active: set[Rank] = set()
        heap: list[Rank] = []  # may hold ranks no longer active: dropped when they surface
        previous: Rank | None = None
        for t in sorted(starts.keys() | ends.keys()):
            for rank in ends.get(t, ()):
                active.discard(rank)
            for rank in starts.get(t, ()):
                active.add(rank)
                heapq.heappush(heap, rank)
            while heap and heap[0] not in active:
                heapq.heappop(heap)
            best = heap[0] if heap else None
            if best != previous:
                times.append(t)
                ranks.append(best)
                previous = best
        self._times, self._ranks = times, ranks

    def add(self, pieces: Sequence[Piece]) -> None:
        """Lay one event's sorted, disjoint ``pieces`` over the timeline."""
        if not pieces:
            return
        low, high = pieces[0][0], pieces[-1][1]
        times, ranks = self._times, self._ranks
        left = bisect_left(times, low)
        right = len(times) if high is None else bisect_right(times, high)
        before = ranks[left - 1] if left > 0 else None
        after = ranks[right - 1] if right > 0 else None  # in force at ``high`` until now
        old = iter(zip(times[left:right], ranks[left:right], strict=True))
        candidates = {low, *times[left:right]}
        for start, end, _ in pieces:
            candidates.add(start)
            if end is not None:
                candidates.add(end)
        if high is not None:
            candidates.discard(high)
        new_times: list[datetime] = []
        new_ranks: list[Rank | None] = []
        current_old, current = before, 0
        pending = next(old, None)
        previous = before
        for t in sorted(candidates):
            while pending is not None and pending[0] <= t:
                current_old = pending[1]
                pending = next(old, None)
            while current < len(pieces) and _ends_by(pieces[current], t):
                current += 1
            mine = pieces[current][2] if current < len(pieces) and pieces[current][0] <= t else None
            best = _better(current_old, mine)
            if best != previous:
                new_times.append(t)
                new_ranks.append(best)
                previous = best
        if high is not None and after != previous:
            new_times.append(high)
            new_ranks.append(after)
        times[left:right] = new_times
        ranks[left:right] = new_ranks


def _ends_by(piece: Piece, t: datetime) -> bool:
    end = piece[1]
    return end is not None and end <= t
