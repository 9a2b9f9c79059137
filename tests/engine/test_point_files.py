"""Point CSV files (engine/point_files.py) and units (engine/units.py).

Every bad line is named and nothing is half-imported (the EDE reader: test_ede.py; no text
raises anything but PointFileError: test_point_files_fuzz.py).
"""

from __future__ import annotations

import ipaddress

import pytest

from custom_components.loadshed_ven.engine import point_files
from custom_components.loadshed_ven.engine.point_files import (
    COLUMNS,
    MAX_PROBLEMS,
    PointFileError,
    export_points_csv,
    parse_points_csv,
)
from custom_components.loadshed_ven.engine.points import OverridePoint
from custom_components.loadshed_ven.engine.units import (
    LEVEL_DEFAULTS,
    PERCENT,
    caution,
    unit_code,
    unit_label,
)

HEADER = ",".join(COLUMNS)


def _point(**fields: object) -> OverridePoint:
    base: dict[str, object] = {
        "address": "127.0.0.5",
        "object_type": "analog-value",
        "instance": 302,
        "values": (78, 80, 82),
    }
    return OverridePoint(**(base | fields))  # type: ignore[arg-type]


def _problems(call: object, *args: object, **kwargs: object) -> list[tuple[int, str]]:
    with pytest.raises(PointFileError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value.problems


# --- CSV ----------------------------------------------------------------------------------

POINTS = [
    _point(name="VAV-1 cooling setpoint", min_value=55, max_value=90),
    _point(address="127.0.0.6:47809", values=(2, 4, 6.5), offset=True, min_value=55),
    _point(address="12345:2", object_type="AO", instance=1, values=(-10, -20, -30), offset=True),
    _point(object_type="BO", instance=7, priority=16, values=("on", "on", "off"), name="Fan #3"),
    _point(object_type="MSV", instance=1, priority=8, values=(2, 3, 3), name='a "quoted", name'),
    _point(instance=1, name="=HYPERLINK(1)"),
    _point(instance=2, name="'quoted already"),
    _point(instance=3, name="line\nbreak; and ünïcode"),
    _point(instance=4, values=(1e-7, -0.0, 3.4e38)),
    _point(instance=5, name="-5 % limit"),
]


def test_csv_round_trip() -> None:
    text = export_points_csv(POINTS, units={POINTS[0].key: "°F", POINTS[5].key: "=units"})
    assert text.startswith(HEADER + "\r\n")
    for escaped in ("'=HYPERLINK(1)", "''quoted already", "'-5 % limit", "'=units"):
        assert escaped in text
    assert "VAV-1 cooling setpoint,127.0.0.5,analog-value,302,10,absolute,78,80,82,55,90,°F" in text
    again = parse_points_csv(text)
    assert again == POINTS
    assert export_points_csv(again) == export_points_csv(POINTS)


def test_csv_from_a_spreadsheet() -> None:
    """Excel's quirks: BOM, a sep= line, ';', decimal commas, CRLF, trailing empty cells."""
    text = (
        "\ufeffsep=;\r\n"
        "Address; Object Type;INSTANCE;Level 1;level-2;LEVEL_3;Min;Name;Mode\r\n"
        ";;;;;;;;\r\n"
        "127.0.0.5;AV;302;72,5;73,5;-,5;-10;Zone 1;\r\n"
        '127.0.0.6;BV;1;active;;;;"Fan; main";ABSOLUTE;;\r\n'
        "\r\n"
        "127.0.0.7;AV;302;1,5;;;;;Offset\r\n"
    )
    points = parse_points_csv(text)
    assert [(p.key, p.values, p.name, p.offset, p.min_value) for p in points] == [
        ("127.0.0.5/analog-value,302", (72.5, 73.5, -0.5), "Zone 1", False, -10.0),
        ("127.0.0.6/binary-value,1", ("active",) * 3, "Fan; main", False, None),
        ("127.0.0.7/analog-value,302", (1.5, 1.5, 1.5), None, True, None),
    ]


def test_csv_tab_and_comma_delimiters() -> None:
    tab = "address\tobject_type\tinstance\tlevel_1\n127.0.0.5\tAV\t1\t3,5\n"
    assert parse_points_csv(tab)[0].values == (3.5, 3.5, 3.5)
    comma = 'address,object_type,instance,level_1\n127.0.0.5,AV,1,"3,5"\n'
    assert _problems(parse_points_csv, comma) == [(2, "level 1 value '3,5' is not a number")]


def test_csv_local_network_refuses_its_broadcast() -> None:
    text = "address,object_type,instance,level_1\n192.168.1.255,AV,1,80\n"
    assert parse_points_csv(text)  # no network given: nothing to compare with
    network = ipaddress.IPv4Network("192.168.1.0/24")
    [(line, why)] = _problems(parse_points_csv, text, local_network=network)
    assert line == 2
    assert "broadcast address of 192.168.1.0/24" in why


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("ahu.local,AV,302,10,,80,,", "host names are not accepted"),
        ("127.0.0.5,AI,302,10,,80,,", "object type 'AI' cannot be overridden"),
        ("127.0.0.5,AV,-1,10,,80,,", "instance '-1' is not a whole number 0-4194302"),
        ("127.0.0.5,AV,4194303,10,,80,,", "instance '4194303' is not a whole number 0-4194302"),
        ("127.0.0.5,AV,302,ten,,80,,", "priority 'ten' is not a whole number 8-16"),
        ("127.0.0.5,AV,302,5,,80,,", "life safety"),
        ("127.0.0.5,AV,302,10,delta,80,,", "mode 'delta' is neither absolute nor offset"),
        ("127.0.0.5,AV,302,10,,,,", "level 1 value is empty"),
        ("127.0.0.5,AV,302,10,,80,81,", "level 3 value is empty"),
        ("127.0.0.5,AV,302,10,,80,,82", "level 2 value is empty"),
        ("127.0.0.5,AV,302,10,,warm,,", "level 1 value 'warm' is not a number"),
        ("127.0.0.5,AV,302,10,,1e39,,", "beyond what a BACnet REAL holds"),
        ("127.0.0.5,BV,1,10,,80,,", "level 1 value '80' is not active/inactive"),
        ("127.0.0.5,BV,1,10,offset,on,,", "offsets apply to analog points only"),
        ("127.0.0.5,MSV,1,10,,0,,", "level 1 value '0' is not a state number"),
        ("127.0.0.5,AV,302,10,,80,85,95,,90", "level 3 value 95 is above the point's maximum 90"),
        ("127.0.0.5,AV,302,10,,80,,,81,", "level 1 value 80 is below the point's minimum 81"),
        ("127.0.0.5,AV,302,10,,80,,,90,50", "minimum 90 is above maximum 50"),
        ("127.0.0.5,AV,302,10,,80,,,low,", "minimum 'low' is not a number"),
        ("127.0.0.5,AV,302,10,,80,,,,inf", "maximum 'inf' is not a number"),
        ("127.0.0.5,BV,1,10,,on,,,0,1", "min/max limits apply to analog points only"),
        ("127.0.0.5,AV,302,10,,80,,,,,,x", "cell 12 holds a value under no column"),
    ],
)
def test_csv_errors_name_their_line(row: str, message: str) -> None:
    header = "address,object_type,instance,priority,mode,level_1,level_2,level_3,min,max,units"
    problems = _problems(parse_points_csv, f"{header}\n\n{row}\n127.0.0.9,AV,1,,,80\n")
    assert len(problems) == 1
    assert problems[0][0] == 3
    assert message in problems[0][1]


