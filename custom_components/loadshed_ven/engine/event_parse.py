"""Turning the event dict that openleadr hands to ``on_event`` into an :class:`EventPlan`.

``parse_event`` returns a frozen plan or a rejection reason. It never raises, whatever the
input, and its work is linear in the number of intervals. The rules:

* Only a signal named ``SIMPLE`` (any case) whose ``signal_type`` is ``level`` (any case) is
  acted on; other signals are ignored, and an event with none, or with more than one, is
  rejected (a SIMPLE ``price`` or ``delta`` signal says nothing about a shed level). A
  missing ``signal_type`` counts as ``level``: the 2.0b schema requires the element, so only
  an in-process dict lacks it, and ``level`` is the one type a SIMPLE signal has in 2.0b.
* ``targets`` (openleadr's list of ``{kind: id}`` from ``eiTarget``) becomes the plan's
  :class:`~.targets.EventTargets`; ``venID``, ``resourceID``, ``groupID`` and ``partyID`` are
  read, other kinds (``endDeviceAsset``, ``groupName``...) are hints and ignored. No targets,
  or none of those kinds, gives ``None`` (every point). Unreadable targets, or more than
  :data:`~.targets.MAX_TARGETS` ids, reject the event: reading them as "no targets" would
  shed every point.
* At most :data:`MAX_INTERVALS` SIMPLE intervals per event; an event with more is refused
  (never truncated: a shortened event would shed for the wrong time).
* Intervals are taken in document order (``uid`` is ignored). Each starts at its own
  ``dtstart`` or, without one, where the previous interval ended (the first at
  ``active_period.dtstart``). Intervals must not overlap; gaps mean level 0.
* Every interval needs a duration. Duration 0 is allowed on the LAST interval only and
  means open-ended: it lasts until the active period ends or, if the active period is
  open-ended too (duration 0), until the event is cancelled or removed.
* Segments are clipped to the active period.
* Levels are whole numbers 0-3 (openleadr delivers floats such as ``2.0``).
* Times must be aware datetimes; openleadr leaves a time without a trailing ``Z`` as a
  ``str``, which is rejected. Everything is converted to UTC. Times that overflow Python's
  calendar (year 9999 plus a duration, an offset or a zone) reject the event.
* ``tolerance.tolerate.startafter``: the whole event (every boundary) is shifted by one
  offset in ``[0, startafter]``. The offset comes from ``random_offset``: a
  :class:`StableOffset` derives it from a seed and the event id, so every modification
  of an event, and a restart, gives the same offset without stored state; a float is
  a fixed fraction of the window (0.0 = no shift).
* ``event_status`` sent by the VTN is stale by design, so only ``cancelled`` is used:
  a cancelled plan never has an active level. A cancellation is accepted even when its
  timing is unreadable (``start``/``end`` are then ``None``), so a malformed cancel can
  never keep a building shed.
* ``test_event`` is kept on the plan; anything but ``False``/``"false"`` counts as a
  test, following OpenADR rule 006.
* openleadr turns numeric ids into ``int`` (``"007"`` arrives as ``7``); ids are
  compared as text through :func:`normalise_event_id`.
* Rejection reasons quote the offending input through :func:`_show`: one printable line
  of bounded length, because they are logged on every poll and shown to people.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeIs

from .event_plan import CANCELLED, MAX_LEVEL, EventPlan, Segment
from .targets import MAX_TARGETS, EventTargets

MAX_INTERVALS = 2880
"""SIMPLE intervals accepted per event: two days of one-minute intervals.

