"""Override point definitions: which BACnet object to command, at which priority and to what.

A point is validated and normalised when it is built, so an :class:`OverridePoint` that
exists is always writable as defined.

Bulk text grammar (``parse_bulk``), one point per line, fields separated by commas,
spaces around fields ignored::

    address, object type, instance, priority, value1[, value2, value3][, name]

* Blank lines and lines starting with ``#`` are ignored. There are no trailing
  comments: ``#`` inside a line belongs to the field (``Zone #3``).
* address: an IPv4 literal ``192.168.1.20``, optionally with a port
  ``192.168.1.20:47809`` (the default port 47808 is dropped when normalising), or a
  routed device ``network:MAC`` such as ``12345:2`` (network 1-65534, MAC 0-254 in
  decimal or as ``0x02``). Host names are refused because resolving them would block,
  and IPv6 is not supported.
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
* Values: analog points take a finite number (``80``, ``72.5``, ``-3``); binary points
  take ``active``/``inactive``, ``on``/``off`` or ``1``/``0``, stored as
  ``active``/``inactive``; multi-state points take a state number from 1.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final

DEFAULT_PRIORITY: Final = 10
DEFAULT_PORT: Final = 47808
MAX_INSTANCE: Final = 4194302  # 4194303 is reserved for "uninitialised"
MAX_STATE: Final = 2**32 - 1

PointValue = float | int | str
"""float for analog, ``"active"``/``"inactive"`` for binary, int for multi-state."""

_KINDS: Final = {
    "analog-value": "analog",
    "analog-output": "analog",
    "binary-value": "binary",
    "binary-output": "binary",
    "multi-state-value": "multi-state",
    "multi-state-output": "multi-state",
}
_TYPE_ALIASES: Final = {
    **{name.replace("-", ""): name for name in _KINDS},
    "av": "analog-value",
    "ao": "analog-output",
    "bv": "binary-value",
    "bo": "binary-output",
    "msv": "multi-state-value",
    "mso": "multi-state-output",
}
_BINARY: Final = {
    "active": "active",
    "on": "active",
    "1": "active",
    "inactive": "inactive",
    "off": "inactive",
    "0": "inactive",
}
_ADDRESS_HELP: Final = (
    "use an IPv4 address such as 192.168.1.20 (optionally with :port) or a routed "
    "address network:MAC such as 12345:2; host names are not accepted"
)


class PointError(ValueError):
    """A point definition is invalid; ``field`` names the offending input when known."""

    def __init__(self, message: str, field: str | None = None) -> None:
        """Store the message and the field."""
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class LineError:
    """A problem on one line (1-based) of a text definition."""

    line: int
    message: str

    def __str__(self) -> str:
        """Return ``line N: message``."""
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True, slots=True, kw_only=True)
class OverridePoint:
    """One commandable BACnet object and the value it gets at SIMPLE levels 1, 2 and 3."""

    address: str
    object_type: str
    instance: int
    priority: int = DEFAULT_PRIORITY
    values: tuple[PointValue, PointValue, PointValue]
    name: str | None = None

    def __post_init__(self) -> None:
        """Validate every field and store the normalised forms; raises PointError."""
        address = normalise_address(self.address)
        object_type = normalise_object_type(self.object_type)
        instance = check_instance(self.instance)
        priority = check_priority(self.priority)
        if len(self.values) != 3:
            raise PointError("give exactly three values (levels 1, 2, 3)", "values")
        values = tuple(
            coerce_value(object_type, value, level) for level, value in enumerate(self.values, 1)
        )
        name = self.name.strip() if self.name is not None else None
        object.__setattr__(self, "address", address)
        object.__setattr__(self, "object_type", object_type)
        object.__setattr__(self, "instance", instance)
        object.__setattr__(self, "priority", priority)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "name", name or None)

    @property
    def kind(self) -> str:
        """``analog``, ``binary`` or ``multi-state``."""
        return _KINDS[self.object_type]

    @property
    def key(self) -> str:
        """Stable identity, e.g. ``127.0.0.5/analog-value,302``."""
        return f"{self.address}/{self.object_type},{self.instance}"


def value_for_level(point: OverridePoint, level: int) -> PointValue | None:
    """Return the value to write at ``level``; ``None`` at level 0 means release (NULL)."""
    if level == 0:
        return None
    if 1 <= level <= 3:
        return point.values[level - 1]
    raise ValueError(f"SIMPLE level {level} is outside 0-3")


def point_to_dict(point: OverridePoint) -> dict[str, object]:
    """The point as plain JSON (config entries and the ledger store it this way)."""
    return {
        "address": point.address,
        "object_type": point.object_type,
        "instance": point.instance,
        "priority": point.priority,
        "values": list(point.values),
        "name": point.name,
    }


def point_from_dict(raw: object) -> OverridePoint:
    """The JSON form back into a validated point; raises PointError, TypeError or ValueError."""
    if not isinstance(raw, dict):
        raise TypeError("no point definition")
    values = raw.get("values")
    if not isinstance(values, list | tuple) or len(values) != 3:
        raise ValueError("a point needs three values")
    instance, priority = raw.get("instance"), raw.get("priority")
    if not isinstance(instance, int) or isinstance(instance, bool):
        raise TypeError("the instance must be an integer")
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise TypeError("the priority must be an integer")
    name = raw.get("name")
    return OverridePoint(
        address=str(raw.get("address")),
        object_type=str(raw.get("object_type")),
        instance=instance,
        priority=priority,
        values=(values[0], values[1], values[2]),
        name=name if isinstance(name, str) else None,
    )


def normalise_address(text: str) -> str:
    """Validate a device address and return its normalised form; raises PointError."""
    text = text.strip()
    if "." in text:
        host, sep, port_text = text.partition(":")
        try:
            ip = ipaddress.IPv4Address(host)
        except ValueError:
            raise _address_error(text, f"'{host}' is not an IPv4 address") from None
        if ip.is_unspecified or ip.is_multicast or ip == ipaddress.IPv4Address("255.255.255.255"):
            raise _address_error(text, f"{ip} is not a device address")
        if not sep:
            return str(ip)
        port = _small_int(port_text)
        if port is None or not 1 <= port <= 65535:
            raise _address_error(text, f"port '{port_text}' is not a number 1-65535")
        return str(ip) if port == DEFAULT_PORT else f"{ip}:{port}"
    network_text, sep, mac_text = text.partition(":")
    if not sep:
        raise _address_error(text, "this is neither an IPv4 address nor network:MAC")
    network = _small_int(network_text)
    if network is None or not 1 <= network <= 65534:
        raise _address_error(text, f"network '{network_text}' is not a number 1-65534")
    if re.fullmatch(r"0[xX][0-9a-fA-F]{1,2}", mac_text):
        mac: int | None = int(mac_text, 16)
    else:
        mac = _small_int(mac_text)
    if mac is None or not 0 <= mac <= 254:
        raise _address_error(text, f"MAC '{mac_text}' is not a number 0-254 (or 0x00-0xFE)")
    return f"{network}:{mac}"


def normalise_object_type(text: str) -> str:
    """Return the bacpypes3 (hyphenated) name of a supported object type."""
    compact = re.sub(r"[-_\s]", "", text).lower()
    if compact in _TYPE_ALIASES:
        return _TYPE_ALIASES[compact]
    raise PointError(
        f"object type '{text}' cannot be overridden; use one of {', '.join(_KINDS)}",
        "object_type",
    )


def check_instance(instance: object) -> int:
    """Return a valid object instance number; raises PointError."""
    if isinstance(instance, bool) or not isinstance(instance, int):
        raise PointError(f"instance {instance!r} is not a whole number", "instance")
    if not 0 <= instance <= MAX_INSTANCE:
        raise PointError(f"instance {instance} is outside 0-{MAX_INSTANCE}", "instance")
    return instance


def check_priority(priority: object) -> int:
    """Return an acceptable BACnet write priority (8-16); raises PointError."""
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise PointError(f"priority {priority!r} is not a whole number 8-16", "priority")
    if 1 <= priority <= 7:
        raise PointError(
            f"priority {priority} is refused: priorities 1-7 rank above the manual operator "
            "(8) and are reserved for life safety (1-2), critical equipment control (5) and "
            "minimum on/off times (6); use 8-16 (default 10)",
            "priority",
        )
    if not 8 <= priority <= 16:
        raise PointError(
            f"priority {priority} does not exist; use 8-16 (default 10)",
            "priority",
        )
    return priority


def coerce_value(object_type: str, value: object, level: int | None = None) -> PointValue:
    """Return ``value`` in the form written to ``object_type``; raises PointError."""
    kind = _KINDS[normalise_object_type(object_type)]
    where = "value" if level is None else f"level {level} value"
    if kind == "analog":
        number = _number(value)
        if number is None:
            raise PointError(f"{where} {value!r} is not a number", "value")
        return number
    if kind == "binary":
        token = str(int(value)) if isinstance(value, int) else value
        if isinstance(token, str) and token.strip().lower() in _BINARY:
            return _BINARY[token.strip().lower()]
        raise PointError(f"{where} {value!r} is not active/inactive (on/off, 1/0)", "value")
    state = _small_int(value.strip()) if isinstance(value, str) else value
    if isinstance(state, bool) or not isinstance(state, int) or not 1 <= state <= MAX_STATE:
        raise PointError(f"{where} {value!r} is not a state number (1 or more)", "value")
    return state


def parse_bulk(text: str) -> tuple[list[OverridePoint], list[LineError]]:
    """Parse the bulk grammar described in the module docstring."""
    return _collect((lineno, _attempt(_parse_line, line)) for lineno, line in _content_lines(text))


def expand_seed(
    addresses_text: str,
    object_type: str,
    instance: int,
    priority: int,
    value: object,
    *,
    name: str | None = None,
) -> tuple[list[OverridePoint], list[LineError]]:
    """Apply one point definition (one value for every level) to many device addresses.

    Addresses are separated by newlines and/or commas; blank entries and ``#`` lines
    are skipped. The shared definition is checked first and raises PointError (its
    ``field`` says which input); address problems come back as line errors.
    """
    object_type = normalise_object_type(object_type)
    check_instance(instance)
    check_priority(priority)
    level_value = coerce_value(object_type, value)

    def build(address: str) -> OverridePoint:
        return OverridePoint(
            address=address,
            object_type=object_type,
            instance=instance,
            priority=priority,
            values=(level_value, level_value, level_value),
            name=name,
        )

    return _collect(
        (lineno, _attempt(build, address))
        for lineno, line in _content_lines(addresses_text)
        for address in filter(None, (part.strip() for part in line.split(",")))
    )


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
    if not 5 <= len(fields) <= 8:
        raise PointError(
            f"found {len(fields)} fields; expected: address, object type, instance, "
            "priority, then one value or three values, then an optional name "
            "(names cannot contain commas)"
        )
    address, type_text, instance_text, priority_text, *tail = fields
    object_type = normalise_object_type(type_text)
    instance = _small_int(instance_text)
    if instance is None:
        raise PointError(f"instance '{instance_text}' is not a whole number", "instance")
    priority = DEFAULT_PRIORITY if not priority_text else _small_int(priority_text)
    if priority is None:
        raise PointError(f"priority '{priority_text}' is not a whole number 8-16", "priority")
    name = tail.pop() if len(tail) in (2, 4) else None
    if name is not None and len(tail) == 1 and _is_value(object_type, name):
        raise PointError(
            f"two values given ({tail[0]}, {name}); give one value for all levels or three "
            "values for levels 1, 2, 3",
            "value",
        )
    values = (tail[0], tail[0], tail[0]) if len(tail) == 1 else (tail[0], tail[1], tail[2])
    for level, text in enumerate(values, 1):
        if not text:
            raise PointError(f"level {level} value is empty", "value")
    return OverridePoint(
        address=address,
        object_type=object_type,
        instance=instance,
        priority=priority,
        values=values,
        name=name,
    )


def _attempt[**P, T](fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | str:
    """Run ``fn``; a PointError becomes its message."""
    try:
        return fn(*args, **kwargs)
    except PointError as err:
        return str(err)


def _is_value(object_type: str, text: str) -> bool:
    try:
        coerce_value(object_type, text)
    except PointError:
        return False
    return True


def _duplicate(point: OverridePoint, first_line: int) -> str:
    return f"{point.key} is already defined on line {first_line} (same device, object and instance)"


def _address_error(text: str, detail: str) -> PointError:
    return PointError(f"address '{text}': {detail}; {_ADDRESS_HELP}", "address")


def _small_int(text: str) -> int | None:
    """Parse plain decimal digits (no sign, no spaces, at most 10 digits)."""
    return int(text) if re.fullmatch(r"[0-9]{1,10}", text) else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None
