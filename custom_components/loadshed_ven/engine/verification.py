"""Shed verification: how much load a shed took off the meter, measured against a baseline.

The caller feeds every meter reading (:meth:`ShedVerifier.add_reading`, ``None`` for a failed
read) and says when a shed starts and ends. The definitions, in the order they are used:

* **Shed start and end** are given by the caller: the integration starts a shed when it begins
  writing the overrides (the pass that ends with ``shed_started``) and ends it once they are
  released (``shed_ended``), so the whole time the building is affected is measured.
* **Baseline**: the average of the readings taken in the ``window`` before the start (the meter is
  read at a fixed interval, so this is the time average too). Readings taken while a shed was in
  progress belong to no baseline. Readings are kept in :data:`BUCKETS` sums over the window, so
  memory stays bounded whatever the read interval; the oldest bucket may reach up to 1/240 of the
  window further back. Without any reading in the window the baseline is unknown, and so is every
  value derived from it: nothing is made up.
* **kW saved** while shedding: the baseline minus the latest reading (unknown while the meter is
  unavailable). After the shed: the shed's average, energy avoided divided by the measured time.
* **Energy avoided**: the integral of (baseline - kW) over the shed, by the trapezoid rule between
  consecutive readings. The stretch from the reading before the start to the first reading in
  the shed is cut at the start (the value there is interpolated); after the last reading of the
  shed, that reading holds until the end. A failed read breaks the curve: the stretches on either
  side of it count as not measured. Unknown until some time has been measured. It is frozen when
  the shed ends and stays the last shed's value until the next shed starts.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

# The baseline window is kept as this many running sums (bounded memory at any read interval).
BUCKETS: Final = 240
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR: Final = timedelta(hours=1)


@dataclass(frozen=True, kw_only=True)
class ShedVerification:
    """What the current (or last) shed saved, as far as the meter shows."""

    event_id: str | None
    started: datetime
    ended: datetime | None  # None while the shed is in progress
    baseline_kw: float | None
    latest_kw: float | None  # the latest reading; None while the meter is unavailable
    energy_kwh: float | None  # None without a baseline or before any time was measured
    measured: timedelta  # how much of the shed the meter's readings cover

    @property
    def shedding(self) -> bool:
        """True while the shed is in progress."""
        return self.ended is None

    @property
    def average_kw_saved(self) -> float | None:
        """Energy avoided over the measured time, in kW."""
        if self.energy_kwh is None:
            return None
        return self.energy_kwh / (self.measured / _HOUR)

    @property
    def kw_saved(self) -> float | None:
        """Baseline minus the latest reading while shedding; the shed's average afterwards."""
        if self.baseline_kw is None:
            return None
        if self.shedding:
            return None if self.latest_kw is None else self.baseline_kw - self.latest_kw
        return self.average_kw_saved


class _BaselineWindow:
    """Sum and count of the readings per bucket, over the last ``window``."""

    def __init__(self, window: timedelta) -> None:
        if window <= timedelta(0):
            raise ValueError("the baseline window must be positive")
        self._window = window
        self._width = window / BUCKETS
        self._buckets: deque[list[float]] = deque()  # [index, sum, count], oldest first

    def _index(self, at: datetime) -> int:
        return (at - _EPOCH) // self._width

    def add(self, at: datetime, kw: float) -> None:
        index = self._index(at)
        if self._buckets and self._buckets[-1][0] == index:
            bucket = self._buckets[-1]
            bucket[1] += kw
            bucket[2] += 1
        else:
            self._buckets.append([index, kw, 1])
        while self._buckets[0][0] < index - BUCKETS:
            self._buckets.popleft()

    def average(self, until: datetime) -> float | None:
        first = self._index(until - self._window)
        total = count = 0.0
        for index, bucket_sum, bucket_count in self._buckets:
            if index >= first:
                total += bucket_sum
                count += bucket_count
        return total / count if count else None

    def resized(self, window: timedelta) -> _BaselineWindow:
        """The same readings over ``window``, each old bucket moved whole to the new one's.

        Readings older than the old window are gone already: a longer window fills up as the
        meter is read.
        """
        resized = _BaselineWindow(window)
        for index, bucket_sum, bucket_count in self._buckets:
            new_index = resized._index(_EPOCH + index * self._width)
            if resized._buckets and resized._buckets[-1][0] == new_index:
                resized._buckets[-1][1] += bucket_sum
                resized._buckets[-1][2] += bucket_count
            else:
                resized._buckets.append([new_index, bucket_sum, bucket_count])
        if resized._buckets:
            last = resized._buckets[-1][0]
            while resized._buckets[0][0] < last - BUCKETS:
                resized._buckets.popleft()
        return resized

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass(kw_only=True)
class _Shed:
    event_id: str | None
    started: datetime
    baseline_kw: float | None
    ended: datetime | None = None
    energy_kwh: float = 0.0
    measured: timedelta = timedelta(0)


