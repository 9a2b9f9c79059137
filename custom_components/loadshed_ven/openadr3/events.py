"""One OpenADR 3.x event (JSON) in the event dict shape the engine reads from a 2.0b VEN.

:func:`to_engine_event` is pure and never raises. The rules, and why:

* ``modification_number``: 3.x has none, so it is the whole seconds of ``modificationDateTime``
  since the epoch, clamped to 0..2**32-1. That is the same number after a restart (the engine
  drops a lower number as a stale repeat). When the content changed but the time did not
  (sub-second edits, or a VTN clock set back), it is ``previous_mod + 1``.
* ``priority``: 3.x counts from 0 = highest, null = none; 2.0b from 1 = highest, 0 = none.
  So 3.x ``p`` becomes ``p + 1`` and null becomes 0.
* Cancel: an ``intervalPeriod`` of ``0001-01-01T00:00:00Z`` + ``PT0S`` gives ``event_status``
  ``cancelled`` (a deleted event is the VEN's business: it is no longer listed).
* Intervals: each uses its own ``intervalPeriod`` when it has one, else the event's; one
  without its own start follows the previous one. The active period spans them all. A
  duration of ``P9999Y`` (3.x for "open-ended") becomes 0, the engine's open-ended form.
* Every payload type becomes one signal named by the type (signal type ``level``): the engine
  acts on SIMPLE alone and rejects, in its own words, an event that carries none.
* Targets: a 3.1.0 name may be this VEN, a resource or a group, so it becomes a ``ven_id``,
  ``resource_id`` and ``group_id`` candidate (any match selects); this VEN's own name alone
  reaches everything. 3.0.1 valuesMaps: VEN_NAME, RESOURCE_NAME and GROUP are read, other types
  are hints and ignored.
* Bounds: more than :data:`~..engine.event_parse.MAX_INTERVALS` intervals, ids over
  :data:`MAX_ID_CHARS` characters, wrong JSON types or out-of-range times refuse the event:
  the result is then ``{REFUSED_KEY: reason, "event_descriptor": {"event_id": id or None}}``.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ..engine.event_parse import MAX_INTERVALS
from ..engine.event_plan import CANCELLED
from ..engine.targets import MAX_TARGETS

REFUSED_KEY = "refused"
MAX_ID_CHARS = 128
UINT32_MAX = 2**32 - 1
# Payload types per interval and distinct types per event: a SIMPLE event needs one.
MAX_PAYLOADS = 16
_MAX_TEXT = 64  # times, durations and payload type names are short
_SHOW_MAX_CHARS = 60
_OPEN_ENDED_YEARS = 9999
_CANCEL_START = datetime(1, 1, 1, tzinfo=UTC)
_OPEN = timedelta.max  # marks an open-ended duration (compared by identity)
_DURATION = re.compile(
    r"P(?:(\d{1,9})Y)?(?:(\d{1,9})M)?(?:(\d{1,9})W)?(?:(\d{1,9})D)?"
    r"(?:T(?:(\d{1,9})H)?(?:(\d{1,9})M)?(?:(\d{1,12}(?:[.,]\d{1,9})?)S)?)?",
    re.ASCII,
)
_REPR = reprlib.Repr(maxlevel=3, maxstring=_SHOW_MAX_CHARS, maxother=_SHOW_MAX_CHARS)
_VALUES_MAP_KINDS = {"VEN_NAME": "ven_id", "RESOURCE_NAME": "resource_id", "GROUP": "group_id"}


class _RefusedError(Exception):
    """Internal: the event cannot be used; the message is shown to people."""


def refusal(engine_event: Mapping[str, Any]) -> str | None:
    """The reason :func:`to_engine_event` refused the event, or None when it did not."""
    reason = engine_event.get(REFUSED_KEY)
    return reason if isinstance(reason, str) else None


def event_id_of(event: object) -> str | None:
    """The event's id when it is usable (text of 1 to :data:`MAX_ID_CHARS` characters)."""
    if not isinstance(event, Mapping):
        return None
    value = event.get("id")
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_CHARS:
        return None
    return value.strip()