Every interval is a boundary the VEN times and a segment it keeps in memory; openleadr has
already parsed the whole message by then, so the limit bounds what one event costs the VEN.
"""

OffsetSource = Callable[[str, timedelta], timedelta]
"""``(event_id, startafter window) -> offset``; results are clamped to the window."""

_SHOW_MAX_CHARS = 60
# modificationNumber and priority are xs:unsignedInt in OpenADR 2.0b. Larger numbers would also
# outrank "no priority" below, and break JSON (bus events, diagnostics) past 64 bits.
_UINT32_MAX = 2**32 - 1


class StableOffset:
    """Start-after offset that is the same for every modification of an event.

    The offset is a fraction of the window taken from SHA-256(seed, event id), in
    whole seconds. Give each VEN its own seed so that a fleet spreads out.
    """

    def __init__(self, seed: str) -> None:
        """Remember the seed."""
        self._seed = seed

    def __call__(self, event_id: str, window: timedelta) -> timedelta:
        """Return the offset for ``event_id`` within ``window``."""
        digest = hashlib.sha256(f"{self._seed}\0{event_id}".encode()).digest()
        fraction = int.from_bytes(digest[:8], "big") / 2**64
        return timedelta(seconds=int(window.total_seconds() * fraction))


@dataclass(frozen=True, slots=True)
class ParseResult:
    """Either a plan or a reason for rejecting the event (``event_id`` when readable)."""

    event_id: str | None
    plan: EventPlan | None = None
    error: str | None = None


class _RejectError(Exception):
    """Internal: the event is unusable; the message is shown to the user."""


def normalise_event_id(value: object) -> str | None:
    """Return an event id as text, or ``None`` when it is missing or unusable."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # an int with more digits than Python converts to text
            return None
    return None


def parse_event(raw: object, *, random_offset: OffsetSource | float) -> ParseResult:
    """Turn an openleadr event dict into a plan; never raises."""
    if not isinstance(raw, Mapping):
        return ParseResult(None, error="the event is not a dictionary")
    descriptor = raw.get("event_descriptor")
    if not isinstance(descriptor, Mapping):
        return ParseResult(None, error="the event has no event_descriptor")
    event_id = normalise_event_id(descriptor.get("event_id"))
    if event_id is None:
        return ParseResult(None, error="the event has no usable event_id")
    try:
        plan = _build_plan(event_id, descriptor, raw, random_offset)
    except _RejectError as err:
        return ParseResult(event_id, error=str(err))
    except Exception as err:  # noqa: BLE001 - a handler that raises opts out a whole message
        return ParseResult(event_id, error=f"the event could not be read ({type(err).__name__})")
    return ParseResult(event_id, plan=plan)


def _build_plan(
    event_id: str,
    descriptor: Mapping[str, object],
    raw: Mapping[str, object],
    random_offset: OffsetSource | float,
) -> EventPlan:
    mod = descriptor.get("modification_number")
    if not _is_int(mod) or not 0 <= mod <= _UINT32_MAX:
        raise _RejectError(f"modification_number must be a whole number from 0 to {_UINT32_MAX}")
    status = descriptor.get("event_status", "none")
    if not isinstance(status, str):
        raise _RejectError(f"event_status {_show(status)} is not text")
    status = status.strip().lower()
    test_event = _test_flag(descriptor.get("test_event", False))
    try:
        priority = _priority(descriptor.get("priority"))
        start, end, offset, segments = _timing(event_id, raw, random_offset)
        targets = _targets(raw.get("targets"))
    except (_RejectError, ArithmeticError, ValueError, TypeError) as err:
        if status != CANCELLED:
            if isinstance(err, OverflowError):
                raise _RejectError("the event's times are out of range") from err
            raise
        # A cancel only has to be recognised; its details no longer matter.
        priority, start, end, offset, segments = 0, None, None, timedelta(0), ()
        targets = None
    return EventPlan(
        event_id, mod, status, test_event, priority, start, end, offset, segments, targets
    )


_TARGET_KINDS = {
    "ven_id": "ven_ids",
    "resource_id": "resource_ids",
    "group_id": "group_ids",
    "party_id": "party_ids",
}


