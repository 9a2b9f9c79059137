"""What one VTN event asks for: a frozen plan of level segments.

Segments of a plan are sorted by start and never overlap (``parse_event`` guarantees it, and
every plan built elsewhere has one segment), so a plan answers "which segment at ``t``" by
bisection and "when does the level change next" by walking forward from there: queries cost
O(log k) (plus the steps walked) for a plan of k segments, never O(k) per boundary.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import NamedTuple

from .targets import EventTargets

MAX_LEVEL = 3
CANCELLED = "cancelled"

_START = itemgetter(0)


class Segment(NamedTuple):
    """A stretch of time at one level; ``end`` is ``None`` when open-ended."""

    start: datetime
    end: datetime | None
    level: int

    def covers(self, t: datetime) -> bool:
        """Whether ``t`` falls inside ``[start, end)``."""
        return self.start <= t and (self.end is None or t < self.end)


@dataclass(frozen=True, slots=True)
class EventPlan:
    """What one event asks for, already shifted by its start-after offset."""

    event_id: str
    modification_number: int
    status: str
    test_event: bool
    priority: int
    start: datetime | None
    end: datetime | None
    offset: timedelta
    segments: tuple[Segment, ...]
    targets: EventTargets | None = None  # None: no eiTarget, every point

    @property
    def cancelled(self) -> bool:
        """Whether the VTN cancelled the event."""
        return self.status == CANCELLED

    def segment_at(self, t: datetime) -> Segment | None:
        """Return the segment in force at ``t``, or ``None``."""
        require_aware(t)
        if self.cancelled:
            return None
        index = bisect_right(self.segments, t, key=_START) - 1
        if index < 0:
            return None
        seg = self.segments[index]
        return seg if seg.covers(t) else None

    def level_at(self, t: datetime) -> int:
        """Return the SIMPLE level at ``t`` (0 outside the event or when cancelled)."""
        seg = self.segment_at(t)
        return 0 if seg is None else seg.level

    def boundaries(self) -> list[datetime]:
        """Return every instant where a segment starts or ends, sorted."""
        if self.cancelled:
            return []
        points: list[datetime] = []
        for seg in self.segments:  # sorted and disjoint: the points come in order
            for point in (seg.start, seg.end):
                if point is not None and (not points or points[-1] != point):
                    points.append(point)
        return points

    def next_change_after(self, t: datetime) -> datetime | None:
        """Return the first instant after ``t`` where the level differs, or ``None``."""
        current = self.level_at(t)
        if self.cancelled:
            return None
        segments = self.segments
        first = max(bisect_right(segments, t, key=_START) - 1, 0)
        for index in range(first, len(segments)):
            seg = segments[index]
            if seg.start > t and seg.level != current:
                return seg.start
            if seg.end is not None and seg.end > t:
                following = segments[index + 1] if index + 1 < len(segments) else None
                joined = following is not None and following.start == seg.end
                if (following.level if following is not None and joined else 0) != current:
                    return seg.end
        return None


def require_aware(t: datetime) -> None:
    """Refuse a naive time: comparing it with the plans' UTC times would raise later."""
    if t.utcoffset() is None:
        raise ValueError(f"naive datetime {t.isoformat()}: use an aware (UTC) time")