def to_engine_event(event: object, ven_name: str, previous_mod: int | None) -> dict[str, Any]:
    """Translate one 3.x event; a refused event carries :data:`REFUSED_KEY` (never raises)."""
    event_id = event_id_of(event)
    try:
        return _translate(event, event_id, ven_name, previous_mod)
    except _RefusedError as err:
        reason = str(err)
    except OverflowError:
        reason = "the event's times are out of range"
    except Exception as err:  # noqa: BLE001 - one odd event must never stop the poll
        reason = f"the event could not be read ({type(err).__name__})"
    return {REFUSED_KEY: reason, "event_descriptor": {"event_id": event_id}}


class AmbiguousObject:
    """Stands for a JSON object that names a key twice.

    Readers disagree on which value counts (Python keeps the last, others the first), so the
    object means nothing for sure: whatever holds it fails its type checks and is refused on its
    own (an event with such a payload is refused, the rest of the listing is used).
    """

    __slots__ = ("keys",)

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys

    def __repr__(self) -> str:
        return f"<an object naming {', '.join(map(repr, self.keys[:3]))} twice>"


def _not_object(what: str, value: object) -> _RefusedError:
    """Why ``value`` (where an object belongs) is refused, naming a repeated key if that is it."""
    if isinstance(value, AmbiguousObject):
        return _RefusedError(
            f"{what} names {', '.join(map(repr, value.keys[:3]))} twice "
            "(JSON readers disagree on which value counts)"
        )
    return _RefusedError(f"{what} is not a JSON object")


def _translate(
    event: object, event_id: str | None, ven_name: str, previous_mod: int | None
) -> dict[str, Any]:
    if not isinstance(event, Mapping):
        raise _not_object("the event", event)
    if event_id is None:
        raise _RefusedError(
            f"the event id {_show(event.get('id'))} is not text of 1 to {MAX_ID_CHARS} characters"
        )
    object_type = event.get("objectType")
    if object_type is not None and object_type != "EVENT":
        raise _RefusedError(f"the object type is {_show(object_type)}, not 'EVENT'")
    descriptor = {
        "event_id": event_id,
        "modification_number": _modification(event, previous_mod),
        "event_status": "none",
        "priority": _priority(event.get("priority")),
        "test_event": False,
    }
    period = _mapping(event.get("intervalPeriod"), "the event's intervalPeriod")
    if _is_cancel(period):
        descriptor["event_status"] = CANCELLED
        return {
            "event_descriptor": descriptor,
            "active_period": {"dtstart": _CANCEL_START, "duration": timedelta(0)},
            "event_signals": [],
            "targets": [],
        }
    start = _time(period.get("start"), "the event start") if period else None
    randomize = _duration(period.get("randomizeStart"), "randomizeStart") if period else None
    if randomize is _OPEN:
        raise _RefusedError("randomizeStart is open-ended")
    active_start, active_duration, signals = _signals(event.get("intervals"), start, period)
    return {
        "event_descriptor": descriptor,
        "active_period": {
            "dtstart": active_start,
            "duration": active_duration,
            "tolerance": {"tolerate": {"startafter": randomize}},
        },
        "event_signals": signals,
        "targets": _targets(event.get("targets"), ven_name),
    }


