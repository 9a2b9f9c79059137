"""Point lists as files: the CSV people keep in a spreadsheet (EDE files: :mod:`.ede`).

The import is all or nothing: every bad line is named (:class:`PointFileError`, the first
:data:`MAX_PROBLEMS` and a count of the rest) and no point is returned while any line is bad.

**CSV** (:func:`parse_points_csv`, :func:`export_points_csv`). A header row names the columns,
in any order and case (``Level 1`` and ``level_1`` are the same)::

    name,address,object_type,instance,priority,mode,level_1,level_2,level_3,min,max,units

address, object_type, instance and level_1 are required; the rest may be left out or empty.
Fields take what the bulk text form takes (:mod:`.point_text`). priority is 10 when empty;
mode is ``absolute`` (the default) or ``offset`` (analog only: the levels are added to the
value in force when the shed starts); with level_2 and level_3 empty, level_1 applies at every
level; min/max are the object's limits (an absolute value outside them is refused); units is
for people and is not read. Delimiter ``,``, ``;`` or tab, found from the header row or an
Excel ``sep=;`` first line; with ``;`` or tab a decimal comma (``72,5``) is accepted. A UTF-8
BOM is ignored; every non-blank row is a point (no comment rows: a name may start with ``#``).
A name starting with ``= + - @`` or ``'`` is written with a leading ``'`` so a spreadsheet does
not run it as a formula, and that ``'`` is dropped again on import.

The reading helpers at the end (size, delimiter, rows, numbers) serve the EDE reader too.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import itertools
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final

from .points import (
    DEFAULT_PRIORITY,
    MAX_INSTANCE,
    OverridePoint,
    PointError,
    PointValue,
    check_configured,
    small_int,
)

MAX_POINTS: Final = 5_000
MAX_CHARS: Final = 2_000_000  # about 2 MB: ten times what 5,000 rows take
MAX_PROBLEMS: Final = 50
COLUMNS: Final = (
    "name", "address", "object_type", "instance", "priority", "mode",
    "level_1", "level_2", "level_3", "min", "max", "units",
)  # fmt: skip
_REQUIRED: Final = ("address", "object_type", "instance", "level_1")
_FORMULA: Final = ("=", "+", "-", "@", "'")
_DELIMITERS: Final = (",", ";", "\t")
_SEP_LINE: Final = re.compile(r"sep=([,;\t|])", re.IGNORECASE)
_DECIMAL_COMMA: Final = re.compile(r"[+-]?[0-9]*,[0-9]+")
_LIST: Final = ",".join(COLUMNS)


class PointFileError(ValueError):
    """A point file was refused; ``problems`` holds (line, reason), line 0 meaning the file."""

    def __init__(self, problems: Sequence[tuple[int, str]]) -> None:
        """Keep the first :data:`MAX_PROBLEMS` problems and count the rest in ``more``."""
        self.problems = list(problems[:MAX_PROBLEMS])
        self.more = len(problems) - len(self.problems)
        text = "; ".join(f"line {n}: {why}" if n else why for n, why in self.problems)
        super().__init__(text + (f" (and {self.more} more problems)" if self.more else ""))


# --- CSV ----------------------------------------------------------------------------------


def parse_points_csv(
    text: str, *, local_network: ipaddress.IPv4Network | None = None
) -> list[OverridePoint]:
    """The points of a CSV point list (module docstring); raises PointFileError."""
    delimiter, text = dialect(checked_size(text, MAX_CHARS), None)
    rows = (row for row in rows_of(text, delimiter) if any(cell.strip() for cell in row[1]))
    header = next(rows, None)
    if header is None:
        raise refused(0, f"the file is empty; its first row names the columns: {_LIST}")
    columns = _csv_columns(*header)
    problems: list[tuple[int, str]] = []
    points: list[OverridePoint] = []
    seen: dict[str, int] = {}
    for count, (lineno, cells) in enumerate(rows, 1):
        if count > MAX_POINTS:
            problems.append((lineno, f"more than {MAX_POINTS:,} points: split the list"))
            break
        try:
            point = check_configured(_csv_point(cells, columns, delimiter), local_network)
        except PointError as err:
            problems.append((lineno, str(err)))
            continue
        _add_unique(point, lineno, points, seen, problems)
    if problems:
        raise PointFileError(problems)
    return points


def export_points_csv(
    points: Iterable[OverridePoint], *, units: Mapping[str, str] | None = None
) -> str:
    """The points as CSV that :func:`parse_points_csv` reads back to equal points.

    ``units`` (by point key, e.g. from discovery) fills the units column for people.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180, what spreadsheets write
    writer.writerow(COLUMNS)
    for point in points:
        values = [_text(value) for value in point.values]
        writer.writerow(
            [
                _escape(point.name or ""),
                point.address,
                point.object_type,
                point.instance,
                point.priority,
                "offset" if point.offset else "absolute",
                *values,
                _text(point.min_value),
                _text(point.max_value),
                _escape((units or {}).get(point.key, "")),
            ]
        )
    return out.getvalue()


