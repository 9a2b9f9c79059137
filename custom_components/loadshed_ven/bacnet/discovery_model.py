"""What discovery reports: devices, objects, failures and progress, and how values are read.

The properties read for each kind of object are here too, with how a read value (or its
absence) becomes a field of :class:`DiscoveredObject`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from bacpypes3.primitivedata import Enumerated, Null

from .discovery_reads import PropertyKey, ReadError

LISTED_TYPES: Final = frozenset(
    f"{kind}-{role}"
    for kind in ("analog", "binary", "multi-state")
    for role in ("input", "output", "value")
)
DEVICE_PROPS: Final[tuple[PropertyKey, ...]] = (
    ("object-name", None),
    ("vendor-name", None),
    ("model-name", None),
)
COMMON_PROPS: Final[tuple[PropertyKey, ...]] = (
    ("object-name", None),
    ("description", None),
    ("present-value", None),
    # Present exactly when the present value is commandable (it goes with the priority
    # array), and cheaper to ask for: some stacks answer priority-array[0] with a
    # non-standard error or encoding (bac-py 1.5.7 does both). A NULL answer (bac-py's
    # for an optional property it does not have) means not commandable.
    ("relinquish-default", None),
)
ANALOG_PROPS: Final = (("units", None), ("min-pres-value", None), ("max-pres-value", None))
MULTI_STATE_PROPS: Final = (("number-of-states", None),)

type PresentValue = float | int | str
"""float (analog), ``"active"``/``"inactive"`` (binary), state number (multi-state)."""


class DiscoveryError(Exception):
    """Discovery cannot be done as asked (bad address or limits, no way to broadcast)."""


@dataclass(frozen=True)
class DiscoveryProgress:
    """How far a discovery is: ``done`` of ``total`` in ``phase``.

    Phases: ``devices`` (reading found devices' names), ``object-list`` (reading a
    device's object list one index at a time) and ``objects`` (reading the objects).
    """

    phase: str
    done: int
    total: int


type Progress = Callable[[DiscoveryProgress], None]


@dataclass(frozen=True)
class DiscoveredDevice:
    """A device that answered a Who-Is; name, vendor and model are None when unread."""

    instance: int
    address: str  # as the rest of the product writes it: 127.0.0.5, 127.0.0.5:47809, 12345:2
    name: str | None = None
    vendor: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class DiscoveredObject:
    """One object of a device, with what could be read of it.

    ``units`` is bacpypes3's name (``degrees-fahrenheit``); ``min_value``/``max_value`` are
    min/max-pres-value for analog objects and 1 / number-of-states for multi-state ones.
    ``commandable`` objects have a priority array; ``relinquish_default`` is the value they
    return to when every slot is released.
    """

    object_type: str  # bacpypes3 hyphenated name, e.g. analog-value
    instance: int
    name: str | None = None
    units: str | None = None
    present_value: PresentValue | None = None
    min_value: float | None = None
    max_value: float | None = None
    commandable: bool = False
    description: str | None = None
    relinquish_default: PresentValue | None = None

    @property
    def object_id(self) -> str:
        """``analog-value,302``."""
        return f"{self.object_type},{self.instance}"


@dataclass(frozen=True)
class ReadFailure:
    """What could not be read: ``object_id`` (``device,N`` for the object list) and why."""

    object_id: str
    reason: str


@dataclass(frozen=True)
class ObjectListResult:
    """A device's objects worth listing, and what could not be read.

    ``listed`` counts every identifier read from the object list (all types);
    ``per_index`` is True when the list had to be read one index at a time.
    """

    device: DiscoveredDevice
    objects: tuple[DiscoveredObject, ...]
    failures: tuple[ReadFailure, ...] = ()
    listed: int = 0
    per_index: bool = False

    @property
    def complete(self) -> bool:
        """True when everything was read."""
        return not self.failures


def text_of(value: Any) -> str | None:
    """A name or description; None when unread or NULL (how some stacks serve an unset one)."""
    return None if value is None or isinstance(value, ReadError | Null) else str(value)


def identifier(value: Any) -> tuple[str, int]:
    """An ObjectIdentifier as (hyphenated type name, instance)."""
    object_type, instance = value
    return str(object_type), int(instance)


def _value(values: dict[PropertyKey, Any], prop: str, index: int | None = None) -> Any:
    value = values.get((prop, index))
    return None if isinstance(value, ReadError) else value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _present(value: Any) -> PresentValue | None:
    """Present value in engine terms: BinaryPV by name, Real as float, Unsigned as int."""
    if isinstance(value, Enumerated):
        return str(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        return int(value)
    return None


def discovered_object(oid: tuple[str, int], values: dict[PropertyKey, Any]) -> DiscoveredObject:
    """The object as read: unread, absent and NULL properties become None."""
    object_type, instance = oid
    default = _present(_value(values, "relinquish-default"))
    low, high = _number(_value(values, "min-pres-value")), _number(_value(values, "max-pres-value"))
    states = _number(_value(values, "number-of-states"))
    if object_type.startswith("multi-state-") and states is not None:
        low, high = 1.0, states
    return DiscoveredObject(
        object_type=object_type,
        instance=instance,
        name=text_of(_value(values, "object-name")),
        units=text_of(_value(values, "units")),
        present_value=_present(_value(values, "present-value")),
        min_value=low,
        max_value=high,
        commandable=default is not None,
        description=text_of(_value(values, "description")),
        relinquish_default=default,
    )
