"""Staggered release: the points an event's end releases, split into waves over a window.

Releasing a whole building at once brings every load back in the same minute, and the meter
shows a rebound peak larger than the load that was shed. So at the end (or cancellation) of an
event the held points are released in waves spread over the release window:

* **Order.** Points are ordered by trunk (a routed ``network:MAC`` address's network; a BACnet/IP
  controller is a trunk of its own), then controller address, then point key (numbers in
  addresses compare as numbers). The order only depends on the points, never on timing, so the
  same points always make the same plan.
* **Dealing.** The ordered points are dealt round-robin to the waves, like cards: point ``i``
  goes to wave ``i mod n``. Each trunk and each controller is a contiguous run of the order, so
  every wave takes an equal slice (give or take one point) of every trunk and every controller:
  no wave floods one controller or one routed trunk, and every wave is the same size.
* **Timing.** Waves are :data:`WAVE_SPACING` (30 s) apart, the first at once and the last at the
  end of the window, so a window of *w* minutes gives up to ``2w + 1`` waves. With fewer points
  than that, there is one wave per point, spread evenly over the whole window. A window of 0
  releases everything at once (one wave).

This module is pure: the integration's level driver applies the plan wave by wave.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import isnan
from typing import Final

from .points import OverridePoint
from .work_pool import is_routed

# How far apart the waves are (at most; fewer points than waves spreads them further).
WAVE_SPACING: Final = timedelta(seconds=30)
# The longest window the options accept, in minutes.
MAX_RELEASE_MINUTES: Final = 60

_NUMBER: Final = re.compile(r"(\d+)")


@dataclass(frozen=True, slots=True)
class Wave:
    """The points released together, and when."""

    due: datetime
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReleasePlan:
    """The waves of one release, in due order (each with at least one point)."""

    waves: tuple[Wave, ...]

    @property
    def total(self) -> int:
        """How many points the plan releases."""
        return sum(len(wave.keys) for wave in self.waves)

    @property
    def end(self) -> datetime | None:
        """When the last wave is due; None for an empty plan."""
        return self.waves[-1].due if self.waves else None

    def due_count(self, now: datetime) -> int:
        """How many waves are due at ``now``."""
        return sum(1 for wave in self.waves if wave.due <= now)

    def released(self, now: datetime) -> int:
        """How many points the waves due at ``now`` release."""
        return sum(len(wave.keys) for wave in self.waves if wave.due <= now)

    def holding(self, now: datetime) -> frozenset[str]:
        """The keys whose wave is not due yet at ``now``: they keep their override."""
        return frozenset(key for wave in self.waves if wave.due > now for key in wave.keys)

    def next_due(self, now: datetime) -> datetime | None:
        """When the next wave after ``now`` is due; None when every wave is."""
        return next((wave.due for wave in self.waves if wave.due > now), None)


def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key under which numbers compare as numbers (``127.0.0.9`` before ``127.0.0.10``)."""
    return tuple((1, int(part)) if part.isdigit() else (0, part) for part in _NUMBER.split(text))


def trunk_of(address: str) -> str:
    """The trunk a point's controller is on: a routed address's network, else the address."""
    return address.split(":", 1)[0] if is_routed(address) else address


def release_order(points: Iterable[OverridePoint]) -> list[OverridePoint]:
    """The points in release order: by trunk, controller, then key (see the module's doc)."""
    return sorted(
        points,
        key=lambda p: (_natural(trunk_of(p.address)), _natural(p.address), _natural(p.key)),
    )


def wave_count(points: int, window: timedelta) -> int:
    """How many waves release ``points`` over ``window`` (0 for no points)."""
    if points <= 0:
        return 0
    if window <= timedelta(0):
        return 1
    return min(points, window // WAVE_SPACING + 1)


def plan_release(
    points: Iterable[OverridePoint], window: timedelta, start: datetime
) -> ReleasePlan:
    """Deal ``points`` in release order round-robin to waves from ``start`` over ``window``."""
    ordered = release_order(points)
    count = wave_count(len(ordered), window)
    if count == 0:
        return ReleasePlan(waves=())
    step = window / (count - 1) if count > 1 else timedelta(0)
    return ReleasePlan(
        waves=tuple(
            Wave(due=start + step * index, keys=tuple(p.key for p in ordered[index::count]))
            for index in range(count)
        )
    )


def release_window(minutes: object, default: int) -> timedelta:
    """The release window for an option value in minutes; ``default`` when unusable.

    Values are clamped to 0..:data:`MAX_RELEASE_MINUTES`: a stored value out of range must
    never keep points held for long, nor be negative.
    """
    if isinstance(minutes, bool) or not isinstance(minutes, int | float) or isnan(minutes):
        minutes = default
    return timedelta(minutes=min(max(float(minutes), 0.0), float(MAX_RELEASE_MINUTES)))
