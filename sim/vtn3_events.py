"""The event store of the simulated OpenADR 3.x VTN (``sim.vtn3.SimVtn3``) and its JSON forms.

Events are the 2.0b VTN's :class:`SimEvent` objects, so tests and the control API drive either
VTN with the same calls; this module renders them as OpenADR 3.1.0 event objects. 3.x has no
modification number and no status: a change moves ``modificationDateTime``, a cancellation
deletes the event (or, with ``cancel_style = "zero"``, moves its period to 0001-01-01 with
duration PT0S, the User Guide's alternative, and keeps it listed). :func:`parse_report` checks
the reports VENs post and turns them into the same records the 2.0b VTN keeps.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from sim.vtn_event_model import SimEvent
from sim.vtn_events import new_event_id
from sim.vtn_records import OptRecord, ReportRecord, StatusRecord, iso

__all__ = [
    "ZERO_START",
    "EventStore3",
    "RequestError",
    "iso_duration",
    "parse_report",
    "render_event",
]

ZERO_START = "0001-01-01T00:00:00Z"
# 3.0.1 valuesMap types of the target kinds; party_id has no 3.x counterpart and is left out.
TARGET_TYPES = {"ven_id": "VEN_NAME", "resource_id": "RESOURCE_NAME", "group_id": "GROUP"}
DEFAULT_REPORT_DESCRIPTORS: tuple[dict[str, Any], ...] = (
    {
        "payloadType": "DEMAND",
        "readingType": "DIRECT_READ",
        "units": "KW",
        "aggregate": False,
        "startInterval": 0,
        "numIntervals": -1,
        "historical": False,
        "frequency": -1,
        "repeat": 1,
    },
)


def iso_duration(value: timedelta) -> str:
    """Return ``value`` (whole seconds) as ISO 8601: ``PT1H30M``, ``P1DT2H``, ``PT0S``."""
    seconds = int(value.total_seconds())
    if seconds <= 0:
        return "PT0S"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    return (f"P{days}D" if days else "P") + (f"T{clock}" if clock else "")


def payload_type(event: SimEvent) -> str:
    """SIMPLE for a level event, else the signal type upper-cased (a VEN must not act on it)."""
    return "SIMPLE" if event.signal_type == "level" else event.signal_type.upper()


def render_targets(event: SimEvent, target_format: str) -> list[Any] | None:
    """The event's targets: 3.1.0 strings, or 3.0.1 valuesMaps with ``target_format="3.0.1"``."""
    named = {
        kind: list(values)
        for kind, values in (event.targets or {}).items()
        if kind in TARGET_TYPES and values
    }
    if not named:
        return None
    if target_format == "3.0.1":
        return [{"type": TARGET_TYPES[kind], "values": values} for kind, values in named.items()]
    return [value for values in named.values() for value in values]


