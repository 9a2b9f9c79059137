"""EDE point lists: the BIG-EU Engineering Data Exchange files integrators deliver.

The import is all or nothing, like the CSV one (:mod:`.point_files`): every bad line is named
and no point is returned while any line is bad.

An EDE file is ``;``-separated, with ``#`` comment and ``PROJECT_NAME;...`` lines above a header
row ``keyname;device obj.-instance;object-name;object-type;object-instance;...;settable;...;
unit-code;...`` (columns found by name). Settable analog/binary/multi-state values and outputs
are candidates; everything else is skipped with its reason (:class:`EdeSkip`). EDE files carry
device instances, not addresses: the caller maps them (:func:`ede_devices` lists the ones
needed). Values come from the unit (:mod:`.units`); units without a default are skipped.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from .point_files import (
    MAX_POINTS,
    PointFileError,
    checked_size,
    compact,
    dialect,
    limit,
    refused,
    rows_of,
    whole,
)
from .points import (
    DEFAULT_PRIORITY,
    OverridePoint,
    PointError,
    check_configured,
    check_priority,
    normalise_address,
    normalise_object_type,
    small_int,
)
from .units import LEVEL_DEFAULTS, LevelDefault, caution, unit_code, unit_label

__all__ = ["EdeImport", "EdeSkip", "PointFileError", "ede_devices", "looks_like_ede", "parse_ede"]

MAX_EDE_ROWS: Final = 50_000  # a whole site's EDE lists every input too
MAX_EDE_CHARS: Final = 10_000_000
# EDE object-type codes (BACnetObjectType) the product overrides, and a few it names in skips.
_EDE_TYPES: Final = {
    1: "analog-output", 2: "analog-value", 4: "binary-output", 5: "binary-value",
    14: "multi-state-output", 19: "multi-state-value",
}  # fmt: skip
_YES: Final = frozenset({"y", "yes", "j", "ja", "true", "t", "1", "x"})
_OTHER_TYPES: Final = {0: "analog-input", 3: "binary-input", 13: "multi-state-input"}
_DEVICE_TYPE: Final = 8
_EDE_COLUMNS: Final = {
    "keyname": "keyname", "deviceobjinstance": "device", "deviceobjectinstance": "device",
    "deviceinstance": "device", "objectname": "object_name", "objecttype": "object_type",
    "objectinstance": "instance", "description": "description", "settable": "settable",
    "minpresentvalue": "min", "maxpresentvalue": "max", "unitcode": "unit", "unit": "unit",
}  # fmt: skip
_EDE_HEADER: Final = "keyname;device obj.-instance;object-name;object-type;object-instance"
# How far down a file its header row is looked for when telling EDE from CSV.
_SNIFF_LINES: Final = 100


@dataclass(frozen=True, slots=True)
class EdeSkip:
    """An EDE row left out of the import: its line, its keyname or object name, and why."""

    line: int
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class EdeImport:
    """The points an EDE file gives, the rows it skipped, and what its header tells."""

    points: tuple[OverridePoint, ...]
    skipped: tuple[EdeSkip, ...]
    project: str | None
    device_names: Mapping[int, str]


@dataclass(frozen=True, slots=True)
class _Planned:
    """An EDE row that becomes a point once its device has an address."""

    line: int
    device: int
    object_type: str
    instance: int
    name: str
    default: LevelDefault
    min_value: float | None
    max_value: float | None


@dataclass(frozen=True, slots=True)
class _EdePlan:
    planned: list[_Planned]
    skipped: list[EdeSkip]
    project: str | None
    device_names: dict[int, str]


def parse_ede(
    text: str,
    *,
    addresses: Mapping[int, str],
    priority: int = DEFAULT_PRIORITY,
    defaults: Mapping[int, LevelDefault] = LEVEL_DEFAULTS,
    skip_unaddressed: bool = False,
) -> EdeImport:
    """The points of an EDE file; ``addresses`` maps device instances to device addresses.

    ``defaults`` gives level values by unit code. Raises PointFileError naming every bad row
    and every device without a usable address (``skip_unaddressed``: a device missing from
    ``addresses`` has its rows skipped instead); PointError for a bad ``priority``.
    """
    check_priority(priority)
    plan = _plan_ede(text, defaults)
    problems: list[tuple[int, str]] = []
    resolved: dict[int, str | None] = {}
    points: list[OverridePoint] = []
    skipped = list(plan.skipped)
    for row in plan.planned:
        if skip_unaddressed and row.device not in addresses:
            skipped.append(EdeSkip(row.line, row.name, "no address was given for its device"))
            continue
        if row.device not in resolved:
            resolved[row.device] = _resolve(row.device, addresses, row.line, problems)
        address = resolved[row.device]
        if address is None:
            continue
        try:
            point = OverridePoint(
                address=address,
                object_type=row.object_type,
                instance=row.instance,
                priority=priority,
                values=row.default.values,
                name=row.name,
                offset=row.default.offset,
                min_value=_first(row.min_value, row.default.min_value),
                max_value=_first(row.max_value, row.default.max_value),
            )
            points.append(check_configured(point))
        except PointError as err:
            problems.append((row.line, str(err)))
    if problems:
        raise PointFileError(problems)
    skipped.sort(key=lambda skip: skip.line)
    return EdeImport(tuple(points), tuple(skipped), plan.project, plan.device_names)


def ede_devices(
    text: str, *, defaults: Mapping[int, LevelDefault] = LEVEL_DEFAULTS
) -> dict[int, str | None]:
    """The device instances with points to import, and their names when the file has them."""
    plan = _plan_ede(text, defaults)
    return {row.device: plan.device_names.get(row.device) for row in plan.planned}


def _resolve(
    device: int, addresses: Mapping[int, str], line: int, problems: list[tuple[int, str]]
) -> str | None:
    if device not in addresses:
        problems.append((line, f"device {device} has no address: give its address"))
        return None
    try:
        return normalise_address(addresses[device])
    except PointError as err:
        problems.append((line, f"device {device}: {err}"))
        return None


def _plan_ede(text: str, defaults: Mapping[int, LevelDefault]) -> _EdePlan:
    text = checked_size(text, MAX_EDE_CHARS)
    delimiter, text = dialect(text, "objecttype")
    rows = rows_of(text, delimiter)
    project, columns = _ede_header(rows)
    plan = _EdePlan([], [], project, {})
    problems: list[tuple[int, str]] = []
    seen: dict[tuple[int, str, int], int] = {}
    count = 0
    for lineno, cells in rows:
        if not any(cell.strip() for cell in cells) or cells[0].lstrip().startswith("#"):
            continue
        count += 1
        if count > MAX_EDE_ROWS:
            problems.append((lineno, f"more than {MAX_EDE_ROWS:,} rows: split the file"))
            break
        try:
            _plan_row(lineno, _EdeRow(cells, columns, delimiter), defaults, plan, seen)
        except PointError as err:
            problems.append((lineno, str(err)))
    if len(plan.planned) > MAX_POINTS:
        problems.append((0, f"{len(plan.planned):,} points to import; at most {MAX_POINTS:,}"))
    if problems:
        raise PointFileError(problems)
    return plan


def _ede_header(rows: Iterator[tuple[int, list[str]]]) -> tuple[str | None, dict[str, int]]:
    """Read up to the header row: the project name, and the column of each field."""
    project: str | None = None
    for lineno, cells in rows:
        if len(cells) > 1 and cells[0].lstrip("# \t").upper() == "PROJECT_NAME":
            project = cells[1].strip() or None
        columns: dict[str, int] = {}
        for index, cell in enumerate(cells):
            if column := _EDE_COLUMNS.get(compact(cell)):
                columns.setdefault(column, index)
        if "object_type" in columns and "instance" in columns:
            if "device" not in columns:
                raise refused(lineno, "the header row lacks the device obj.-instance column")
            return project, columns
    raise refused(0, f"no header row ({_EDE_HEADER};...): is this an EDE file?")


@dataclass(frozen=True, slots=True)
class _EdeRow:
    cells: list[str]
    columns: dict[str, int]
    delimiter: str

    def __getitem__(self, column: str) -> str:
        index = self.columns.get(column, len(self.cells))
        return self.cells[index].strip() if index < len(self.cells) else ""


def _plan_row(
    lineno: int,
    row: _EdeRow,
    defaults: Mapping[int, LevelDefault],
    plan: _EdePlan,
    seen: dict[tuple[int, str, int], int],
) -> None:
    """Add the row to the plan's points or skips; raises PointError for a bad row."""
    name = row["keyname"] or row["object_name"]
    type_text = row["object_type"]
    code = small_int(type_text)
    if code == _DEVICE_TYPE:
        device = whole(row["instance"] or row["device"], "device instance")
        plan.device_names[device] = row["object_name"] or row["keyname"]
        plan.skipped.append(EdeSkip(lineno, name, "the device itself, not a point"))
        return
    if not type_text:
        raise PointError("object-type is empty", "object_type")
    object_type = _EDE_TYPES.get(code) if code is not None else _object_type(type_text)
    if object_type is None:
        what = f"'{type_text}'"
        if code is not None:
            what = f"{code} ({_OTHER_TYPES[code]})" if code in _OTHER_TYPES else str(code)
        plan.skipped.append(EdeSkip(lineno, name, f"object type {what} cannot be overridden"))
        return
    device = whole(row["device"], "device instance")
    instance = whole(row["instance"], "object instance")
    key = (device, object_type, instance)
    if key in seen:
        raise PointError(f"device {device} {object_type} {instance} is already on line {seen[key]}")
    seen[key] = lineno
    if row["settable"].lower() not in _YES:
        reason = f"not settable (settable is '{row['settable']}', not Y)"
        plan.skipped.append(EdeSkip(lineno, name, reason))
        return
    default = _default(row, object_type, defaults)
    if isinstance(default, str):
        plan.skipped.append(EdeSkip(lineno, name, default))
        return
    low = limit(row["min"], "min-present-value", row.delimiter)
    high = limit(row["max"], "max-present-value", row.delimiter)
    plan.planned.append(_Planned(lineno, device, object_type, instance, name, default, low, high))


