"""The event API of the simulated VTN (``sim.vtn.SimVtn``).

:class:`EventControl` adds, modifies, cancels and removes events (:class:`SimEvent`, in
:mod:`sim.vtn_event_model`) and queues each one's openleadr copy for every VEN it targets.
The records (:mod:`sim.vtn_records`) are still imported from here too.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sim.vtn_event_model import SimEvent, whole_seconds
from sim.vtn_records import OptRecord, ReportRecord, VenRecord, iso, to_json

__all__ = [
    "EventControl",
    "OptRecord",
    "ReportRecord",
    "SimEvent",
    "VenRecord",
    "digit_event_id",
    "iso",
    "new_event_id",
    "to_json",
    "whole_seconds",
]


def digit_event_id() -> str:
    """Return a random all-digit event ID without a leading zero (as some VTNs number events)."""
    return str(10**11 + secrets.randbelow(9 * 10**11))


def new_event_id(
    events: Mapping[str, SimEvent], event_id: str | None, *, digit_ids: bool
) -> str | None:
    """The id a new event gets; raises ``ValueError`` when it is taken.

    ``event_id`` if given, else all digits with ``digit_ids``, else None (a random hex id).
    """
    if event_id is None and digit_ids:
        event_id = digit_event_id()
    if event_id is not None and event_id in events:
        raise ValueError(f"event {event_id} exists already")
    return event_id


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
        targets: dict[str, list[str]] | None = None,
        signal_type: str = "level",
    ) -> str:
        """Queue a SIMPLE level event and return its event_id.

        ``ven_id`` is a ven_id or a VEN name; None targets every VEN, including ones that register
        later. Give either ``level`` (one interval of ``duration``) or consecutive ``intervals``
        of ``(duration, level)``. ``start`` must be timezone-aware (default now); ``start_after``
        becomes the active period's ``tolerance.startafter`` (start randomisation). ``event_id``
        defaults to a random hex ID (all digits with ``digit_ids``). ``targets`` (kind -> ids,
        kinds ``ven_id``, ``resource_id``, ``group_id``, ``party_id``) is what the eiTarget
        names (default: the receiving VEN's id); ``signal_type`` that of the SIMPLE signal.
        Events added one after the other without awaiting in between reach a VEN in one
        oadrDistributeEvent.
        """
        event_id = new_event_id(self._events, event_id, digit_ids=self.digit_ids)
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
            targets=targets,
            signal_type=signal_type,
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
