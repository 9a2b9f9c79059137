"""Shed verification: how much load a shed took off the meter, measured against a baseline.

The caller feeds every meter reading (:meth:`ShedVerifier.add_reading`, ``None`` for a failed
read) and says when a shed starts and ends. The definitions, in the order they are used:

* **Shed start and end** are given by the caller: the integration starts a shed when it begins
  writing the overrides (the pass that ends with ``shed_started``) and ends it when the building
  stops shedding (``shed_ended``, the event's end), with the **release window** over which the
  points are then released in waves.
* **Measured**: from the start to the end of the release window, since points still held while
  the release goes on keep saving. The baseline is not fed before that.
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
  the release window ends (the stretch across its end is cut there, interpolated) and stays the
  last shed's value until the next shed starts. A shed that starts within the release window
  ends the measurement there.
* **Peak after release**: the highest reading from the shed's end to the end of the release
  window plus :data:`SETTLING` (5 minutes: HVAC plant that was held back ramps up within a few
  minutes of its release), the rebound the staggered release is meant to keep low. Unknown
  until a good reading falls in that span; a new shed starting ends the span.
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
# How long after the release window the peak after release is still looked for.
SETTLING: Final = timedelta(minutes=5)


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
    measuring: bool = True  # until the release window ends
    release_ends: datetime | None = None  # the end of the release window (once ended)
    peak_after_release_kw: float | None = None  # see the module's doc

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
        """Baseline minus the latest reading until the release ends; the average afterwards."""
        if self.baseline_kw is None:
            return None
        if self.measuring:
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
    release_ends: datetime | None = None
    closed: bool = False  # the release window is over: the values are frozen
    peak_span: tuple[datetime, datetime] | None = None  # where the peak after release is sought
    peak_kw: float | None = None


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
        if shed is not None and not shed.closed:
            self._integrate(shed, at, kw)
        elif kw is not None:
            self._baseline.add(at, kw)
        if shed is not None and kw is not None:
            self._peak(shed, at, kw)
        self._last_at, self._last_kw = at, kw

    @staticmethod
    def _peak(shed: _Shed, at: datetime, kw: float) -> None:
        """Keep the highest reading from the end to the release window's end plus settling."""
        if (span := shed.peak_span) is not None and span[0] <= at <= span[1]:
            shed.peak_kw = kw if shed.peak_kw is None else max(shed.peak_kw, kw)

    def _integrate(self, shed: _Shed, at: datetime, kw: float | None) -> None:
        """Add the stretch from the previous reading to this one, cut at the start and the end.

        A reading past the end of the release window closes the measurement.
        """
        until = shed.release_ends
        if until is not None and at >= until:
            shed.closed = True
        before, before_kw = self._last_at, self._last_kw
        if shed.baseline_kw is None or before is None or before_kw is None or kw is None:
            return
        since = max(before, shed.started)
        end_kw = kw
        if until is not None and at > until:  # interpolate the value at the end
            end_kw = before_kw + (kw - before_kw) * ((until - before) / (at - before))
            at = until
        if at <= since:
            return
        if before < shed.started:  # interpolate the value at the start
            before_kw += (kw - before_kw) * ((shed.started - before) / (at - before))
        saved = shed.baseline_kw - (before_kw + end_kw) / 2
        shed.energy_kwh += saved * ((at - since) / _HOUR)
        shed.measured += at - since

    def start(self, at: datetime, event_id: str | None) -> None:
        """A shed started at ``at`` for ``event_id``; one still measured ends there."""
        if (shed := self._shed) is not None:
            self.end(at)
            self._close(shed, min(at, shed.release_ends or at))
        self._shed = _Shed(event_id=event_id, started=at, baseline_kw=self._baseline.average(at))

    def end(self, at: datetime, *, release: timedelta = timedelta(0)) -> None:
        """The shed in progress (if any) ended at ``at``; its points are released by ``release``.

        Measuring goes on to the end of the release window; with none, the values are frozen.
        """
        shed = self._shed
        if shed is None or shed.ended is not None:
            return
        shed.ended = at
        shed.release_ends = at + max(release, timedelta(0))
        shed.peak_span = (at, shed.release_ends + SETTLING)
        if shed.release_ends <= at:
            self._close(shed, at)

    def _close(self, shed: _Shed, at: datetime) -> None:
        """Freeze the measurement at ``at``: the last reading before it holds until then."""
        if shed.closed:
            return
        shed.closed = True
        since, kw = self._last_at, self._last_kw
        if (
            shed.baseline_kw is not None
            and since is not None
            and kw is not None
            and shed.started <= since < at
        ):
            shed.energy_kwh += (shed.baseline_kw - kw) * ((at - since) / _HOUR)
            shed.measured += at - since

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
            measuring=not shed.closed,
            release_ends=shed.release_ends,
            peak_after_release_kw=shed.peak_kw,
        )