def _targets(raw: object) -> EventTargets | None:
    """The ids named by openleadr's ``targets`` list; ``None`` when it names none we read."""
    if raw is None:
        return None
    if not isinstance(raw, list | tuple):
        raise _RejectError(f"the event's targets {_show(raw)} are not a list")
    found: dict[str, set[str]] = {field: set() for field in _TARGET_KINDS.values()}
    count = 0
    for target in raw:
        if not isinstance(target, Mapping):
            raise _RejectError(f"the event target {_show(target)} is not a dictionary")
        for kind, value in target.items():
            field = _TARGET_KINDS.get(kind) if isinstance(kind, str) else None
            if field is None:
                continue  # a device class or other hint: not an id of ours
            values = value if isinstance(value, list | tuple) else (value,)
            count += len(values)
            if count > MAX_TARGETS:
                raise _RejectError(f"the event names more than {MAX_TARGETS:,} targets")
            for item in values:
                text = normalise_event_id(item)
                if text is None:
                    raise _RejectError(f"the event target {kind} {_show(item)} is unreadable")
                found[field].add(text)
    targets = EventTargets(**{field: frozenset(ids) for field, ids in found.items()})
    return targets if targets else None


def _timing(
    event_id: str, raw: Mapping[str, object], random_offset: OffsetSource | float
) -> tuple[datetime, datetime | None, timedelta, tuple[Segment, ...]]:
    period = raw.get("active_period")
    if not isinstance(period, Mapping):
        raise _RejectError("the event has no active_period")
    start = _aware_datetime(period.get("dtstart"), "the active period start")
    duration = _duration(period.get("duration"), "the active period")
    active_end = start + duration if duration else None
    window = _start_after(period.get("tolerance"))
    offset = _draw(random_offset, event_id, window)
    intervals = _simple_intervals(raw.get("event_signals"))
    segments = [
        Segment(seg.start + offset, None if seg.end is None else seg.end + offset, seg.level)
        for seg in _clip(_segments(start, intervals), start, active_end)
    ]
    if not segments:
        raise _RejectError("no interval falls inside the active period")
    return start + offset, segments[-1].end, offset, tuple(segments)


def _segments(active_start: datetime, intervals: Sequence[object]) -> list[Segment]:
    cursor = active_start
    segments: list[Segment] = []
    for n, interval in enumerate(intervals, 1):
        if not isinstance(interval, Mapping):
            raise _RejectError(f"interval {n} is not a dictionary")
        own_start = interval.get("dtstart")
        begin = cursor if own_start is None else _aware_datetime(own_start, f"interval {n} start")
        if n > 1 and begin < cursor:
            raise _RejectError(f"interval {n} starts before interval {n - 1} ends")
        length = _duration(interval.get("duration"), f"interval {n}")
        if not length and n != len(intervals):
            raise _RejectError(
                f"interval {n} has duration 0; only the last interval may be open-ended"
            )
        finish = begin + length if length else None
        segments.append(Segment(begin, finish, _level(interval.get("signal_payload"), n)))
        if finish is not None:
            cursor = finish
    return segments


def _clip(
    segments: Iterable[Segment], active_start: datetime, active_end: datetime | None
) -> Iterator[Segment]:
    for seg in segments:
        begin = max(seg.start, active_start)
        ends = [e for e in (seg.end, active_end) if e is not None]
        finish = min(ends) if ends else None
        if finish is None or begin < finish:
            yield Segment(begin, finish, seg.level)


def _simple_intervals(signals: object) -> Sequence[object]:
    if not isinstance(signals, list | tuple):
        raise _RejectError("the event has no list of event_signals")
    named = [
        sig
        for sig in signals
        if isinstance(sig, Mapping)
        and isinstance(sig.get("signal_name"), str)
        and sig["signal_name"].strip().upper() == "SIMPLE"
    ]
    simple = [sig for sig in named if _is_level(sig.get("signal_type"))]
    if not simple and named:
        raise _RejectError(
            f"the SIMPLE signal has signalType {_show(named[0].get('signal_type'))}; "
            "only 'level' is acted on"
        )
    if not simple:
        raise _RejectError("the event has no SIMPLE signal (other signals are not acted on)")
    if len(simple) > 1:
        raise _RejectError("the event has more than one SIMPLE signal")
    intervals = simple[0].get("intervals")
    if not isinstance(intervals, list | tuple) or not intervals:
        raise _RejectError("the SIMPLE signal has no intervals")
    if len(intervals) > MAX_INTERVALS:
        raise _RejectError(
            f"the SIMPLE signal has {len(intervals):,} intervals; "
            f"at most {MAX_INTERVALS:,} are accepted per event"
        )
    return intervals


