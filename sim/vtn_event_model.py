"""The event model of the simulated VTN: :class:`SimEvent`, one SIMPLE level event.

:meth:`SimEvent.to_openleadr` builds the ``objects.Event`` copy that openleadr's server queues
for one VEN; :mod:`sim.vtn_events` keeps the events and those queues.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from openleadr import objects

from sim.vtn_records import iso

TARGET_KINDS = ("ven_id", "resource_id", "group_id", "party_id")
"""What an event's eiTarget may name here (the kinds field VTNs send)."""


def whole_seconds(value: timedelta, what: str, minimum: int) -> timedelta:
    """Return ``value``; OpenADR durations travel as whole seconds, so reject truncated ones."""
    seconds = value.total_seconds()
    if seconds < minimum or seconds != int(seconds):
        raise ValueError(f"{what} must be a whole number of seconds >= {minimum}, got {value}")
    return value


@dataclass(slots=True)
class SimEvent:
    """The VTN's own view of an event; openleadr holds one ``objects.Event`` copy per VEN."""

    event_id: str
    target: str | None  # a ven_id or ven_name; None means every VEN
    start: datetime
    intervals: list[tuple[timedelta, int]]
    start_after: timedelta | None
    test_event: bool
    response_required: str
    priority: int
    created_at: datetime
    # eiTarget contents by kind (ven_id, resource_id, group_id, party_id); None: the VEN's id.
    targets: dict[str, list[str]] | None = None
    signal_type: str = "level"
    modification_number: int = 0
    cancelled: bool = False
    cancelled_at: datetime | None = None
    removed: bool = False
    copies: dict[str, Any] = field(default_factory=dict)
    opts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        target: str | None,
        *,
        level: int | None,
        intervals: list[tuple[timedelta, int]] | None,
        duration: timedelta,
        start: datetime | None,
        start_after: timedelta | None,
        test_event: bool,
        response_required: str,
        priority: int,
        event_id: str | None = None,
        targets: dict[str, list[str]] | None = None,
        signal_type: str = "level",
    ) -> SimEvent:
        """Validate the arguments of ``SimVtn.add_event`` and return a new event."""
        spans = _spans(level, intervals, duration)
        if response_required not in ("always", "never"):
            raise ValueError("response_required must be 'always' or 'never'")
        if priority < 0:
            raise ValueError("priority must be >= 0")
        if start_after is not None:
            whole_seconds(start_after, "start_after", 1)
        if event_id is not None and (not isinstance(event_id, str) or not event_id.strip()):
            raise ValueError("event_id must be a non-empty string")
        if targets is not None and not set(targets) <= set(TARGET_KINDS):
            raise ValueError(f"target kinds are {', '.join(TARGET_KINDS)}")
        now = datetime.now(UTC)
        return cls(
            event_id=event_id or uuid.uuid4().hex,
            target=target,
            start=_aware(start, now),
            intervals=spans,
            start_after=start_after,
            test_event=test_event,
            response_required=response_required,
            priority=priority,
            created_at=now,
            targets={k: list(v) for k, v in targets.items()} if targets else None,
            signal_type=signal_type,
        )

    @property
    def end(self) -> datetime:
        """The end of the last interval."""
        return self.start + sum((d for d, _ in self.intervals), timedelta())

    def status(self, now: datetime) -> str:
        """Return the OpenADR event status at ``now`` (or ``removed``)."""
        if self.removed:
            return "removed"
        if self.cancelled:
            return "cancelled"
        if now < self.start:
            return "far"
        return "active" if now < self.end else "completed"

    def listed(self, now: datetime, keep: timedelta) -> bool:
        """Whether a VTN that keeps ended events listed for ``keep`` still lists this one."""
        status = self.status(now)
        if status in ("far", "active"):
            return True
        if status == "cancelled":
            return self.cancelled_at is None or now < self.cancelled_at + keep
        return status == "completed" and now < self.end + keep

    def modify(
        self,
        level: int | None,
        intervals: list[tuple[timedelta, int]] | None,
        start: datetime | None,
    ) -> None:
        """Apply a modification; ``level`` alone keeps the durations and sets every level."""
        if level is not None and intervals is None:
            intervals = [(length, level) for length, _ in self.intervals]
        if intervals is not None:
            self.intervals = _spans(None, intervals, timedelta())
        if start is not None:
            self.start = _aware(start, datetime.now(UTC))

    def summary(self, now: datetime) -> dict[str, Any]:
        """Return a JSON-ready summary of the event."""
        return {
            "event_id": self.event_id,
            "ven_id": self.target,
            "status": self.status(now),
            "modification_number": self.modification_number,
            "start": iso(self.start),
            "end": iso(self.end),
            "intervals": [
                {"duration_s": int(length.total_seconds()), "level": level}
                for length, level in self.intervals
            ],
            "start_after_s": int(self.start_after.total_seconds()) if self.start_after else None,
            "test_event": self.test_event,
            "priority": self.priority,
            "targets": self.targets,
            "signal_type": self.signal_type,
            "response_required": self.response_required,
            "delivered_to": sorted(self.copies),
            "opt": dict(self.opts),
        }

    def to_openleadr(self, ven_id: str, market_context: str, now: datetime) -> Any:
        """Build the ``objects.Event`` that carries the current state to one VEN."""
        intervals, at = [], self.start
        for uid, (length, level) in enumerate(self.intervals):
            intervals.append(
                objects.Interval(dtstart=at, duration=length, signal_payload=float(level), uid=uid)
            )
            at += length
        tolerance = {"startafter": self.start_after} if self.start_after else None
        event = objects.Event(
            event_descriptor=objects.EventDescriptor(
                event_id=self.event_id,
                modification_number=self.modification_number,
                market_context=market_context,
                event_status=self.status(now),
                created_date_time=self.created_at,
                modification_date_time=now,
                priority=self.priority,
                test_event=self.test_event,
            ),
            event_signals=[
                objects.EventSignal(
                    intervals=intervals,
                    signal_name="SIMPLE",
                    signal_type=self.signal_type,
                    signal_id=f"{self.event_id}-simple",
                    current_value=0.0,  # openleadr forces 0 anyway (preflight.py:104-109)
                )
            ],
            targets=self._ei_targets(ven_id),
            active_period=objects.ActivePeriod(
                dtstart=self.start, duration=at - self.start, tolerance=tolerance
            ),
            response_required=self.response_required,
        )
        if self.cancelled:  # objects.Event recomputes the status from the period
            event.event_descriptor.event_status = "cancelled"
        return event

    def _ei_targets(self, ven_id: str) -> list[dict[str, str]]:
        """One ``{kind: id}`` per id named; the receiving VEN's own id when none are."""
        if not self.targets:
            return [{"ven_id": ven_id}]
        return [{kind: value} for kind, values in self.targets.items() for value in values]


def _aware(start: datetime | None, now: datetime) -> datetime:
    if start is None:
        return now
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (openleadr needs UTC with a trailing Z)")
    return start.astimezone(UTC)


def _spans(
    level: int | None, intervals: list[tuple[timedelta, int]] | None, duration: timedelta
) -> list[tuple[timedelta, int]]:
    """Validate SIMPLE intervals: levels 0-3, durations of whole seconds >= 1."""
    if (level is None) == (intervals is None):
        raise ValueError("give exactly one of level or intervals")
    spans = list(intervals) if intervals is not None else [(duration, level or 0)]
    if not spans:
        raise ValueError("intervals must not be empty")
    for length, value in spans:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3:
            raise ValueError(f"SIMPLE levels are 0-3, got {value!r}")
        whole_seconds(length, "interval duration", 1)
    return spans