def _csv_columns(lineno: int, cells: list[str]) -> dict[str, int]:
    known = {compact(column): column for column in COLUMNS}
    columns: dict[str, int] = {}
    problems: list[tuple[int, str]] = []
    for index, cell in enumerate(cells):
        column = known.get(compact(cell))
        if not cell.strip():
            continue
        if column is None:
            problems.append((lineno, f"unknown column '{cell.strip()}'; use {_LIST}"))
        elif column in columns:
            problems.append((lineno, f"column {column} appears twice"))
        else:
            columns[column] = index
    if missing := [column for column in _REQUIRED if column not in columns]:
        problems.append((lineno, f"the header row lacks {', '.join(missing)}"))
    if problems:
        raise PointFileError(problems)
    return columns


def _csv_point(cells: list[str], columns: dict[str, int], delimiter: str) -> OverridePoint:
    named = set(columns.values())
    if stray := [i + 1 for i, cell in enumerate(cells) if cell.strip() and i not in named]:
        raise PointError(f"cell {stray[0]} holds a value under no column of the header row")

    def cell(column: str) -> str:
        index = columns.get(column, len(cells))
        return cells[index].strip() if index < len(cells) else ""

    mode = cell("mode").lower()
    if mode not in ("", "absolute", "offset"):
        raise PointError(f"mode '{cell('mode')}' is neither absolute nor offset", "mode")
    levels = [_number_text(cell(f"level_{level}"), delimiter) for level in (1, 2, 3)]
    if levels[0] and not levels[1] and not levels[2]:
        levels = [levels[0]] * 3
    for level, value in enumerate(levels, 1):
        if not value:
            raise PointError(
                f"level {level} value is empty (give level 1 alone, or all three)", "value"
            )
    return OverridePoint(
        address=cell("address"),
        object_type=cell("object_type"),
        instance=whole(cell("instance"), "instance"),
        priority=_priority(cell("priority")),
        values=(levels[0], levels[1], levels[2]),
        name=_unescape(cell("name")),
        offset=mode == "offset",
        min_value=limit(cell("min"), "minimum", delimiter),
        max_value=limit(cell("max"), "maximum", delimiter),
    )


# --- shared -------------------------------------------------------------------------------


def refused(line: int, reason: str) -> PointFileError:
    """A refusal for one reason (line 0: the whole file)."""
    return PointFileError([(line, reason)])


def checked_size(text: str, most: int) -> str:
    """The text without a BOM; refuses one over ``most`` characters."""
    if len(text) > most:
        raise refused(0, f"the file holds {len(text):,} characters; at most {most:,} are read")
    return text.removeprefix("\ufeff")


def dialect(text: str, header_word: str | None) -> tuple[str, str]:
    """The delimiter, and the text without an Excel ``sep=`` line (left blank, for line numbers).

    The delimiter is counted on the header row: the first non-blank line, or the first holding
    ``header_word``.
    """
    lines = io.StringIO(text, newline="")
    first = next(lines, "")
    if match := _SEP_LINE.fullmatch(first.strip()):
        return match.group(1), "\n" + text[len(first) :]
    for line in itertools.chain([first], lines):
        if header_word in compact(line) if header_word else line.strip():
            counts = [line.count(delimiter) for delimiter in _DELIMITERS]
            return _DELIMITERS[counts.index(max(counts))], text
    return ",", text


def rows_of(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line where the row starts, cells); a quoted cell may span lines."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    try:
        for cells in reader:
            yield start, cells
            start = reader.line_num + 1
    except csv.Error as err:
        raise PointFileError([(start, f"not readable as CSV: {err}")]) from None


def _add_unique(
    point: OverridePoint,
    lineno: int,
    points: list[OverridePoint],
    seen: dict[str, int],
    problems: list[tuple[int, str]],
) -> None:
    if point.key in seen:
        problems.append((lineno, f"{point.key} is already on line {seen[point.key]}"))
    else:
        seen[point.key] = lineno
        points.append(point)


def whole(text: str, what: str) -> int:
    """An instance number; PointError naming ``what`` otherwise."""
    number = small_int(text)
    if number is None or number > MAX_INSTANCE:
        raise PointError(f"{what} '{text}' is not a whole number 0-{MAX_INSTANCE}", "instance")
    return number


def _priority(text: str) -> int:
    number = small_int(text) if text else DEFAULT_PRIORITY
    if number is None:
        raise PointError(f"priority '{text}' is not a whole number 8-16", "priority")
    return number


def limit(text: str, what: str, delimiter: str) -> float | None:
    """A finite number or None for an empty cell; PointError naming ``what`` otherwise."""
    if not text:
        return None
    try:
        number = float(_number_text(text, delimiter))
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise PointError(f"{what} '{text}' is not a number", "value")
    return number


def _number_text(text: str, delimiter: str) -> str:
    """``72,5`` as ``72.5`` in files whose cells are not separated by commas."""
    if delimiter != "," and _DECIMAL_COMMA.fullmatch(text):
        return text.replace(",", ".")
    return text


def compact(text: str) -> str:
    """Lower-case letters and digits only: how column names are compared."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _text(value: PointValue | None) -> str:
    if value is None:
        return ""
    text = repr(value) if isinstance(value, float) else str(value)
    return text.removesuffix(".0")


def _escape(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA) else text


def _unescape(text: str) -> str | None:
    text = text[1:] if text.startswith("'") and text[1:].startswith(_FORMULA) else text
    return text or None