def _is_level(signal_type: object) -> bool:
    return signal_type is None or (
        isinstance(signal_type, str) and signal_type.strip().lower() == "level"
    )


def _level(payload: object, n: int) -> int:
    if isinstance(payload, bool) or not isinstance(payload, int | float):
        raise _RejectError(f"interval {n}: the SIMPLE level {_show(payload)} is not a number")
    if isinstance(payload, float) and not (math.isfinite(payload) and payload.is_integer()):
        raise _RejectError(f"interval {n}: the SIMPLE level {_show(payload)} is not a whole number")
    if not 0 <= payload <= MAX_LEVEL:
        raise _RejectError(f"interval {n}: SIMPLE level {_show(payload)} is outside 0-{MAX_LEVEL}")
    return int(payload)


def _aware_datetime(value: object, what: str) -> datetime:
    if value is None:
        raise _RejectError(f"{what} is missing")
    if isinstance(value, str):
        raise _RejectError(
            f"{what} {_show(value)} has no time zone (the VTN must send UTC times ending in 'Z')"
        )
    if not isinstance(value, datetime):
        raise _RejectError(f"{what} {_show(value)} is not a date and time")
    if value.utcoffset() is None:
        raise _RejectError(f"{what} {value.isoformat()} has no time zone")
    return value.astimezone(UTC)


def _duration(value: object, what: str) -> timedelta:
    if value is None:
        raise _RejectError(f"{what} has no duration")
    if not isinstance(value, timedelta):
        raise _RejectError(f"{what} has a duration {_show(value)} that is not a time span")
    if value < timedelta(0):
        raise _RejectError(f"{what} has a negative duration ({value})")
    return value


def _start_after(tolerance: object) -> timedelta:
    if tolerance is None:
        return timedelta(0)
    if not isinstance(tolerance, Mapping):
        raise _RejectError("the start-after tolerance is unreadable")
    # openleadr delivers {"tolerate": {"startafter": td}}; its own objects use {"startafter": td}.
    tolerate = tolerance.get("tolerate", tolerance)
    if tolerate is None:
        return timedelta(0)
    if not isinstance(tolerate, Mapping):
        raise _RejectError("the start-after tolerance is unreadable")
    window = tolerate.get("startafter")
    return timedelta(0) if window is None else _duration(window, "the start-after tolerance")


def _draw(source: OffsetSource | float, event_id: str, window: timedelta) -> timedelta:
    if not window:
        return timedelta(0)
    if isinstance(source, int | float):
        fraction = 0.0 if math.isnan(source) else min(max(float(source), 0.0), 1.0)
        return window * fraction
    return min(max(source(event_id, window), timedelta(0)), window)


def _priority(value: object) -> int:
    if value is None:
        return 0
    if not _is_int(value) or not 0 <= value <= _UINT32_MAX:
        raise _RejectError(
            f"priority {_show(value)} must be a whole number from 0 to {_UINT32_MAX}"
        )
    return value


def _test_flag(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() != "false"
    return value is not False and value is not None


def _show(value: object) -> str:
    """Quote untrusted input for a message: printable, one line, bounded; never raises."""
    try:
        text = repr(value)  # escapes control characters, so no forged log lines
    except (ValueError, RecursionError):  # a huge int, or absurdly deep nesting
        text = f"<{type(value).__name__}>"
    if len(text) > _SHOW_MAX_CHARS:
        text = f"{text[: _SHOW_MAX_CHARS - 3]}..."
    return text


def _is_int(value: object) -> TypeIs[int]:
    return isinstance(value, int) and not isinstance(value, bool)