def _default(
    row: _EdeRow, object_type: str, defaults: Mapping[int, LevelDefault]
) -> LevelDefault | str:
    """The row's default values, or why it gets none."""
    if not object_type.startswith("analog"):
        return f"no default for {object_type} points: give their values in a point CSV"
    unit = unit_code(row["unit"])
    if unit is None:
        what = f"unit '{row['unit']}' is unknown" if row["unit"] else "no unit is given"
        return f"{what}, so there are no default values: give them in a point CSV"
    if unit not in defaults:
        return f"no default for unit {unit_label(unit)}: give values in a point CSV"
    if why := caution(unit, row["keyname"], row["object_name"], row["description"]):
        return f"{why}: give values in a point CSV"
    return defaults[unit]


def _first(given: float | None, default: float | None) -> float | None:
    return default if given is None else given


def _object_type(text: str) -> str | None:
    try:
        return normalise_object_type(text)
    except PointError:
        return None


def looks_like_ede(text: str) -> bool:
    """Whether a point file is EDE rather than point CSV: a header names a device instance."""
    for line in itertools.islice(io.StringIO(text.removeprefix("\ufeff")), _SNIFF_LINES):
        cells = {compact(cell) for cell in line.replace(",", ";").replace("\t", ";").split(";")}
        if any(_EDE_COLUMNS.get(cell) == "device" for cell in cells):
            return True
    return False
