"""What the discovery steps of the controller flow offer and check, without Home Assistant.

Discovered devices and objects become select options; the chosen objects are grouped by unit
(every °F setpoint shares one form of level values) and each group's answers become override
points, refused with the object's name and limits when a value falls outside them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .bacnet.discovery import DiscoveredDevice, DiscoveredObject, ObjectListResult
from .const import CONF_GROUP_ID, CONF_RESOURCE_ID
from .engine.points import (
    DEFAULT_PRIORITY,
    OverridePoint,
    PointError,
    PointValue,
    check_configured,
)
from .engine.units import LEVEL_DEFAULTS, UNIT_NAMES, LevelDefault, caution
from .validation import FlowError

MODE: Final = "mode"
MODE_ABSOLUTE: Final = "absolute"
MODE_OFFSET: Final = "offset"
LEVELS: Final = ("level_1", "level_2", "level_3")
PRIORITY: Final = "priority"

# The object types an override point can command.
OVERRIDABLE: Final = frozenset(
    f"{kind}-{role}" for kind in ("analog", "binary", "multi-state") for role in ("output", "value")
)
_UNIT_CODES: Final = {name: code for code, name in UNIT_NAMES.items()}


def device_label(device: DiscoveredDevice) -> str:
    """``1002 Sim Controller 1002 (Vendor Model) at 127.0.0.3``; unread parts left out."""
    maker = " ".join(part for part in (device.vendor, device.model) if part)
    parts = [str(device.instance), device.name or "", f"({maker})" if maker else ""]
    return f"{' '.join(p for p in parts if p)} at {device.address}"


def _number(value: float) -> str:
    return f"{value:g}"


def object_label(obj: DiscoveredObject) -> str:
    """``Zone Cooling Setpoint (analog-value 302), degrees-fahrenheit, now 72, 55-90``."""
    parts = [f"{obj.name or obj.object_id} ({obj.object_type} {obj.instance})"]
    if obj.units:
        parts.append(obj.units)
    if obj.present_value is not None:
        shown = obj.present_value
        parts.append(f"now {_number(shown) if isinstance(shown, float) else shown}")
    if obj.min_value is not None or obj.max_value is not None:
        low = "" if obj.min_value is None else _number(obj.min_value)
        high = "" if obj.max_value is None else _number(obj.max_value)
        parts.append(f"{low}-{high}")
    return ", ".join(parts)


def overridable(result: ObjectListResult) -> list[DiscoveredObject]:
    """The objects a point can be made of: commandable, of a type a point can command."""
    return [o for o in result.objects if o.commandable and o.object_type in OVERRIDABLE]


def kind_of(obj: DiscoveredObject) -> str:
    """``analog``, ``binary`` or ``multi-state``."""
    return obj.object_type.rpartition("-")[0]


@dataclass(frozen=True)
class Group:
    """Chosen objects that share one form of level values (same kind and unit)."""

    kind: str
    units: str | None
    objects: tuple[DiscoveredObject, ...]
    default: LevelDefault | None  # the unit's default values; None without one or with a caution

    @property
    def label(self) -> str:
        """What the form's description calls the group."""
        return self.units or self.kind

    @property
    def names(self) -> str:
        """The group's objects, one per line."""
        return "\n".join(f"- {object_label(o)}" for o in self.objects)


def groups(chosen: Iterable[DiscoveredObject]) -> list[Group]:
    """Group by kind and unit, keeping the order chosen.

    Objects named like a heating setpoint or an outside-air damper form their own group,
    without defaults: the unit's default would shed them the wrong way.
    """
    grouped: dict[tuple[str, str | None, bool], list[DiscoveredObject]] = {}
    for obj in chosen:
        code = _UNIT_CODES.get(obj.units or "")
        wary = code is not None and caution(code, obj.name or "", obj.description or "") is not None
        grouped.setdefault((kind_of(obj), obj.units, wary), []).append(obj)
    result = []
    for (kind, units, wary), objects in grouped.items():
        code = _UNIT_CODES.get(units or "")
        default = None if wary or code is None or kind != "analog" else LEVEL_DEFAULTS.get(code)
        result.append(Group(kind, units, tuple(objects), default))
    return result


