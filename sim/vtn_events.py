"""Records, the event model and the event API of the simulated VTN (``sim.vtn.SimVtn``).

:class:`SimEvent` is the VTN's own view of a SIMPLE level event; :meth:`SimEvent.to_openleadr`
builds the ``objects.Event`` copy that openleadr's server queues for one VEN, and
:class:`EventControl` adds, modifies, cancels and removes events in those queues.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from openleadr import objects

__all__ = [
    "EventControl",
    "OptRecord",
    "ReportRecord",
    "SimEvent",
    "VenRecord",
    "digit_event_id",
    "iso",
    "to_json",
    "whole_seconds",
]


def iso(value: datetime) -> str:
    """Return ``value`` as ISO 8601 UTC with a trailing ``Z``."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def to_json(record: ReportRecord | OptRecord | VenRecord) -> dict[str, Any]:
    """Return a record as a JSON-ready dict (datetimes as ISO 8601 UTC with ``Z``)."""
    return {k: iso(v) if isinstance(v, datetime) else v for k, v in asdict(record).items()}


def digit_event_id() -> str:
    """Return a random all-digit event ID without a leading zero (as some VTNs number events)."""
    return str(10**11 + secrets.randbelow(9 * 10**11))


def whole_seconds(value: timedelta, what: str, minimum: int) -> timedelta:
    """Return ``value``; OpenADR durations travel as whole seconds, so reject truncated ones."""
    seconds = value.total_seconds()
    if seconds < minimum or seconds != int(seconds):
        raise ValueError(f"{what} must be a whole number of seconds >= {minimum}, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class ReportRecord:
    """One telemetry value received from a VEN."""

    ven_id: str
    resource_id: str | None
    measurement: str | None
    unit: str | None
    dtstart: datetime
    value: float


@dataclass(frozen=True, slots=True)
class OptRecord:
    """One opt response: from ``oadrCreatedEvent`` or from an EiOpt ``oadrCreateOpt``."""

    ven_id: str
    event_id: str | None
    opt_type: str
    received_at: datetime
    modification_number: int | None = None
    source: str = "oadrCreatedEvent"


@dataclass(slots=True)
class VenRecord:
    """A registered VEN."""

    ven_id: str
    ven_name: str
    registration_id: str
    fingerprint: str | None
    registered_at: datetime
    registrations: int = 1


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
                    signal_type="level",
                    signal_id=f"{self.event_id}-simple",
                    current_value=0.0,  # openleadr forces 0 anyway (preflight.py:104-109)
                )
            ],
            targets=[{"ven_id": ven_id}],
            active_period=objects.ActivePeriod(
                dtstart=self.start, duration=at - self.start, tolerance=tolerance
            ),
            response_required=self.response_required,
        )
        if self.cancelled:  # objects.Event recomputes the status from the period
            event.event_descriptor.event_status = "cancelled"
        return event