def _signals(
    raw: object, event_start: datetime | None, period: Mapping[str, Any] | None
) -> tuple[datetime, timedelta, list[dict[str, Any]]]:
    if not isinstance(raw, list) or not raw:
        raise _RefusedError("the event has no list of intervals")
    if len(raw) > MAX_INTERVALS:
        raise _RefusedError(
            f"the event has {len(raw):,} intervals; at most {MAX_INTERVALS:,} are accepted"
        )
    default_duration = period.get("duration") if period else None
    cursor = event_start
    by_type: dict[str, list[dict[str, Any]]] = {}
    first: datetime | None = None
    end: datetime | None = None
    for n, interval in enumerate(raw, 1):
        if not isinstance(interval, Mapping):
            raise _not_object(f"interval {n}", interval)
        own = _mapping(interval.get("intervalPeriod"), f"interval {n}'s intervalPeriod")
        own_start = own.get("start") if own else None
        begin = cursor if own_start is None else _time(own_start, f"interval {n} start")
        if begin is None:
            raise _RefusedError(f"interval {n} has no start (nor has the event)")
        raw_duration = own.get("duration", default_duration) if own else default_duration
        length = _duration(raw_duration, f"interval {n}")
        if length is None:
            raise _RefusedError(f"interval {n} has no duration (nor has the event)")
        if length is _OPEN and n != len(raw):
            raise _RefusedError(f"interval {n} is open-ended but is not the last interval")
        duration = timedelta(0) if length is _OPEN else length
        first = begin if first is None else first
        end = None if length is _OPEN else begin + length
        cursor = end
        for kind, value in _payloads(interval.get("payloads"), n):
            entries = by_type.setdefault(kind, [])
            if len(by_type) > MAX_PAYLOADS:
                raise _RefusedError(f"the event has more than {MAX_PAYLOADS} payload types")
            entries.append({"dtstart": begin, "duration": duration, "signal_payload": value})
    assert first is not None  # the list is not empty
    active_start = first if event_start is None else min(first, event_start)
    active_duration = timedelta(0) if end is None else max(end - active_start, timedelta(0))
    signals = [
        {"signal_name": kind, "signal_type": "level", "intervals": intervals}
        for kind, intervals in by_type.items()
    ]
    return active_start, active_duration, signals


