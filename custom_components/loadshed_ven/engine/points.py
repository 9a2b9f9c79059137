"""Override point definitions: which BACnet object to command, at which priority and to what.

A point is validated and normalised when it is built: an :class:`OverridePoint` that exists has
a valid address, object type, instance and priority, and values of the right kind.
:func:`check_configured` adds what configuration must pass as well (analog values that fit a
BACnet REAL; not the network or directed-broadcast address of the VEN's subnet). Those checks
stay out of :class:`OverridePoint` itself so that an override already recorded stays readable.

The text forms the config flow takes are parsed in :mod:`.point_text`.
"""

from __future__ import annotations

import ipaddress
import math
import re
import struct
from dataclasses import dataclass
from typing import Final

# Address parsing lives in .addresses; these names stay importable from here (mypy needs
# the explicit "as" to treat them as re-exported).
from .addresses import PointError as PointError  # noqa: PLC0414
from .addresses import address_error as _address_error
from .addresses import normalise_address as normalise_address  # noqa: PLC0414
from .addresses import small_int as small_int  # noqa: PLC0414

DEFAULT_PRIORITY: Final = 10
DEFAULT_PORT: Final = 47808
MAX_INSTANCE: Final = 4194302  # 4194303 is reserved for "uninitialised"
MAX_STATE: Final = 2**32 - 1
MAX_REAL: Final = 3.4028234663852886e38  # the largest finite IEEE-754 single
# /31 and /32 have no network or broadcast address (RFC 3021): every address is a host.
MAX_BROADCAST_PREFIX: Final = 30

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
_TYPE_SEPARATORS: Final = re.compile(r"[-_\s]")


@dataclass(frozen=True, slots=True, kw_only=True)
class OverridePoint:
    """One commandable BACnet object and the value it gets at SIMPLE levels 1, 2 and 3.

    With ``offset`` (analog only) the values are deltas added to the value in force when the
    shed starts. ``min_value``/``max_value`` are the object's limits: an absolute value beyond
    them is refused here, an offset target when it is computed (:func:`offset_target`).
    """

    address: str
    object_type: str
    instance: int
    priority: int = DEFAULT_PRIORITY
    values: tuple[PointValue, PointValue, PointValue]
    name: str | None = None
    offset: bool = False
    min_value: float | None = None
    max_value: float | None = None

    def __post_init__(self) -> None:
        """Validate every field and store the normalised forms; raises PointError."""
        address = normalise_address(self.address)
        object_type = normalise_object_type(self.object_type)
        instance = check_instance(self.instance)
        priority = check_priority(self.priority)
        if len(self.values) != 3:
            raise PointError("give exactly three values (levels 1, 2, 3)", "values")
        low, high = _limits(_KINDS[object_type], self.offset, self.min_value, self.max_value)
        values = tuple(
            coerce_value(object_type, value, level) for level, value in enumerate(self.values, 1)
        )
        name = self.name.strip() if self.name is not None else None
        if not self.offset:
            for level, value in enumerate(values, 1):
                _check_within(level, value, low, high)
        object.__setattr__(self, "min_value", low)
        object.__setattr__(self, "max_value", high)
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

    @property
    def label(self) -> str:
        """How the point is named to people: its configured name, else type and instance."""
        return self.name or f"{self.object_type} {self.instance}"


def value_for_level(point: OverridePoint, level: int) -> PointValue | None:
    """Return the value to write at ``level``; ``None`` at level 0 means release (NULL)."""
    if level == 0:
        return None
    if 1 <= level <= 3:
        return point.values[level - 1]
    raise ValueError(f"SIMPLE level {level} is outside 0-3")


def offset_target(point: OverridePoint, level: int, base: float) -> float:
    """What an offset point writes at ``level`` (1-3): ``base`` plus the level's delta.

    Rounded to a BACnet REAL; raises PointError when it falls outside the point's limits
    (refused, never clamped: a clamped value is not what the strategy asked for).
    """
    delta = point.values[level - 1]
    target = at_real_precision(base + float(delta))
    if not fits_real(target):
        raise PointError(
            f"level {level} target {base:g} {delta:+g} is beyond what a BACnet REAL holds", "value"
        )
    _check_within(level, target, point.min_value, point.max_value, f" ({base:g} {delta:+g})")
    return target