def test_csv_every_problem_and_nothing_imported() -> None:
    rows = ["127.0.0.5,AV,1,80", "127.0.0.5,AV,1,81", "bad,AV,2,80", "127.0.0.6,AV,2,x"]
    problems = _problems(
        parse_points_csv, "address,object_type,instance,level_1\n" + "\n".join(rows)
    )
    assert [line for line, _ in problems] == [3, 4, 5]
    assert problems[0][1] == "127.0.0.5/analog-value,1 is already on line 2"


def test_csv_problems_are_capped_and_counted() -> None:
    text = "address,object_type,instance,level_1\n" + "bad,AV,1,80\n" * (MAX_PROBLEMS + 7)
    with pytest.raises(PointFileError) as caught:
        parse_points_csv(text)
    assert len(caught.value.problems) == MAX_PROBLEMS
    assert caught.value.more == 7
    assert str(caught.value).startswith("line 2: address 'bad'")
    assert str(caught.value).endswith("(and 7 more problems)")


def test_csv_quoted_cell_spanning_lines_keeps_line_numbers() -> None:
    text = 'address,object_type,instance,level_1,name\n127.0.0.5,AV,1,80,"two\nlines"\nx,AV,1,80\n'
    assert _problems(parse_points_csv, text)[0][0] == 4


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ("", [(0, f"the file is empty; its first row names the columns: {HEADER}")]),
        ("\ufeff\n ,  \n", [(0, f"the file is empty; its first row names the columns: {HEADER}")]),
        (
            "\naddress,type,instance,Instance,,level_1",
            [
                (2, f"unknown column 'type'; use {HEADER}"),
                (2, "column instance appears twice"),
                (2, "the header row lacks object_type"),
            ],
        ),
    ],
)
def test_csv_header_problems(text: str, problems: list[tuple[int, str]]) -> None:
    assert _problems(parse_points_csv, text) == problems


