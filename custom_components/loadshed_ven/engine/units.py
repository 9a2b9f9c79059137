"""BACnet engineering units, and the level values a point gets by default from its unit.

Point files from integrators (EDE) list objects with a unit but no shed values, so an imported
setpoint needs values someone chose. The defaults below are the common demand-response
strategies; a unit without one is left out of the import with that reason.

* degrees-fahrenheit: +2/+4/+6 from the value in force, degrees-celsius: +1/+2/+3 (about the
  same in kelvin). A raised cooling setpoint is the classic shed; a heating setpoint would need
  the opposite sign, so points named like one are left out (:func:`caution`).
* percent: -10/-20/-30 points, within 0-100 %. A commandable percentage is a fan or pump speed,
  a valve or damper command or a lighting level: less of any of them uses less energy, and an
  offset keeps each one's own operating point rather than forcing one value on all. Outside-air
  dampers are left out: cutting them would breach the ventilation minimum. A point running
  below 30 % cannot go 30 lower: that level is refused for it, never clamped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

DEGREES_CELSIUS: Final = 62
DEGREES_FAHRENHEIT: Final = 64
PERCENT: Final = 98

# Names (bacpypes3 spelling) of the units an HVAC point list mostly holds, for messages.
UNIT_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        29: "percent-relative-humidity",
        48: "kilowatts",
        62: "degrees-celsius",
        63: "degrees-kelvin",
        64: "degrees-fahrenheit",
        84: "cubic-feet-per-minute",
        95: "no-units",
        96: "parts-per-million",
        98: "percent",
        120: "delta-degrees-fahrenheit",
        121: "delta-degrees-kelvin",
    }
)
# Unit texts seen in the unit column instead of a code, compared in the form _compact gives.
_UNIT_TEXTS: Final = {
    **dict.fromkeys(("degc", "c", "celsius", "degreescelsius"), DEGREES_CELSIUS),
    **dict.fromkeys(("degf", "f", "fahrenheit", "degreesfahrenheit"), DEGREES_FAHRENHEIT),
    **dict.fromkeys(("%", "percent", "pct"), PERCENT),
}
# Names the default would be wrong for (English, and the German and French of EU files).
_HEATING: Final = re.compile(r"heat|htg|hot|boiler|dhw|heiz|warm|chauf", re.IGNORECASE)
_OUTSIDE_AIR: Final = re.compile(
    r"out(side|door)[ _-]?air|fresh[ _-]?air|\boa\b|ventilat|au(ss|ß)enluft|air neuf", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class LevelDefault:
    """The values levels 1, 2, 3 get for a unit, and the limits kept when none are known."""

    values: tuple[float, float, float]
    offset: bool
    min_value: float | None = None
    max_value: float | None = None


LEVEL_DEFAULTS: Final[Mapping[int, LevelDefault]] = MappingProxyType(
    {
        DEGREES_FAHRENHEIT: LevelDefault((2.0, 4.0, 6.0), offset=True),
        DEGREES_CELSIUS: LevelDefault((1.0, 2.0, 3.0), offset=True),
        PERCENT: LevelDefault((-10.0, -20.0, -30.0), offset=True, min_value=0.0, max_value=100.0),
    }
)
TEMPERATURE_UNITS: Final = frozenset({DEGREES_CELSIUS, DEGREES_FAHRENHEIT})


def unit_code(text: str) -> int | None:
    """The unit code in a cell: a number (``64``) or a common text (``°F``, ``percent``)."""
    text = text.strip()
    if text.isascii() and text.isdigit() and len(text) <= 5:
        return int(text)
    return _UNIT_TEXTS.get(_compact(text))


def unit_label(code: int) -> str:
    """``64 (degrees-fahrenheit)``, or just the number for a unit without a name here."""
    name = UNIT_NAMES.get(code)
    return f"{code} ({name})" if name else str(code)


def caution(unit: int, *texts: str) -> str | None:
    """Why a point of ``unit`` named by ``texts`` must not get the unit's default, or None."""
    if unit in TEMPERATURE_UNITS and any(_HEATING.search(text) for text in texts):
        return "named like a heating setpoint, which a raise would not shed"
    if unit == PERCENT and any(_OUTSIDE_AIR.search(text) for text in texts):
        return "named like an outside-air damper, whose ventilation minimum must stay"
    return None


def _compact(text: str) -> str:
    # "°C", "Â°C" (UTF-8 read as Windows-1252), "deg C" and "degrees-celsius" all compare equal.
    return re.sub(r"[^a-z%]", "", text.lower().replace("°", "deg"))
