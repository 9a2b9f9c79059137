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
_LIMITED_BROADCAST: Final = ipaddress.IPv4Address("255.255.255.255")
_TYPE_SEPARATORS: Final = re.compile(r"[-_\s]")
_DIGITS: Final = re.compile(r"[0-9]{1,10}")
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
        if ip.is_unspecified or ip.is_multicast or ip == _LIMITED_BROADCAST:
            raise _address_error(text, f"{ip} is not a device address")
        if not sep:
            return str(ip)
        port = small_int(port_text)
        if port is None or not 1 <= port <= 65535:
            raise _address_error(text, f"port '{port_text}' is not a number 1-65535")
        return str(ip) if port == DEFAULT_PORT else f"{ip}:{port}"
    network_text, sep, mac_text = text.partition(":")
    if not sep:
        raise _address_error(text, "this is neither an IPv4 address nor network:MAC")
    network = small_int(network_text)
    if network is None or not 1 <= network <= 65534:
        raise _address_error(text, f"network '{network_text}' is not a number 1-65534")
    if re.fullmatch(r"0[xX][0-9a-fA-F]{1,2}", mac_text):
        mac: int | None = int(mac_text, 16)
    else:
        mac = small_int(mac_text)
    if mac is None or not 0 <= mac <= 254:
        raise _address_error(text, f"MAC '{mac_text}' is not a number 0-254 (or 0x00-0xFE)")
    return f"{network}:{mac}"


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


def _address_error(text: str, detail: str) -> PointError:
    return PointError(f"address '{text}': {detail}; {_ADDRESS_HELP}", "address")


def small_int(text: str) -> int | None:
    """Parse plain decimal digits (no sign, no spaces, at most 10 digits)."""
    return int(text) if _DIGITS.fullmatch(text) else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None
