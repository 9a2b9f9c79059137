"""Grid energy (kWh imported) from the building meter, for an energy dashboard.

Two sources, one rule: the total never decreases and an implausible reading is never counted.

- :class:`PowerIntegrator` integrates kW readings over time (trapezoidal). Only import counts:
  negative kW (export to the grid) adds nothing, and a segment that crosses zero adds only its
  positive part. A gap longer than ``max_gap`` between two good readings (failed or implausible
  readings, a restart) is not integrated: the energy of an unknown interval is never guessed.
- :class:`CounterTracker` follows a meter's own energy register and adds up its increases. A
  reading that breaks continuity (a decrease, or more than the meter's maximum power could add
  in the time elapsed) is not counted; once the next reading continues plausibly from it, the
  tracker carries on from there (a replaced or reset meter) without counting the jump.

Both are plain state that a sensor stores across restarts (:meth:`as_dict` / ``from_dict``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Self

_HOUR = 3600.0
# Slack on "what the meter's maximum power could add": clocks and poll timing are not exact.
_RATE_MARGIN = 1.05


def _seconds(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


def import_kwh(kw_start: float, kw_end: float, hours: float) -> float:
    """Energy imported over ``hours`` with power moving linearly from ``kw_start`` to ``kw_end``.

    Only the part above zero counts: for a segment crossing zero that is the triangle up to the
    crossing, ``kw_pos² / (2 · (kw_pos - kw_neg)) · hours``.
    """
    if kw_start >= 0 and kw_end >= 0:
        return (kw_start + kw_end) / 2 * hours
    if kw_start <= 0 and kw_end <= 0:
        return 0.0
    high, low = max(kw_start, kw_end), min(kw_start, kw_end)
    return high * high / (2 * (high - low)) * hours


def _usable(value: float | None, limit: float) -> bool:
    return value is not None and math.isfinite(value) and abs(value) <= limit


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _parse_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(kw_only=True)
class PowerIntegrator:
    """kWh imported, integrated from kW readings."""

    max_gap: timedelta
    max_kw: float = math.inf  # readings beyond ±max_kw are implausible: a gap, never counted
    total_kwh: float = 0.0
    last_at: datetime | None = None
    last_kw: float | None = None

    def add(self, at: datetime, kw: float | None) -> float:
        """Add a reading (None: the meter could not be read); return the kWh it added."""
        if not _usable(kw, self.max_kw):
            self.last_at = self.last_kw = None  # a gap: nothing is integrated across it
            return 0.0
        assert kw is not None  # for mypy: _usable checked it
        added = 0.0
        if self.last_at is not None and self.last_kw is not None:
            elapsed = _seconds(self.last_at, at)
            if elapsed <= 0:
                return 0.0  # same instant, or a clock that went back: keep the earlier reading
            if elapsed <= self.max_gap.total_seconds():
                added = import_kwh(self.last_kw, kw, elapsed / _HOUR)
                self.total_kwh += added
        self.last_at, self.last_kw = at, kw
        return added

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready state, for a restart."""
        return {
            "total_kwh": self.total_kwh,
            "last_at": None if self.last_at is None else self.last_at.isoformat(),
            "last_kw": self.last_kw,
        }

    @classmethod
    def from_dict(cls, data: Any, *, max_gap: timedelta, max_kw: float = math.inf) -> Self:
        """Restore :meth:`as_dict`'s state; anything unreadable starts from zero."""
        restored = cls(max_gap=max_gap, max_kw=max_kw)
        if not isinstance(data, dict):
            return restored
        total = _parse_number(data.get("total_kwh"))
        if total is None or total < 0:
            return restored
        restored.total_kwh = total
        last_at, last_kw = _parse_time(data.get("last_at")), _parse_number(data.get("last_kw"))
        if last_at is not None and last_kw is not None:
            restored.last_at, restored.last_kw = last_at, last_kw
        return restored


@dataclass(frozen=True, slots=True)
class _Reading:
    at: datetime
    kwh: float


@dataclass(kw_only=True)
class CounterTracker:
    """kWh imported, added up from a meter's energy register."""

    max_kw: float  # the most the building can draw: bounds a plausible increase
    total_kwh: float | None = None  # None until the first good reading
    last: _Reading | None = None
    _candidate: _Reading | None = field(default=None, repr=False)

    def _plausible_step(self, start: _Reading, at: datetime, kwh: float) -> bool:
        hours = max(_seconds(start.at, at), 0.0) / _HOUR
        return 0 <= kwh - start.kwh <= self.max_kw * hours * _RATE_MARGIN

    def add(self, at: datetime, kwh: float | None) -> float:
        """Add a register reading (None: it could not be read); return the kWh it added."""
        if kwh is None or not math.isfinite(kwh) or kwh < 0:
            return 0.0
        reading = _Reading(at, kwh)
        if self.last is None:
            self.last = reading
            if self.total_kwh is None:
                self.total_kwh = kwh  # the first reading ever: show what the meter shows
            return 0.0
        if self._plausible_step(self.last, at, kwh):
            added = kwh - self.last.kwh
            self.total_kwh = (self.total_kwh or 0.0) + added
            self.last, self._candidate = reading, None
            return added
        # A discontinuity is never counted. Followed plausibly by the next reading, it was the
        # meter starting over (replaced, reset): carry on from there.
        candidate, self._candidate = self._candidate, reading
        if candidate is None or not self._plausible_step(candidate, at, kwh):
            return 0.0
        added = kwh - candidate.kwh
        self.total_kwh = (self.total_kwh or 0.0) + added
        self.last, self._candidate = reading, None
        return added

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready state, for a restart."""
        return {
            "total_kwh": self.total_kwh,
            "last_at": None if self.last is None else self.last.at.isoformat(),
            "last_kwh": None if self.last is None else self.last.kwh,
        }

    @classmethod
    def from_dict(cls, data: Any, *, max_kw: float) -> Self:
        """Restore :meth:`as_dict`'s state; anything unreadable starts afresh."""
        restored = cls(max_kw=max_kw)
        if not isinstance(data, dict):
            return restored
        total = _parse_number(data.get("total_kwh"))
        if total is None or total < 0:
            return restored
        restored.total_kwh = total
        last_at, last_kwh = _parse_time(data.get("last_at")), _parse_number(data.get("last_kwh"))
        if last_at is not None and last_kwh is not None and last_kwh >= 0:
            # Energy the meter counted while Home Assistant was down is then counted too.
            restored.last = _Reading(last_at, last_kwh)
        return restored