def point_to_dict(point: OverridePoint) -> dict[str, object]:
    """The point as plain JSON (config entries and the ledger store it this way).

    ``offset``, ``min`` and ``max`` appear only when set, so absolute points keep their form.
    """
    raw: dict[str, object] = {
        "address": point.address,
        "object_type": point.object_type,
        "instance": point.instance,
        "priority": point.priority,
        "values": list(point.values),
        "name": point.name,
    }
    if point.offset:
        raw["offset"] = True
    if point.min_value is not None:
        raw["min"] = point.min_value
    if point.max_value is not None:
        raw["max"] = point.max_value
    return raw


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
    offset = raw.get("offset", False)
    if not isinstance(offset, bool):
        raise TypeError("offset must be true or false")
    return OverridePoint(
        address=str(raw.get("address")),
        object_type=str(raw.get("object_type")),
        instance=instance,
        priority=priority,
        values=(values[0], values[1], values[2]),
        name=name if isinstance(name, str) else None,
        offset=offset,
        min_value=_stored_limit(raw, "min"),
        max_value=_stored_limit(raw, "max"),
    )


def _stored_limit(raw: dict[str, object], name: str) -> float | None:
    limit = raw.get(name)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int | float)):
        raise TypeError(f"the {name} limit must be a number")
    return limit


def normalise_object_type(text: str) -> str:
    """Return the bacpypes3 (hyphenated) name of a supported object type."""
    if text in _KINDS:  # already normal: the common case, once per field of every point
        return text
    compact = _TYPE_SEPARATORS.sub("", text).lower()
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
    state = small_int(value.strip()) if isinstance(value, str) else value
    if isinstance(state, bool) or not isinstance(state, int) or not 1 <= state <= MAX_STATE:
        raise PointError(f"{where} {value!r} is not a state number (1 or more)", "value")
    return state


def _limits(
    kind: str, offset: object, low: object, high: object
) -> tuple[float | None, float | None]:
    """Check the offset flag and the limits of a point of ``kind``; return the limits as floats."""
    if not isinstance(offset, bool):
        raise PointError(f"offset {offset!r} is not true or false", "offset")
    if kind != "analog" and (offset or low is not None or high is not None):
        what = "offsets" if offset else "min/max limits"
        raise PointError(f"{what} apply to analog points only, not {kind} ones", "offset")
    limits = []
    for label, limit in (("minimum", low), ("maximum", high)):
        number = None if limit is None else _number(limit)
        if limit is not None and number is None:
            raise PointError(f"{label} {limit!r} is not a number", "value")
        limits.append(number)
    if limits[0] is not None and limits[1] is not None and limits[0] > limits[1]:
        raise PointError(f"minimum {limits[0]:g} is above maximum {limits[1]:g}", "value")
    return limits[0], limits[1]


def _check_within(
    level: int, value: PointValue, low: float | None, high: float | None, how: str = ""
) -> None:
    """Refuse a level's value outside [low, high]; ``how`` says how it was computed."""
    if low is not None and isinstance(value, float) and value < low:
        raise PointError(
            f"level {level} value {value:g}{how} is below the point's minimum {low:g}", "value"
        )
    if high is not None and isinstance(value, float) and value > high:
        raise PointError(
            f"level {level} value {value:g}{how} is above the point's maximum {high:g}", "value"
        )


def check_configured(
    point: OverridePoint, local_network: ipaddress.IPv4Network | None = None
) -> OverridePoint:
    """Return ``point`` if it may be configured; raises PointError naming the problem.

    Analog values must fit a BACnet REAL; an IPv4 device address must not be the network
    or directed-broadcast address of ``local_network`` (the BACnet interface's subnet).
    """
    if point.kind == "analog":
        for level, value in enumerate(point.values, 1):
            if not fits_real(value):
                raise PointError(
                    f"level {level} value {value!r} is beyond what a BACnet REAL holds "
                    f"(single precision, at most ±{MAX_REAL:.7g})",
                    "value",
                )
    if local_network is not None and local_network.prefixlen <= MAX_BROADCAST_PREFIX:
        # The address is normalised, so comparing text is exact (and cheap for 5,000 points).
        host = point.address.partition(":")[0]
        for special, what in (
            (local_network.broadcast_address, "broadcast"),
            (local_network.network_address, "network"),
        ):
            if host == str(special):
                raise _address_error(
                    point.address, f"{special} is the {what} address of {local_network}"
                )
    return point


def as_real(number: float) -> float | None:
    """``number`` rounded to an IEEE-754 single (a BACnet REAL); None beyond its range."""
    try:
        value: float = struct.unpack(">f", struct.pack(">f", number))[0]
    except (OverflowError, struct.error):
        return None
    return value


def at_real_precision(number: float) -> float:
    """``number`` as a BACnet REAL holds it (compare values so); itself beyond a REAL's range."""
    real = as_real(number)
    return number if real is None else real


def fits_real(value: object) -> bool:
    """Whether ``value`` is a number an IEEE-754 single (a BACnet REAL) can hold."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    real = as_real(value)
    return real is not None and math.isfinite(real)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None
