"""Offset points and min/max limits as defined: checks, stored form and the bulk text form."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import pytest

from custom_components.loadshed_ven.engine.point_text import expand_seed, parse_bulk, point_line
from custom_components.loadshed_ven.engine.points import (
    OverridePoint,
    PointError,
    at_real_precision,
    offset_target,
    point_from_dict,
    point_to_dict,
)

PLAIN = OverridePoint(
    address="127.0.0.3", object_type="analog-value", instance=302, values=(78, 80, 82)
)


def _av(values: tuple[Any, Any, Any] = (78, 80, 82), **fields: Any) -> OverridePoint:
    return OverridePoint(
        address="127.0.0.2", object_type="analog-value", instance=1, values=values, **fields
    )


# ---- the point definition ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"object_type": "binary-value", "values": ("active",) * 3, "offset": True}, "offsets"),
        ({"object_type": "multi-state-value", "values": (2, 2, 2), "min_value": 1}, "min/max"),
        ({"offset": "yes"}, "not true or false"),
        ({"min_value": "low"}, "minimum 'low' is not a number"),
        ({"max_value": math.inf}, "maximum inf is not a number"),
        ({"min_value": 80, "max_value": 70}, "minimum 80 is above maximum 70"),
        ({"min_value": 79}, "level 1 value 78 is below the point's minimum 79"),
        ({"max_value": 81}, "level 3 value 82 is above the point's maximum 81"),
    ],
)
def test_bad_offsets_and_limits_are_refused(fields: dict[str, Any], message: str) -> None:
    fields = {"object_type": "analog-value", "values": (78, 80, 82), **fields}
    with pytest.raises(PointError, match=message):
        OverridePoint(address="127.0.0.2", instance=1, **fields)


def test_offsets_are_checked_when_the_target_is_computed() -> None:
    point = _av((-2, 4, 6), offset=True, min_value="60", max_value=78)
    assert (point.min_value, point.max_value) == (60.0, 78.0)  # deltas need not lie within
    assert offset_target(point, 1, 72.0) == 70.0
    assert offset_target(point, 2, 72.1) == pytest.approx(76.1)
    assert offset_target(point, 2, 72.1) == at_real_precision(76.1)
    with pytest.raises(PointError, match=r"level 3 value 79 \(73 \+6\) is above .* maximum 78"):
        offset_target(point, 3, 73.0)
    with pytest.raises(PointError, match=r"level 1 value 59 \(61 -2\) is below .* minimum 60"):
        offset_target(point, 1, 61.0)
    with pytest.raises(PointError, match="beyond what a BACnet REAL holds"):
        offset_target(_av((1e38, 1e38, 1e38), offset=True), 1, 3.4e38)


def test_stored_form_adds_offset_and_limits_only_when_set() -> None:
    assert list(point_to_dict(PLAIN)) == [
        "address",
        "object_type",
        "instance",
        "priority",
        "values",
        "name",
    ]
    raw = point_to_dict(_av((2, 4, 6), offset=True, min_value=60, max_value=85))
    assert (raw["offset"], raw["min"], raw["max"]) == (True, 60.0, 85.0)
    assert point_from_dict(json.loads(json.dumps(raw))) == _av(
        (2, 4, 6), offset=True, min_value=60, max_value=85
    )
    assert point_from_dict(point_to_dict(PLAIN)) == PLAIN
    with pytest.raises(TypeError, match="offset"):
        point_from_dict({**raw, "offset": 1})
    with pytest.raises(TypeError, match="min"):
        point_from_dict({**raw, "min": "60"})
    with pytest.raises(TypeError, match="max"):
        point_from_dict({**raw, "max": True})


# ---- the bulk text form ------------------------------------------------------------------------


def test_bulk_text_offsets_and_limits() -> None:
    text = "\n".join(
        [
            "127.0.0.2, AV, 302, 10, offset +2, offset +4, offset +6, Zone 3, max 80",
            "127.0.0.3, AV, 302, , Offset  -1.5, min 55",
            "127.0.0.4, AV, 302, , -3",
        ]
    )
    points, errors = parse_bulk(text)
    assert errors == []
    zone = _av((2, 4, 6), offset=True, max_value=80)
    assert points[0] == replace(zone, instance=302, name="Zone 3")
    assert (points[1].values, points[1].offset, points[1].min_value) == ((-1.5,) * 3, True, 55.0)
    assert (points[2].values, points[2].offset) == ((-3.0,) * 3, False)
    for point in points:
        assert parse_bulk(point_line(point)) == ([point], [])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("AV, 302, , offset 2", "write 'offset 2' with its sign"),
        ("AV, 302, , offset +2, 80, 82", "every level an offset"),
        ("AV, 302, , offset +2, offset +3", "two values given"),
        ("BV, 1, , offset +1", "offsets apply to analog points only"),
        ("AV, 302, , 76, min x", "'min x': 'x' is not a number"),
        ("AV, 302, , 76, max 80, max 81", "max is given twice"),
        ("AV, 302, , 76, max 75", "level 1 value 76 is above the point's maximum 75"),
    ],
)
def test_bulk_text_offset_mistakes(line: str, message: str) -> None:
    points, errors = parse_bulk(f"127.0.0.2, {line}")
    assert points == []
    assert len(errors) == 1
    assert message in errors[0].message


def test_seed_value_may_be_an_offset() -> None:
    points, errors = expand_seed("127.0.0.2, 127.0.0.3", "AV", 302, 10, "offset +2")
    assert errors == []
    assert [(p.values, p.offset) for p in points] == [((2.0,) * 3, True)] * 2
    with pytest.raises(PointError, match="with its sign"):
        expand_seed("127.0.0.2", "AV", 302, 10, "offset 2")
    with pytest.raises(PointError, match="not active/inactive"):
        expand_seed("127.0.0.2", "BV", 1, 10, "offset +1")