def test_csv_size_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _problems(parse_points_csv, " " * (point_files.MAX_CHARS + 1)) == [
        (0, "the file holds 2,000,001 characters; at most 2,000,000 are read")
    ]
    monkeypatch.setattr(point_files, "MAX_POINTS", 3)
    rows = "".join(f"127.0.0.5,AV,{n},80\n" for n in range(5))
    problems = _problems(parse_points_csv, "address,object_type,instance,level_1\n" + rows)
    assert problems == [(5, "more than 3 points: split the list")]


def test_csv_full_size_list_is_quick() -> None:
    rows = "".join(f"127.0.{n // 200}.{n % 200 + 1},AV,302,10,offset,2,4,6\n" for n in range(5000))
    text = "address,object_type,instance,priority,mode,level_1,level_2,level_3\n" + rows
    points = parse_points_csv(text)
    assert len(points) == 5000
    assert parse_points_csv(export_points_csv(points)) == points


def test_csv_unreadable() -> None:
    text = 'address,object_type,instance,level_1,name\n127.0.0.5,AV,1,80,"' + "x" * 200_000
    assert _problems(parse_points_csv, text) == [
        (2, "not readable as CSV: field larger than field limit (131072)")
    ]


# --- units --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("64", 64),
        (" 98 ", 98),
        ("°F", 64),
        ("Â°C", 62),
        ("deg C", 62),
        ("degrees-fahrenheit", 64),
        ("%", 98),
        ("Percent", 98),
        ("K", None),
        ("", None),
        ("123456", None),
        ("٣", None),
    ],
)
def test_unit_code(text: str, code: int | None) -> None:
    assert unit_code(text) == code


def test_unit_labels_and_cautions() -> None:
    assert unit_label(64) == "64 (degrees-fahrenheit)"
    assert unit_label(4000) == "4000"
    assert caution(64, "Zone Cooling Setpoint") is None
    assert caution(62, "B_01'Hcr'SpCmf", "Sollwert Heizkreis") is not None
    assert caution(64, "HW supply", "Hot water setpoint") is not None
    assert caution(98, "Supply Fan Speed Command") is None
    assert caution(98, "OA-DMPR", "OA damper min position") is not None
    assert caution(98, "AHU1 Außenluftklappe") is not None
    assert caution(98, "Boiler valve") is None  # only temperatures have a heating sign
    assert LEVEL_DEFAULTS[PERCENT].min_value == 0.0
