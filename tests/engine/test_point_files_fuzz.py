"""Point files under fuzzing (engine/point_files.py, engine/ede.py).

No text raises anything but PointFileError, and what is read comes back equal through an export.
"""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from custom_components.loadshed_ven.engine.ede import ede_devices, parse_ede
from custom_components.loadshed_ven.engine.point_files import (
    COLUMNS,
    PointFileError,
    export_points_csv,
    parse_points_csv,
)

from .test_ede import EDE
from .test_point_files import HEADER

FUZZ = settings(
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Cells that look like the files' own, and junk: structure matters more than random bytes.
CELLS = [
    *COLUMNS, "", " ", "127.0.0.5", "12345:2", "1.2.3.4:0", "AV", "BO", "msv", "analog-input",
    "302", "-1", "4194303", "10", "5", "offset", "absolute", "on", "2", "72,5", "1e39", "nan",
    "-0", "°F", "%", "64", "98", "62", "8", "Y", "N", "keyname", "device obj.-instance",
    "object-type", "object-instance", "settable", "unit-code", "min-present-value",
    "PROJECT_NAME", "#", "# keyname", "sep=;", '"', '""', "'=x", "\ufeff", "\x00", "\r", "∞",
]  # fmt: skip
cells = st.one_of(st.sampled_from(CELLS), st.text(max_size=6))
lines = st.builds(
    lambda row, sep: sep.join(row), st.lists(cells, max_size=12), st.sampled_from([",", ";", "\t"])
)


def _often(good: list[str], odds: int = 40) -> st.SearchStrategy[str]:
    """A cell that is one of ``good``, and one time in ``odds`` anything else."""
    # sampled_from draws evenly (integers() favours its bounds) and shrinks to the good cells.
    return st.sampled_from(range(odds)).flatmap(
        lambda n: cells if n == odds - 1 else st.sampled_from(good)
    )


Column = list[str] | dict[str, list[str]]  # good cells, or good cells by the row's kind


def _table(columns: dict[str, Column]) -> st.SearchStrategy[str]:
    """A header of the column names (shuffled, now and then damaged), then rows to match."""
    kinds = sorted({kind for spec in columns.values() if isinstance(spec, dict) for kind in spec})

    def row(order: list[str]) -> st.SearchStrategy[tuple[str, ...]]:
        def cells_of(kind: str) -> st.SearchStrategy[tuple[str, ...]]:
            specs = [columns[name] for name in order]
            return st.tuples(*(_often(s[kind] if isinstance(s, dict) else s) for s in specs))

        return st.sampled_from(kinds or [""]).flatmap(cells_of)

    @st.composite
    def table(draw: st.DrawFn) -> str:
        order = draw(st.permutations(list(columns)))
        header = [draw(_often([name], 200)) for name in order]
        rows = draw(st.lists(row(order), min_size=1, max_size=6))
        sep = draw(st.sampled_from([",", ";", "\t"]))
        quoted = draw(st.booleans())

        def cell(text: str) -> str:
            return '"' + text.replace('"', '""') + '"' if quoted else text

        return "\n".join(sep.join(cell(text) for text in line) for line in [header, *rows])

    return table()


NUMBERS = ["72", "-3", "2,5", "+2", "1e3", "0", "100", "55"]
INSTANCES = [str(n) for n in range(40)]
csv_tables = _table(
    {
        "name": ["Zone 1", "=cmd", "'x", "#3", "a,b", 'q"q', "line\nbreak", "", "ünï"],
        "address": ["127.0.0.5", "127.0.0.6:47809", "12345:2", "12345:0x03"],
        "object_type": {"a": ["AV", "analog-output"], "b": ["BV", "bo"], "m": ["MSO", "msv"]},
        "instance": INSTANCES,
        "priority": ["", "8", "10", "16"],
        "mode": {"a": ["", "absolute", "offset", "Offset"], "b": ["", "absolute"], "m": [""]},
        "level_1": {"a": NUMBERS, "b": ["on", "inactive", "1"], "m": ["2", "1"]},
        "level_2": {"a": NUMBERS, "b": ["off"], "m": ["3"]},
        "level_3": {"a": NUMBERS, "b": ["active"], "m": ["4"]},
        "min": {"a": ["", "", "0", "-10"], "b": [""], "m": [""]},
        "max": {"a": ["", "", "1e3", "100"], "b": [""], "m": [""]},
        "units": ["", "°F", "%", "=1"],
    }
)
ede_tables = _table(
    {
        "keyname": ["VAV1-ClgSp", "HtgSp", "OA damper", ""],
        "device obj.-instance": ["10", "20", "4194302"],
        "object-name": ["ClgSp", "Fan", ""],
        "object-type": ["0", "1", "2", "4", "5", "8", "14", "19", "analog-value"],
        "object-instance": INSTANCES,
        "min-present-value": ["", "0", "-16", "12,5"],
        "max-present-value": ["", "30", "100"],
        "settable": ["Y", "Y", "N", "", "yes"],
        "unit-code": ["62", "64", "98", "95", "°C", ""],
    }
)
texts = st.one_of(
    st.text(max_size=300),
    st.builds("\n".join, st.lists(lines, max_size=12)),
    st.builds(
        lambda head, body: head + "\n".join(body),
        st.sampled_from([HEADER + "\n", EDE[:900]]),
        st.lists(lines, max_size=8),
    ),
    csv_tables,
    ede_tables,
)
ede_addresses = st.one_of(
    st.just({10: "127.0.0.10", 20: "12345:3", 4194302: "127.0.0.20:47809"}),
    st.dictionaries(st.sampled_from([10, 20, 4194302, 7]), _often(["127.0.0.10", "12345:3"])),
)


@settings(FUZZ, max_examples=500)
@given(text=texts)
def test_fuzz_csv_raises_only_point_file_errors(text: str) -> None:
    try:
        points = parse_points_csv(text)
    except PointFileError as err:
        problems = err.problems
    else:
        assert parse_points_csv(export_points_csv(points)) == points
        return
    assert all(line >= 0 and why for line, why in problems)


@settings(FUZZ, max_examples=500)
@given(text=texts, addresses=ede_addresses)
def test_fuzz_ede_raises_only_point_file_errors(text: str, addresses: dict[int, str]) -> None:
    try:
        devices = ede_devices(text)
        result = parse_ede(text, addresses=addresses)
    except PointFileError as err:
        problems = err.problems
    else:
        assert len({point.key for point in result.points}) == len(result.points)
        assert set(devices) <= set(addresses)
        return
    assert all(line >= 0 and why for line, why in problems)
