"""The text and stored forms of override points: the bulk text grammar and the seed's form
(engine/point_text.py), and a point's JSON record (engine/points.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from custom_components.loadshed_ven.engine.point_text import LineError, expand_seed, parse_bulk
from custom_components.loadshed_ven.engine.points import (
    OverridePoint,
    PointError,
    point_from_dict,
    point_to_dict,
)

# --- bulk text ----------------------------------------------------------------------------

BULK = """\
# address, object type, instance, priority, value1[, value2, value3][, name]

127.0.0.5, analogValue, 302, 10, 80
127.0.0.6:47809, analog-value, 302, 12, 78, Zone 6 setpoint
   # indented comment
12345:2, AV, 302, , 78, 80, 82
12345:0x03, BO, 7, 16, on, on, off, Fan #3 (level 3 stops it)
127.0.0.7, multiStateValue, 1, 9, 2,
"""


def test_bulk_grammar() -> None:
    points, errors = parse_bulk(BULK)
    assert errors == []
    assert [(p.key, p.priority, p.values, p.name) for p in points] == [
        ("127.0.0.5/analog-value,302", 10, (80.0, 80.0, 80.0), None),
        ("127.0.0.6:47809/analog-value,302", 12, (78.0, 78.0, 78.0), "Zone 6 setpoint"),
        ("12345:2/analog-value,302", 10, (78.0, 80.0, 82.0), None),
        (
            "12345:3/binary-output,7",
            16,
            ("active", "active", "inactive"),
            "Fan #3 (level 3 stops it)",
        ),
        ("127.0.0.7/multi-state-value,1", 9, (2, 2, 2), None),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("127.0.0.5, AV, 302, 10", "found 4 fields"),
        ("127.0.0.5", "found 1 fields"),
        ("127.0.0.5, AV, 302, 10, 1, 2, 3, name, extra", "names cannot contain commas"),
        ("ahu1.local, AV, 302, 10, 80", "host names are not accepted"),
        ("127.0.0.5, analogInput, 302, 10, 80", "object type 'analogInput'"),
        ("127.0.0.5, AV, three, 10, 80", "instance 'three' is not a whole number"),
        ("127.0.0.5, AV, -1, 10, 80", "instance '-1' is not a whole number"),
        ("127.0.0.5, AV, 4194303, 10, 80", "outside 0-4194302"),
        ("127.0.0.5, AV, 302, ten, 80", "priority 'ten' is not a whole number 8-16"),
        ("127.0.0.5, AV, 302, 5, 80", "life safety"),
        ("127.0.0.5, AV, 302, 10, 78, 80", "two values given (78, 80)"),
        ("127.0.0.5, BV, 302, 10, on, off", "two values given (on, off)"),
        ("127.0.0.5, AV, 302, 10, 78, 80, Zone 1", "level 3 value 'Zone 1' is not a number"),
        ("127.0.0.5, AV, 302, 10, , 80, 82", "level 1 value is empty"),
        ("127.0.0.5, AV, 302, 10, 78, , 82, Zone", "level 2 value is empty"),
        ("127.0.0.5, AV, 302, 10, ", "level 1 value is empty"),
        ("127.0.0.5, BV, 302, 10, 80", "level 1 value '80' is not active/inactive"),
        ("127.0.0.5, MSV, 302, 10, 0", "level 1 value '0' is not a state number"),
    ],
)
def test_bulk_errors(line: str, message: str) -> None:
    points, errors = parse_bulk(f"# header\n\n{line}\n")
    assert points == []
    assert len(errors) == 1
    assert errors[0].line == 3
    assert message in errors[0].message


def test_bulk_errors_do_not_stop_other_lines() -> None:
    text = "127.0.0.5, AV, 302, 10, 80\nbad line\n127.0.0.6, AV, 302, 10, 80\n"
    points, errors = parse_bulk(text)
    assert [p.address for p in points] == ["127.0.0.5", "127.0.0.6"]
    assert [e.line for e in errors] == [2]
    assert str(errors[0]).startswith("line 2: found 1 fields")


def test_bulk_duplicates_name_both_lines() -> None:
    text = (
        "127.0.0.5, AV, 302, 10, 80\n"
        "127.0.0.5, AV, 303, 10, 80\n"
        "127.0.0.5:47808, analog-value, 302, 12, 78\n"  # same object, other spelling
        "127.0.0.5, AO, 302, 10, 80\n"  # another object type: not a duplicate
    )
    points, errors = parse_bulk(text)
    assert len(points) == 3
    assert errors == [
        LineError(
            3,
            "127.0.0.5/analog-value,302 is already defined on line 1 "
            "(same device, object and instance)",
        )
    ]


def test_empty_bulk_text() -> None:
    assert parse_bulk("") == ([], [])
    assert parse_bulk("\n# nothing yet\n  \n") == ([], [])


# --- the seed's form: one definition, many devices ----------------------------------------


def test_expand_seed() -> None:
    addresses = "12345:2, 12345:3\n# the east wing\n\n127.0.0.5\n127.0.0.6:47809,\n"
    points, errors = expand_seed(addresses, "analogValue", 302, 10, 80, name="Zone setpoint")
    assert errors == []
    assert [p.key for p in points] == [
        "12345:2/analog-value,302",
        "12345:3/analog-value,302",
        "127.0.0.5/analog-value,302",
        "127.0.0.6:47809/analog-value,302",
    ]
    assert {(p.values, p.priority, p.name) for p in points} == {
        ((80.0, 80.0, 80.0), 10, "Zone setpoint")
    }


def test_expand_seed_reports_bad_and_duplicate_addresses() -> None:
    addresses = "12345:2\n12345:0x02, ahu1.local\n12345:3\n127.0.0.5:47808, 127.0.0.5"
    points, errors = expand_seed(addresses, "BV", 1, 16, "on")
    assert [p.address for p in points] == ["12345:2", "12345:3", "127.0.0.5"]
    assert [e.line for e in errors] == [2, 2, 4]
    assert "already defined on line 1" in errors[0].message
    assert "host names are not accepted" in errors[1].message
    assert "already defined on line 4" in errors[2].message
    assert points[0].values == ("active", "active", "active")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("analogInput", 302, 10, 80), "object_type"),
        (("AV", -1, 10, 80), "instance"),
        (("AV", 302, 3, 80), "priority"),
        (("AV", 302, 10, "hot"), "value"),
    ],
)
def test_expand_seed_checks_the_shared_definition_first(args: tuple[Any, ...], field: str) -> None:
    with pytest.raises(PointError) as caught:
        expand_seed("127.0.0.5", *args)
    assert caught.value.field == field


def test_point_round_trips_through_json_and_refuses_bad_records() -> None:
    point = OverridePoint(
        address="12345:2", object_type="BV", instance=1, priority=12, values=("on", "on", "off")
    )
    assert point_from_dict(point_to_dict(point)) == point
    bad = point_to_dict(point)
    for change, error in (
        ({"values": [1]}, ValueError),
        ({"instance": "1"}, TypeError),
        ({"priority": True}, TypeError),
    ):
        with pytest.raises(error):
            point_from_dict({**bad, **change})
    with pytest.raises(TypeError):
        point_from_dict(["not", "a", "dict"])
