"""Between engine values and BACnet: encoding writes, decoding priority arrays, errors.

Engine values are plain Python: float for analog, ``"active"``/``"inactive"`` for binary,
int for multi-state (see :mod:`..engine.points`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from bacpypes3.apdu import AbortPDU, ErrorPDU, ErrorRejectAbortNack, RejectPDU
from bacpypes3.basetypes import BinaryPV
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import Null, Real, Unsigned

from ..engine.addresses import PointError, normalise_address
from ..engine.addresses import routed_network as _routed_network
from ..engine.overrides import FailureKind
from ..engine.points import OverridePoint, PointValue, at_real_precision, fits_real

PRIORITY_SLOTS: Final = 16
MAX_UNSIGNED: Final = 2**32 - 1
_BINARY_STATES: Final = ("inactive", "active")  # BinaryPV 0 and 1


class ValueMismatchError(ValueError):
    """A value does not fit the object type it would be written to."""


def kind_of(object_type: str) -> str:
    """``analog``, ``binary`` or ``multi-state`` for a bacpypes3 object type name."""
    for kind in ("analog", "binary", "multi-state"):
        if object_type.startswith(kind + "-"):
            return kind
    raise ValueMismatchError(f"object type {object_type} is not commandable here")


def object_id(point: OverridePoint) -> str:
    """The object identifier in bacpypes3 text form, e.g. ``analog-value,302``."""
    return f"{point.object_type},{point.instance}"


def encode(point: OverridePoint, value: PointValue) -> Any:
    """Return the present-value primitive for ``value``; ValueMismatchError if it does not fit.

    Analog takes a finite float or int (Real), binary ``"active"``/``"inactive"``
    (BinaryPV), multi-state a state number >= 1 (Unsigned). Nothing is coerced from
    another type: a mismatch means the caller got the point wrong.
    """
    kind = kind_of(point.object_type)
    if kind == "analog":
        if isinstance(value, bool) or not isinstance(value, float | int):
            raise ValueMismatchError(f"{point.object_type} needs a number, not {value!r}")
        if not fits_real(value):
            # bacpypes3 would raise OverflowError deep in the encoder instead.
            raise ValueMismatchError(
                f"{point.object_type} needs a finite number a REAL can hold, not {value!r}"
            )
        return Real(float(value))
    if kind == "binary":
        if value not in _BINARY_STATES:
            raise ValueMismatchError(
                f"{point.object_type} needs 'active' or 'inactive', not {value!r}"
            )
        return BinaryPV(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_UNSIGNED:
        raise ValueMismatchError(f"{point.object_type} needs a state number >= 1, not {value!r}")
    return Unsigned(value)


def release_value() -> Any:
    """The value that relinquishes a slot: a Null passes through bacpypes3 uncast."""
    return Null(())


def decode_slot(point: OverridePoint, slot: Any) -> PointValue | None:
    """Turn one PriorityValue into an engine value; None for NULL."""
    if getattr(slot, "null", None) is not None:
        return None
    choice = getattr(slot, "_choice", None)
    raw = getattr(slot, choice) if choice else slot
    kind = kind_of(point.object_type)
    if isinstance(raw, int | float):  # Real, Enumerated, Unsigned, Boolean all subclass these
        number = float(raw)
        if kind == "analog":
            return number
        if number.is_integer():
            if kind == "binary" and number in (0, 1):
                return _BINARY_STATES[int(number)]
            if kind == "multi-state":
                return int(number)
    # Something this point's type should not hold; keep a readable form for the report.
    return f"{choice}:{raw}" if choice else str(raw)


def decode_priority_array(point: OverridePoint, array: Any) -> list[PointValue | None]:
    """Decode a read priority-array into 16 engine values; ValueError if it is not one."""
    if isinstance(array, str | bytes) or not hasattr(array, "__len__"):
        raise ValueError(f"expected a priority array, got {array!r}")
    slots = [decode_slot(point, slot) for slot in array]
    if len(slots) != PRIORITY_SLOTS:
        raise ValueError(f"priority array has {len(slots)} slots, not {PRIORITY_SLOTS}")
    return slots


def matches(point: OverridePoint, wanted: PointValue, held: PointValue | None) -> bool:
    """True when the slot holds ``wanted``; analog is compared at Real (float32) precision."""
    if held is None:
        return False
    if kind_of(point.object_type) == "analog":
        if not isinstance(held, float | int) or isinstance(wanted, str):
            return False
        return at_real_precision(float(wanted)) == at_real_precision(float(held))
    return held == wanted


def owner_above(slots: Sequence[PointValue | None], priority: int) -> int | None:
    """The highest-priority (lowest-numbered) non-NULL slot above ``priority``, if any."""
    for number, held in enumerate(slots[: priority - 1], 1):
        if held is not None:
            return number
    return None


def routed_network(address: str) -> int | None:
    """The network of a routed address (``network:MAC`` or ``network:IP[:port]``), else None."""
    return _routed_network(address)


def check_address(address: str) -> None:
    """Refuse anything but the forms of :mod:`..engine.addresses` (IP literals, no names).

    bacpypes3 resolves any other text with a blocking getaddrinfo inside the event loop.
    """
    try:
        normalise_address(address)
    except PointError as err:
        raise ValueError(str(err)) from None


def to_address(address: str) -> Address:
    """The bacpypes3 Address of a checked device address.

    ``2000:10.1.2.5[:port]`` becomes a remote station on network 2000 whose 6-byte MAC is
    the IP and port, as a BACnet/IP-to-BACnet/IP router expects; bacpypes3 reads the other
    forms directly.
    """
    check_address(address)
    return Address(address)


_ERROR_CODES: Final = {
    "write-access-denied": (FailureKind.ACCESS_DENIED, "the device refused the write"),
    "unknown-object": (FailureKind.UNKNOWN_OBJECT, "the device has no such object"),
    "unknown-route": (FailureKind.ERROR, "no route to the device's network"),
    "unknown-property": (FailureKind.ERROR, "the object lacks that property"),
}


def describe_bacnet_error(err: ErrorRejectAbortNack) -> tuple[FailureKind, str]:
    """Map an error, reject or abort from the device (or stack) to a failure kind."""
    if isinstance(err, AbortPDU):
        reason = str(err.apduAbortRejectReason)
        if reason == "no-response":
            return FailureKind.OFFLINE, "no response from the device (abort: no-response)"
        return FailureKind.ERROR, f"the request was aborted: {reason}"
    if isinstance(err, RejectPDU):
        return FailureKind.ERROR, f"the device rejected the request: {err.apduAbortRejectReason}"
    error_class = str(getattr(err, "errorClass", "") or "")
    error_code = str(getattr(err, "errorCode", "") or "")
    label = f"{error_class}/{error_code}"
    kind, text = _ERROR_CODES.get(error_code, (FailureKind.ERROR, "the device answered an error"))
    if not isinstance(err, ErrorPDU) and not error_code:
        return FailureKind.ERROR, f"the request failed: {err!r}"
    return kind, f"{text} ({label})"