class ShedVerifier:
    """Follows the meter and measures each shed against its baseline."""

    def __init__(self, window: timedelta) -> None:
        """Average the baseline over ``window`` before each shed."""
        self.window = window
        self._baseline = _BaselineWindow(window)
        # The latest reading: when, and the kW (None for a failed read).
        self._last_at: datetime | None = None
        self._last_kw: float | None = None
        self._shed: _Shed | None = None

    def set_window(self, window: timedelta) -> None:
        """Average later baselines over ``window``; a shed in progress keeps its baseline.

        The readings already kept are carried over (each within one old bucket of its time).
        """
        self._baseline = self._baseline.resized(window)
        self.window = window

    @property
    def shedding(self) -> bool:
        """True between :meth:`start` and :meth:`end`."""
        return self._shed is not None and self._shed.ended is None

    @property
    def buckets(self) -> int:
        """How many baseline buckets are kept (at most ``BUCKETS + 1``)."""
        return len(self._baseline)

    def add_reading(self, at: datetime, kw: float | None) -> None:
        """A meter reading in kW taken at ``at`` (aware); ``None`` when the read failed.

        A reading older than the previous one (the clock went back) is ignored.
        """
        if self._last_at is not None and at < self._last_at:
            return
        shed = self._shed
        if shed is not None and shed.ended is None:
            self._integrate(shed, at, kw)
        elif kw is not None:
            self._baseline.add(at, kw)
        self._last_at, self._last_kw = at, kw

    def _integrate(self, shed: _Shed, at: datetime, kw: float | None) -> None:
        """Add the stretch from the previous reading to this one, cut at the shed's start."""
        before, before_kw = self._last_at, self._last_kw
        if shed.baseline_kw is None or before is None or before_kw is None or kw is None:
            return
        since = max(before, shed.started)
        if at <= since:
            return
        if before < shed.started:  # interpolate the value at the start
            before_kw += (kw - before_kw) * ((shed.started - before) / (at - before))
        saved = shed.baseline_kw - (before_kw + kw) / 2
        shed.energy_kwh += saved * ((at - since) / _HOUR)
        shed.measured += at - since

    def start(self, at: datetime, event_id: str | None) -> None:
        """A shed started at ``at`` for ``event_id``; a shed still in progress ends there."""
        if self._shed is not None:
            self.end(at)
        self._shed = _Shed(event_id=event_id, started=at, baseline_kw=self._baseline.average(at))

    def end(self, at: datetime) -> None:
        """The shed in progress (if any) ended at ``at``: its values are frozen."""
        shed = self._shed
        if shed is None or shed.ended is not None:
            return
        # The last reading taken during the shed holds until the end.
        since, kw = self._last_at, self._last_kw
        if (
            shed.baseline_kw is not None
            and since is not None
            and kw is not None
            and shed.started <= since < at
        ):
            shed.energy_kwh += (shed.baseline_kw - kw) * ((at - since) / _HOUR)
            shed.measured += at - since
        shed.ended = at

    def current(self) -> ShedVerification | None:
        """The shed in progress, else the last one; None before the first shed."""
        shed = self._shed
        if shed is None:
            return None
        measured = shed.baseline_kw is not None and shed.measured > timedelta(0)
        return ShedVerification(
            event_id=shed.event_id,
            started=shed.started,
            ended=shed.ended,
            baseline_kw=shed.baseline_kw,
            latest_kw=self._last_kw,
            energy_kwh=shed.energy_kwh if measured else None,
            measured=shed.measured,
        )
