"""The text forms of override points the config flow takes, parsed into points.

Bulk text grammar (:func:`parse_bulk`), one point per line, fields separated by commas,
spaces around fields ignored::

    address, object type, instance, priority, value1[, value2, value3][, name]

* Blank lines and lines starting with ``#`` are ignored. There are no trailing
  comments: ``#`` inside a line belongs to the field (``Zone #3``).
* address: an IPv4 literal ``192.168.1.20``, optionally with a port
  ``192.168.1.20:47809`` (the default port 47808 is dropped when normalising), or a
  routed device ``network:MAC`` such as ``12345:2`` (network 1-65534, MAC 0-254 in
  decimal or as ``0x02``), or a device behind a BACnet/IP-to-IP router
  ``network:IP[:port]`` such as ``2000:10.1.2.5`` (its 6-byte MAC is the IP and port).
  Host names are refused because resolving them would block, and IPv6 is not supported.
* object type: analog-value, analog-output, binary-value, binary-output,
  multi-state-value or multi-state-output, in any case, with or without ``-``/``_``/
  spaces (so BAC0's ``analogValue`` works), or the short forms AV, AO, BV, BO, MSV, MSO.
* instance: 0-4194302.
* priority: 8-16; left empty it is 10. 1-7 are refused (life safety, critical
  equipment, above the manual operator).
* After the priority come ONE value (used for levels 1, 2 and 3) or THREE values
  (levels 1, 2, 3), then optionally a name, so the field count decides::

      5 fields: value              6 fields: value, name
      7 fields: v1, v2, v3         8 fields: v1, v2, v3, name

  With 6 fields the last one must not itself be a valid value, which catches a
  forgotten third value. A name cannot contain commas.
* Values: analog points take a finite number that a BACnet REAL (IEEE-754 single
  precision, at most about ±3.4e38) can hold (``80``, ``72.5``, ``-3``); binary points
  take ``active``/``inactive``, ``on``/``off`` or ``1``/``0``, stored as
  ``active``/``inactive``; multi-state points take a state number from 1.
* Offsets (analog points only): a value written ``offset`` and a signed number
  (``offset +2``, ``offset -1.5``) is added to the value in force when the shed starts
  instead of being written as it is. The sign is required, so an offset never reads
  like a negative absolute value; the values of a line are all offsets or none::

      192.168.1.20, AV, 302, 10, offset +2, offset +4, offset +6, Zone 3

* Limits (analog points only): fields ``min N`` and ``max N`` anywhere after the
  priority give the object's lowest and highest value. An absolute value beyond them is
  refused here; an offset target beyond them is refused (not clamped) when it is computed.
  They do not count among the fields above (a name cannot start with ``min``/``max``
  followed by a space and one word).
* Given the local interface's network (``parse_bulk(text, local_network)``), a device
  address may not be that network's own address or its directed-broadcast address:
  a write there would reach every device on the subnet, or none.

:func:`point_line` writes a point back as such a line. The seed's way (:func:`expand_seed`)
applies one definition to a list of addresses.
Each problem is reported with its line, and every line is parsed once (duplicates are found
with a dictionary), so thousands of lines take a fraction of a second.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from .points import (
    DEFAULT_PRIORITY,
    MAX_REAL,
    OverridePoint,
    PointError,
    check_configured,
    check_instance,
    check_priority,
    coerce_value,
    fits_real,
    normalise_object_type,
    small_int,
)

_OFFSET: Final = re.compile(r"offset\s*(?P<delta>.*)", re.IGNORECASE)
_LIMIT: Final = re.compile(r"(?P<which>min|max)\s+(?P<limit>\S+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class LineError:
    """A problem on one line (1-based) of a text definition."""

    line: int
    message: str

    def __str__(self) -> str:
        """Return ``line N: message``."""
        return f"line {self.line}: {self.message}"


def parse_bulk(
    text: str, local_network: ipaddress.IPv4Network | None = None
) -> tuple[list[OverridePoint], list[LineError]]:
    """Parse the bulk grammar described in the module docstring."""

    def parse(line: str) -> OverridePoint:
        return check_configured(_parse_line(line), local_network)

    return _collect((lineno, _attempt(parse, line)) for lineno, line in _content_lines(text))


def expand_seed(
    addresses_text: str,
    object_type: str,
    instance: int,
    priority: int,
    value: object,
    *,
    name: str | None = None,
    local_network: ipaddress.IPv4Network | None = None,
) -> tuple[list[OverridePoint], list[LineError]]:
    """Apply one point definition (one value for every level) to many device addresses.

    The value may be an offset (``offset +2``) as in the bulk grammar. Addresses are
    separated by newlines and/or commas; blank entries and ``#`` lines are skipped. The
    shared definition is checked first and raises PointError (its ``field`` says which
    input); address problems come back as line errors.
    """
    object_type = normalise_object_type(object_type)
    check_instance(instance)
    check_priority(priority)
    offset, value = _value_text(value) if isinstance(value, str) else (False, value)
    level_value = coerce_value(object_type, value)
    if isinstance(level_value, float) and not fits_real(level_value):  # analog
        raise PointError(
            f"value {value!r} is beyond what a BACnet REAL holds "
            f"(single precision, at most ±{MAX_REAL:.7g})",
            "value",
        )

    def build(address: str) -> OverridePoint:
        point = OverridePoint(
            address=address,
            object_type=object_type,
            instance=instance,
            priority=priority,
            values=(level_value, level_value, level_value),
            name=name,
            offset=offset,
        )
        return check_configured(point, local_network)

    return _collect(
        (lineno, _attempt(build, address))
        for lineno, line in _content_lines(addresses_text)
        for address in filter(None, (part.strip() for part in line.split(",")))
    )


def point_line(point: OverridePoint) -> str:
    """The bulk text line that parses back into ``point`` (offsets and limits included)."""
    fields = [point.address, point.object_type, str(point.instance), str(point.priority)]
    if point.offset:
        fields += [f"offset {value:+}" for value in point.values]
    else:
        fields += [str(value) for value in point.values]
    if point.name:
        fields.append(point.name)
    if point.min_value is not None:
        fields.append(f"min {point.min_value}")
    if point.max_value is not None:
        fields.append(f"max {point.max_value}")
    return ", ".join(fields)


def _content_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, stripped line), skipping blank and ``#`` lines."""
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield lineno, stripped