class EventControl:
    """The event API of ``SimVtn``: keeps the events and queues a copy of each per VEN.

    Delivery goes through the openleadr server's own per-VEN queue (``events``) and its
    "something changed" flag (``events_updated``), which its oadrPoll handler reads.
    """

    market_context: str
    keep_listed: timedelta | None
    digit_ids: bool
    _vens: dict[str, VenRecord]
    _events: dict[str, SimEvent]
    _server: Any

    def add_event(
        self,
        ven_id: str | None = None,
        *,
        level: int | None = None,
        intervals: list[tuple[timedelta, int]] | None = None,
        duration: timedelta = timedelta(minutes=10),
        start: datetime | None = None,
        start_after: timedelta | None = None,
        test_event: bool = False,
        response_required: str = "always",
        priority: int = 0,
        event_id: str | None = None,
    ) -> str:
        """Queue a SIMPLE level event and return its event_id.

        ``ven_id`` is a ven_id or a VEN name; None targets every VEN, including ones that register
        later. Give either ``level`` (one interval of ``duration``) or consecutive ``intervals``
        of ``(duration, level)``. ``start`` must be timezone-aware (default now); ``start_after``
        becomes the active period's ``tolerance.startafter`` (start randomisation). ``event_id``
        defaults to a random hex ID (all digits with ``digit_ids``). Events added one after the
        other without awaiting in between reach a VEN in one oadrDistributeEvent.
        """
        if event_id is None and self.digit_ids:
            event_id = digit_event_id()
        if event_id is not None and event_id in self._events:
            raise ValueError(f"event {event_id} exists already")
        event = SimEvent.create(
            ven_id,
            level=level,
            intervals=intervals,
            duration=duration,
            start=start,
            start_after=start_after,
            test_event=test_event,
            response_required=response_required,
            priority=priority,
            event_id=event_id,
        )
        self._events[event.event_id] = event
        for ven in self._vens.values():
            if ven_id in (None, ven.ven_id, ven.ven_name):
                self._publish(event, ven.ven_id)
        return event.event_id

    def modify_event(
        self,
        event_id: str,
        *,
        level: int | None = None,
        intervals: list[tuple[timedelta, int]] | None = None,
        start: datetime | None = None,
    ) -> int:
        """Change an event and return its new modification number.

        ``level`` alone keeps the interval durations and sets every interval to that level.
        """
        event = self._live(event_id)
        event.modify(level, intervals, start)
        return self._bump(event)

    def cancel_event(self, event_id: str) -> int:
        """Mark an event cancelled and return its new modification number."""
        event = self._live(event_id)
        event.cancelled = True
        event.cancelled_at = datetime.now(UTC)
        return self._bump(event)

    def remove_event(self, event_id: str) -> None:
        """Stop serving an event without telling the VEN (an implied cancellation)."""
        event = self._events[event_id]
        event.removed = True
        for ven_id, copy in event.copies.items():
            queue = self._server.events.get(ven_id, [])
            queue[:] = [item for item in queue if item is not copy]
            self._server.events_updated[ven_id] = True

    def events(self) -> list[dict[str, Any]]:
        """Return JSON-ready summaries of every event, oldest first."""
        now = datetime.now(UTC)
        return [event.summary(now) for event in self._events.values()]

    def _relist(self, ven_id: str, now: datetime) -> list[Any] | None:
        """The events still listed for ``ven_id`` with ``keep_listed`` set, else None.

        openleadr's server drops a cancelled event once the VEN answers it and a completed one
        after its last delivery; a real VTN lists both for a while. The openleadr queue is set
        to the same list, so that the VEN's answers to listed events are accepted.
        """
        keep = self.keep_listed
        queue = self._server.events.setdefault(ven_id, [])
        if keep is None:
            return None
        queue[:] = [
            event.copies[ven_id]
            for event in self._events.values()
            if ven_id in event.copies and event.listed(now, keep)
        ]
        return list(queue)

    def _live(self, event_id: str) -> SimEvent:
        event = self._events[event_id]
        if event.cancelled or event.removed:
            raise ValueError(f"event {event_id} is {event.status(datetime.now(UTC))}")
        return event

    def _bump(self, event: SimEvent) -> int:
        event.modification_number += 1
        for ven_id in event.copies:
            self._publish(event, ven_id)
        return event.modification_number

    def _publish(self, event: SimEvent, ven_id: str) -> None:
        """Put the event's current state in the VEN's openleadr queue, replacing an older copy."""
        now = datetime.now(UTC)
        copy = event.to_openleadr(ven_id, self.market_context, now)
        queue = self._server.events.setdefault(ven_id, [])
        old = event.copies.get(ven_id)
        index = next((i for i, item in enumerate(queue) if item is old), None)
        if index is None:
            queue.append(copy)
        else:
            queue[index] = copy
        event.copies[ven_id] = copy
        self._server.events_updated[ven_id] = True


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