def render_event(
    event: SimEvent,
    *,
    program_id: str,
    modified: datetime,
    zeroed: bool = False,
    target_format: str = "3.1.0",
    report_descriptors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Render one event as a 3.x event object.

    The first interval's length is the event's period duration; a later interval of another
    length carries its own intervalPeriod, one of the same length follows the previous one (the
    two ways the spec allows). A zeroed (cancelled) event drops the per-interval periods, so
    nothing in it still points at a real time.
    """
    kind = payload_type(event)
    first = event.intervals[0][0]
    period: dict[str, Any] = {"start": iso(event.start), "duration": iso_duration(first)}
    if event.start_after:
        period["randomizeStart"] = iso_duration(event.start_after)
    if zeroed:
        period = {"start": ZERO_START, "duration": "PT0S"}
    intervals, at = [], event.start
    for uid, (length, level) in enumerate(event.intervals):
        item: dict[str, Any] = {"id": uid, "payloads": [{"type": kind, "values": [level]}]}
        if length != first and not zeroed:
            item["intervalPeriod"] = {"start": iso(at), "duration": iso_duration(length)}
        intervals.append(item)
        at += length
    body: dict[str, Any] = {
        "id": event.event_id,
        "createdDateTime": iso(event.created_at),
        "modificationDateTime": iso(modified),
        "objectType": "EVENT",
        "programID": program_id,
        "eventName": f"{kind.lower()} {event.event_id[:8]}",
        "priority": event.priority,
        "targets": render_targets(event, target_format),
        "payloadDescriptors": [{"objectType": "EVENT_PAYLOAD_DESCRIPTOR", "payloadType": kind}],
        "intervalPeriod": period,
        "intervals": intervals,
    }
    if report_descriptors:
        body["reportDescriptors"] = [dict(d) for d in report_descriptors]
    return body


class EventStore3:
    """The event API of ``SimVtn3`` (same calls as ``SimVtn``) and the per-client event listing."""

    program_id: str
    keep_listed: timedelta | None
    cancel_style: str
    digit_ids: bool
    target_format: str
    report_descriptors: list[dict[str, Any]] | None
    _events: dict[str, SimEvent]
    _modified: dict[str, datetime]
    _zeroed: set[str]

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
        """Publish an event and return its id (the arguments are ``SimVtn.add_event``'s).

        ``ven_id`` (a VEN name or client id) shows the event to that VEN only; None to every
        client. ``targets`` kinds ven_id, resource_id and group_id become 3.1.0 target names
        (party_id has no 3.x form). ``start_after`` becomes ``intervalPeriod.randomizeStart``.
        3.x has neither a test flag nor a response request: those two are kept for the summary.
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
        self._modified[event.event_id] = event.created_at
        return event.event_id

    def modify_event(
        self,
        event_id: str,
        *,
        level: int | None = None,
        intervals: list[tuple[timedelta, int]] | None = None,
        start: datetime | None = None,
    ) -> int:
        """Change an event, move its modificationDateTime and return a modification counter."""
        event = self._live(event_id)
        event.modify(level, intervals, start)
        return self._bump(event)

    def cancel_event(self, event_id: str) -> int:
        """Cancel: delete the event from the listing, or zero its period (``cancel_style``)."""
        event = self._live(event_id)
        event.cancelled = True
        event.cancelled_at = datetime.now(UTC)
        if self.cancel_style == "zero":
            self._zeroed.add(event_id)
        return self._bump(event)

    def remove_event(self, event_id: str) -> None:
        """Delete an event (in 3.x the same as a cancellation)."""
        self._events[event_id].removed = True

    def events(self) -> list[dict[str, Any]]:
        """Return JSON-ready summaries of every event, oldest first (as ``SimVtn.events``)."""
        now = datetime.now(UTC)
        return [event.summary(now) for event in self._events.values()]

    def listing(self, names: tuple[str, ...], program_id: str | None) -> list[dict[str, Any]]:
        """The event objects a client known by ``names`` (VEN name first) sees now, oldest first."""
        if program_id is not None and program_id != self.program_id:
            return []
        now = datetime.now(UTC)
        out = []
        for event in self._events.values():
            if not self._listed(event, now) or (event.target not in (None, *names)):
                continue
            out.append(
                render_event(
                    event,
                    program_id=self.program_id,
                    modified=self._modified[event.event_id],
                    zeroed=event.event_id in self._zeroed,
                    target_format=self.target_format,
                    report_descriptors=self.report_descriptors,
                )
            )
        return out

    def _listed(self, event: SimEvent, now: datetime) -> bool:
        """Ended events stay listed for ``keep_listed`` (None: forever); deleted ones never."""
        keep = self.keep_listed
        if event.removed or (event.cancelled and event.event_id not in self._zeroed):
            return False
        if event.cancelled:
            return keep is None or event.cancelled_at is None or now < event.cancelled_at + keep
        return keep is None or now < event.end + keep

    def _live(self, event_id: str) -> SimEvent:
        event = self._events[event_id]
        if event.cancelled or event.removed:
            raise ValueError(f"event {event_id} is {event.status(datetime.now(UTC))}")
        return event

    def _bump(self, event: SimEvent) -> int:
        """Count the change; the new modificationDateTime is always later than the last one."""
        event.modification_number += 1
        last = self._modified[event.event_id]
        self._modified[event.event_id] = max(datetime.now(UTC), last + timedelta(milliseconds=1))
        return event.modification_number


class RequestError(ValueError):
    """A request body the VTN refuses; the text becomes the problem's detail."""


def parse_report(
    body: object, *, program_id: str, event_ids: Collection[str], ven_name: str
) -> tuple[list[ReportRecord], list[OptRecord], list[StatusRecord]]:
    """Check a report as a strict VTN does and turn its values into records.

    Every value becomes a :class:`ReportRecord`; OPERATING_STATE values become opts instead
    (``*_OPTED_OUT`` is an opt-out, anything else an opt-in), except in a report named
    ``status``, whose intervals (OPERATING_STATE and SIMPLE_LEVEL) become :class:`StatusRecord`
    s. All are credited to ``ven_name``, the name of the client that sent the report.
    """
    body = _check_header(body, program_id, event_ids)
    units = {
        d.get("payloadType"): d.get("units")
        for d in body.get("payloadDescriptors") or []
        if isinstance(d, dict)
    }
    reports: list[ReportRecord] = []
    opts: list[OptRecord] = []
    statuses: list[StatusRecord] = []
    is_status = body.get("reportName") == "status"
    now = datetime.now(UTC)
    for resource in body["resources"]:
        name = resource.get("resourceName") if isinstance(resource, dict) else None
        intervals = resource.get("intervals") if isinstance(resource, dict) else None
        if not isinstance(name, str) or not name or not isinstance(intervals, list):
            raise RequestError("each resource needs a resourceName and a list of intervals")
        for interval in intervals:
            start = _start(interval, resource)
            if is_status:
                statuses.append(_status(ven_name, name, start, dict(_values(interval))))
                continue
            for kind, value in _values(interval):
                if kind == "OPERATING_STATE":
                    opt = "optOut" if value.endswith("_OPTED_OUT") else "optIn"
                    opts.append(OptRecord(ven_name, body["eventID"], opt, now, None, kind))
                else:
                    unit = units.get(kind)
                    reports.append(ReportRecord(ven_name, name, kind, unit, start, value))
    return reports, opts, statuses


def _status(ven_name: str, resource: str, start: datetime, values: dict[str, Any]) -> StatusRecord:
    state = values.get("OPERATING_STATE")
    if not isinstance(state, str):
        raise RequestError("a status report needs an OPERATING_STATE value")
    level = values.get("SIMPLE_LEVEL")
    return StatusRecord(
        ven_name,
        resource,
        start,
        online=state != "SGD_ERROR_CONDITION",
        manual_override=state.endswith("_OPTED_OUT"),
        level=None if level is None else int(level),
    )


def _check_header(body: object, program_id: str, event_ids: Collection[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RequestError("a report is a JSON object")
    if body.get("objectType", "REPORT") != "REPORT":
        raise RequestError("objectType must be REPORT")
    for key in ("programID", "eventID", "clientName"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise RequestError(f"{key} is required")
    if body["programID"] != program_id:
        raise RequestError(f"unknown programID {body['programID']}")
    if body["eventID"] not in event_ids:
        raise RequestError(f"unknown eventID {body['eventID']}")
    if not isinstance(body.get("resources"), list) or not body["resources"]:
        raise RequestError("resources must be a non-empty list")
    return body


def _start(interval: object, resource: dict[str, Any]) -> datetime:
    """An interval's start: its own intervalPeriod, else its resource's; one must be given."""
    if not isinstance(interval, dict) or not isinstance(interval.get("id"), int):
        raise RequestError("each interval is an object with an integer id")
    for holder in (interval, resource):
        period = holder.get("intervalPeriod")
        if isinstance(period, dict) and isinstance(period.get("start"), str):
            try:
                start = datetime.fromisoformat(period["start"])
            except ValueError:
                raise RequestError(f"bad intervalPeriod start {period['start']!r}") from None
            if start.tzinfo is None:
                raise RequestError("intervalPeriod start needs a UTC offset")
            return start.astimezone(UTC)
    raise RequestError("an interval needs an intervalPeriod start (its own or its resource's)")


def _values(interval: dict[str, Any]) -> list[tuple[str, Any]]:
    """(payload type, value) pairs: OPERATING_STATE values are strings, all others numbers."""
    payloads = interval.get("payloads")
    if not isinstance(payloads, list) or not payloads:
        raise RequestError("each interval needs a non-empty payloads list")
    out: list[tuple[str, Any]] = []
    for payload in payloads:
        kind = payload.get("type") if isinstance(payload, dict) else None
        values = payload.get("values") if isinstance(payload, dict) else None
        if not isinstance(kind, str) or not isinstance(values, list) or not values:
            raise RequestError("each payload needs a type and a non-empty values list")
        for value in values:
            if kind == "OPERATING_STATE":
                if not isinstance(value, str):
                    raise RequestError("OPERATING_STATE values are strings")
                out.append((kind, value))
            elif isinstance(value, int | float) and not isinstance(value, bool):
                out.append((kind, float(value)))
            else:
                raise RequestError(f"{kind} values are numbers, got {value!r}")
    return out