def _collect(
    results: Iterable[tuple[int, OverridePoint | str]],
) -> tuple[list[OverridePoint], list[LineError]]:
    """Split parse results into points and line errors, refusing duplicate keys."""
    points: list[OverridePoint] = []
    errors: list[LineError] = []
    seen: dict[str, int] = {}
    for lineno, result in results:
        if isinstance(result, str):
            errors.append(LineError(lineno, result))
        elif result.key in seen:
            errors.append(LineError(lineno, _duplicate(result, seen[result.key])))
        else:
            seen[result.key] = lineno
            points.append(result)
    return points, errors


def _parse_line(line: str) -> OverridePoint:
    fields = [field.strip() for field in line.split(",")]
    limits: dict[str, float] = {}
    for field in fields[4:]:
        if match := _LIMIT.fullmatch(field):
            which = match["which"].lower()
            if which in limits:
                raise PointError(f"{which} is given twice", "value")
            limits[which] = _limit(field, match["limit"])
    fields = fields[:4] + [field for field in fields[4:] if not _LIMIT.fullmatch(field)]
    if not 5 <= len(fields) <= 8:
        raise PointError(
            f"found {len(fields)} fields; expected: address, object type, instance, "
            "priority, then one value or three values, then an optional name "
            "(names cannot contain commas)"
        )
    address, type_text, instance_text, priority_text, *tail = fields
    object_type = normalise_object_type(type_text)
    instance = small_int(instance_text)
    if instance is None:
        raise PointError(f"instance '{instance_text}' is not a whole number", "instance")
    priority = DEFAULT_PRIORITY if not priority_text else small_int(priority_text)
    if priority is None:
        raise PointError(f"priority '{priority_text}' is not a whole number 8-16", "priority")
    name = tail.pop() if len(tail) in (2, 4) else None
    if name is not None and len(tail) == 1 and _is_value(object_type, name):
        raise PointError(
            f"two values given ({tail[0]}, {name}); give one value for all levels or three "
            "values for levels 1, 2, 3",
            "value",
        )
    texts = (tail[0], tail[0], tail[0]) if len(tail) == 1 else (tail[0], tail[1], tail[2])
    for level, text in enumerate(texts, 1):
        if not text:
            raise PointError(f"level {level} value is empty", "value")
    parsed = [_value_text(text) for text in texts]
    offset = parsed[0][0]
    if any(is_offset != offset for is_offset, _ in parsed):
        raise PointError("give every level an offset (offset +2) or none", "value")
    return OverridePoint(
        address=address,
        object_type=object_type,
        instance=instance,
        priority=priority,
        values=(parsed[0][1], parsed[1][1], parsed[2][1]),
        name=name,
        offset=offset,
        min_value=limits.get("min"),
        max_value=limits.get("max"),
    )


def _value_text(text: str) -> tuple[bool, str]:
    """Whether ``text`` is an offset, and the value (the signed delta of an offset)."""
    match = _OFFSET.fullmatch(text)
    if match is None:
        return False, text
    delta = match["delta"]
    if not delta.startswith(("+", "-")):
        raise PointError(f"write '{text}' with its sign: offset +2 or offset -2", "value")
    return True, delta


def _limit(field: str, text: str) -> float:
    """The number of a ``min``/``max`` field (checked for finiteness by the point)."""
    try:
        return float(text)
    except ValueError:
        raise PointError(f"'{field}': '{text}' is not a number", "value") from None


def _attempt[**P, T](fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | str:
    """Run ``fn``; a PointError becomes its message."""
    try:
        return fn(*args, **kwargs)
    except PointError as err:
        return str(err)


def _is_value(object_type: str, text: str) -> bool:
    try:
        coerce_value(object_type, _value_text(text)[1])
    except PointError:
        return False
    return True


def _duplicate(point: OverridePoint, first_line: int) -> str:
    return f"{point.key} is already defined on line {first_line} (same device, object and instance)"