def _payloads(raw: object, n: int) -> list[tuple[str, object]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _RefusedError(f"interval {n}'s payloads are not a list")
    if len(raw) > MAX_PAYLOADS:
        raise _RefusedError(f"interval {n} has more than {MAX_PAYLOADS} payloads")
    found: list[tuple[str, object]] = []
    for payload in raw:
        if not isinstance(payload, Mapping):
            raise _not_object(f"a payload of interval {n}", payload)
        kind = payload.get("type")
        if not isinstance(kind, str) or not kind.strip() or len(kind) > _MAX_TEXT:
            raise _RefusedError(f"interval {n} has a payload type {_show(kind)} that is unreadable")
        kind = kind.strip().upper()
        values = payload.get("values")
        if not isinstance(values, list):
            raise _RefusedError(f"interval {n}: the {kind} values are not a list")
        if kind == "SIMPLE":
            if len(values) != 1:
                raise _RefusedError(
                    f"interval {n}: the SIMPLE payload has {len(values):,} values, not one"
                )
            value = values[0]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _RefusedError(
                    f"interval {n}: the SIMPLE value {_show(value)} is not a number"
                )
        else:  # not acted on: a number when there is one, for diagnostics only
            value = next((v for v in values[:1] if _finite_number(v)), None)
        found.append((kind, value))
    return found


def _targets(raw: object, ven_name: str) -> list[dict[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _RefusedError(f"the event's targets {_show(raw)} are not a list")
    if len(raw) > MAX_TARGETS:
        raise _RefusedError(f"the event names more than {MAX_TARGETS:,} targets")
    names: list[str] = []
    typed: list[tuple[str, str]] = []
    for target in raw:
        if isinstance(target, str):
            names.append(_target_text(target))
        elif isinstance(target, Mapping):
            typed.extend(_values_map(target))
        else:
            raise _RefusedError(f"the event target {_show(target)} is unreadable")
    if ven_name in names or ("ven_id", ven_name) in typed:
        return [{"ven_id": ven_name}]  # this VEN: every point, whatever else is named
    out = [{kind: name} for name in names for kind in ("ven_id", "resource_id", "group_id")]
    out.extend({kind: name} for kind, name in typed)
    if len(out) > MAX_TARGETS:
        raise _RefusedError(f"the event names more than {MAX_TARGETS:,} targets")
    return out


def _values_map(target: Mapping[str, Any]) -> list[tuple[str, str]]:
    kind = target.get("type")
    if not isinstance(kind, str):
        raise _RefusedError(f"the event target type {_show(kind)} is not text")
    values = target.get("values")
    if not isinstance(values, list):
        raise _RefusedError(f"the event target {_show(kind)} has no list of values")
    field = _VALUES_MAP_KINDS.get(kind.strip().upper())
    if field is None:
        return []  # a location or other hint: not an id of ours
    if len(values) > MAX_TARGETS:
        raise _RefusedError(f"the event names more than {MAX_TARGETS:,} targets")
    return [(field, _target_text(value)) for value in values]


def _target_text(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**18:
        return str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_CHARS:
        raise _RefusedError(
            f"the event target {_show(value)} is not text of 1 to {MAX_ID_CHARS} characters"
        )
    return value.strip()


def _modification(event: Mapping[str, Any], previous: int | None) -> int:
    seconds = 0
    for key in ("modificationDateTime", "createdDateTime"):
        try:
            when = _time(event.get(key), key)
        except (_RefusedError, OverflowError):
            continue  # an unreadable time only loses the restart-stable number
        if when is not None:
            seconds = min(max(math.floor(when.timestamp()), 0), UINT32_MAX)
            break
    if previous is not None and seconds <= previous:
        seconds = min(previous + 1, UINT32_MAX)
    return seconds


def _priority(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _RefusedError(f"priority {_show(value)} is not a whole number from 0")
    return min(value + 1, UINT32_MAX)


def _is_cancel(period: Mapping[str, Any] | None) -> bool:
    if not period:
        return False
    try:
        start = _time(period.get("start"), "the event start")
        duration = _duration(period.get("duration"), "the event")
    except (_RefusedError, OverflowError):
        return False
    return start == _CANCEL_START and duration == timedelta(0)


def _mapping(value: object, what: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, AmbiguousObject):
        raise _not_object(what, value)
    if not isinstance(value, Mapping):
        raise _RefusedError(f"{what} {_show(value)} is not a JSON object")
    return value


def _time(value: object, what: str) -> datetime | None:
    """An RFC 3339 time with an offset, in UTC; None when absent."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise _RefusedError(f"{what} {_show(value)} is not an RFC 3339 time")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as err:
        raise _RefusedError(f"{what} {_show(value)} is not an RFC 3339 time") from err
    if parsed.utcoffset() is None:
        raise _RefusedError(f"{what} {_show(value)} has no time zone")
    return parsed.astimezone(UTC)


def _duration(value: object, what: str) -> timedelta | None:
    """An ISO 8601 duration; :data:`_OPEN` for ``P9999Y``; None when absent."""
    if value is None:
        return None
    text = value.strip() if isinstance(value, str) else ""
    match = _DURATION.fullmatch(text)
    if match is None or text == "P" or text.endswith("T"):
        raise _RefusedError(f"{what} has a duration {_show(value)} that is not ISO 8601")
    years, months, weeks, days, hours, minutes, seconds = match.groups()
    if years and int(years) >= _OPEN_ENDED_YEARS:
        return _OPEN
    if years or months:
        raise _RefusedError(
            f"{what} has the calendar duration {_show(value)}; use weeks, days or hours"
        )
    return timedelta(
        weeks=int(weeks or 0),
        days=int(days or 0),
        hours=int(hours or 0),
        minutes=int(minutes or 0),
        seconds=float((seconds or "0").replace(",", ".")),
    )


def _finite_number(value: object) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and (isinstance(value, int) or math.isfinite(value))
    )


def _show(value: object) -> str:
    """Quote untrusted input for a message: printable, one line, bounded; never raises."""
    try:
        text = _REPR.repr(value)  # bounded depth and length; escapes control characters
    except (ValueError, RecursionError):  # an int with more digits than Python prints
        text = f"<{type(value).__name__}>"
    if len(text) > _SHOW_MAX_CHARS:
        text = f"{text[: _SHOW_MAX_CHARS - 3]}..."
    return text