def suggested(group: Group) -> dict[str, Any]:
    """The form's pre-filled answers: the unit's default values, priority 10."""
    values: dict[str, Any] = {PRIORITY: DEFAULT_PRIORITY}
    if group.default is not None:
        values[MODE] = MODE_OFFSET if group.default.offset else MODE_ABSOLUTE
        values.update(zip(LEVELS, group.default.values, strict=True))
    elif group.kind == "analog":
        values[MODE] = MODE_ABSOLUTE
    return values


def limits(obj: DiscoveredObject) -> tuple[float | None, float | None]:
    """The object's min and max; where it reports none, its unit's (0-100 for percent)."""
    default = LEVEL_DEFAULTS.get(_UNIT_CODES.get(obj.units or "", -1))
    low, high = obj.min_value, obj.max_value
    if default is not None:
        low = default.min_value if low is None else low
        high = default.max_value if high is None else high
    return low, high


def _check_range(obj: DiscoveredObject, value: PointValue, how: str = "") -> None:
    """Refuse a number outside the object's limits, naming the object and the limits."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    low, high = limits(obj)
    if (low is None or value >= low) and (high is None or value <= high):
        return
    raise FlowError(
        "base",
        "value_out_of_range",
        {
            "object": obj.name or obj.object_id,
            "value": f"{_number(float(value))}{how}",
            "limits": f"{'-' if low is None else _number(low)} to "
            f"{'-' if high is None else _number(high)}",
        },
    )


def group_points(
    group: Group,
    address: str,
    answers: Mapping[str, Any],
    network: ipaddress.IPv4Network | None = None,
) -> list[OverridePoint]:
    """The group's objects as points with the answered values; raises FlowError.

    An absolute value must lie within each object's min/max, an offset's target (the present
    value plus the offset) too; offsets are for analog objects only.
    """
    offset = group.kind == "analog" and answers.get(MODE) == MODE_OFFSET
    values: tuple[PointValue, PointValue, PointValue] = (
        _level_value(group.kind, answers[LEVELS[0]]),
        _level_value(group.kind, answers[LEVELS[1]]),
        _level_value(group.kind, answers[LEVELS[2]]),
    )
    analog = group.kind == "analog"
    points = []
    for obj in group.objects:
        if not offset:  # multi-state too: the state must exist
            for value in values:
                _check_range(obj, value)
        elif isinstance(obj.present_value, int | float):
            base = float(obj.present_value)
            for delta in values:
                how = f" ({_number(base)} {float(delta):+g})"
                _check_range(obj, base + float(delta), how)
        low, high = limits(obj) if analog else (None, None)
        try:
            point = OverridePoint(
                address=address,
                object_type=obj.object_type,
                instance=obj.instance,
                priority=int(answers.get(PRIORITY, DEFAULT_PRIORITY)),
                values=values,
                name=obj.name,
                offset=offset,
                min_value=low,
                max_value=high,
            )
            points.append(check_configured(point, network))
        except PointError as err:
            raise FlowError(
                "base", "invalid_level_values", {"object": obj.name or "", "error": str(err)}
            ) from None
    return points


def _level_value(kind: str, value: Any) -> PointValue:
    """A form answer as a point value: numbers stay numbers, multi-state states whole."""
    if kind == "multi-state" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int | float | str) else str(value)


# Longest OpenADR resource or group id accepted (ids are short; this bounds what is stored).
MAX_ID_CHARS: Final = 128


def target_ids(user_input: Mapping[str, Any]) -> dict[str, str]:
    """The controller's resource and group ids typed in (stripped; empty ones left out)."""
    ids: dict[str, str] = {}
    for key in (CONF_RESOURCE_ID, CONF_GROUP_ID):
        text = str(user_input.get(key) or "").strip()
        if len(text) > MAX_ID_CHARS or not text.isprintable():
            raise FlowError(key, "invalid_target_id", {})
        if text:
            ids[key] = text
    return ids
