"""Override point definitions (engine/points.py): addresses, object types, instances, priorities,
values, and the point itself.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from custom_components.loadshed_ven.engine.points import (
    DEFAULT_PRIORITY,
    OverridePoint,
    PointError,
    check_instance,
    check_priority,
    coerce_value,
    normalise_address,
    normalise_object_type,
    value_for_level,
)


def av(address: str = "127.0.0.5", **kwargs: Any) -> OverridePoint:
    fields: dict[str, Any] = {
        "address": address,
        "object_type": "analogValue",
        "instance": 302,
        "values": (78, 80, "82.5"),
    }
    return OverridePoint(**(fields | kwargs))


# --- addresses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("192.168.1.20", "192.168.1.20"),
        ("  127.0.0.5 ", "127.0.0.5"),
        ("192.168.1.20:47809", "192.168.1.20:47809"),
        ("192.168.1.20:47808", "192.168.1.20"),  # the default port is implied
        ("10.0.0.1:1", "10.0.0.1:1"),
        ("10.0.0.1:65535", "10.0.0.1:65535"),
        ("12345:2", "12345:2"),
        ("12345:0x02", "12345:2"),
        ("12345:0XFE", "12345:254"),
        ("1:0", "1:0"),
        ("65534:254", "65534:254"),
        ("00012:007", "12:7"),
    ],
)
def test_accepted_addresses(text: str, normalised: str) -> None:
    assert normalise_address(text) == normalised


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("", "neither an IPv4 address nor network:MAC"),
        ("ahu1", "neither an IPv4 address nor network:MAC"),
        ("ahu1.local", "'ahu1.local' is not an IPv4 address"),
        ("ahu1.local:47808", "'ahu1.local' is not an IPv4 address"),
        ("192.168.1", "is not an IPv4 address"),
        ("192.168.1.256", "is not an IPv4 address"),
        ("192.168.001.020", "is not an IPv4 address"),  # leading zeros read as octal elsewhere
        ("12345:2@127.1.0.1", "is not an IPv4 address"),
        ("0.0.0.0", "is not a device address"),
        ("255.255.255.255", "is not a device address"),
        ("224.0.0.1", "is not a device address"),
        ("192.168.1.20:", "port '' is not a number"),
        ("192.168.1.20:0", "port '0'"),
        ("192.168.1.20:65536", "port '65536'"),
        ("192.168.1.20:http", "port 'http'"),
        ("192.168.1.20:47809:1", "port '47809:1'"),
        ("::1", "network '' is not a number"),
        ("fe80::1", "network 'fe80'"),
        ("ahu1:47808", "network 'ahu1'"),
        ("0:2", "network '0'"),
        ("65535:2", "network '65535'"),
        ("-1:2", "network '-1'"),
        ("12345:", "MAC ''"),
        ("12345:255", "MAC '255'"),
        ("12345:0x100", "MAC '0x100'"),
        ("12345:-1", "MAC '-1'"),
        ("12345:2:3", "MAC '2:3'"),
        ("12345: 2", "MAC ' 2'"),
    ],
)
def test_refused_addresses(text: str, detail: str) -> None:
    with pytest.raises(PointError) as caught:
        normalise_address(text)
    assert detail in str(caught.value)
    assert "host names are not accepted" in str(caught.value)
    assert caught.value.field == "address"


# --- object types, instances, priorities ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("analogValue", "analog-value"),
        ("analog-value", "analog-value"),
        ("Analog Value", "analog-value"),
        ("AV", "analog-value"),
        ("analogOutput", "analog-output"),
        ("ao", "analog-output"),
        ("binaryValue", "binary-value"),
        ("binary_value", "binary-value"),
        ("BV", "binary-value"),
        ("binaryOutput", "binary-output"),
        ("bo", "binary-output"),
        ("multiStateValue", "multi-state-value"),
        ("multi-state-value", "multi-state-value"),
        ("MSV", "multi-state-value"),
        ("multiStateOutput", "multi-state-output"),
        ("mso", "multi-state-output"),
    ],
)
def test_object_types(text: str, normalised: str) -> None:
    assert normalise_object_type(text) == normalised


@pytest.mark.parametrize("text", ["analogInput", "AI", "device", "", "analog", "schedule"])
def test_refused_object_types(text: str) -> None:
    with pytest.raises(PointError, match="cannot be overridden; use one of analog-value") as caught:
        normalise_object_type(text)
    assert caught.value.field == "object_type"


@pytest.mark.parametrize("instance", [0, 302, 4194302])
def test_instances(instance: int) -> None:
    assert check_instance(instance) == instance


@pytest.mark.parametrize(
    ("instance", "message"),
    [
        (-1, "outside 0-4194302"),
        (4194303, "outside 0-4194302"),
        (True, "not a whole number"),
        ("302", "not a whole number"),
        (302.0, "not a whole number"),
    ],
)
def test_refused_instances(instance: Any, message: str) -> None:
    with pytest.raises(PointError, match=message) as caught:
        check_instance(instance)
    assert caught.value.field == "instance"


@pytest.mark.parametrize("priority", range(8, 17))
def test_priorities(priority: int) -> None:
    assert check_priority(priority) == priority


@pytest.mark.parametrize("priority", range(1, 8))
def test_high_priorities_are_refused_with_the_reason(priority: int) -> None:
    with pytest.raises(PointError) as caught:
        check_priority(priority)
    message = str(caught.value)
    assert f"priority {priority} is refused" in message
    for reason in ("life safety", "critical equipment", "manual operator", "use 8-16"):
        assert reason in message
    assert caught.value.field == "priority"


@pytest.mark.parametrize(
    ("priority", "message"),
    [
        (0, "does not exist"),
        (17, "does not exist"),
        (-10, "does not exist"),
        (True, "not a whole number"),
        ("10", "not a whole number"),
        (None, "not a whole number"),
    ],
)
def test_invalid_priorities(priority: Any, message: str) -> None:
    with pytest.raises(PointError, match=message):
        check_priority(priority)


# --- values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("object_type", "value", "expected"),
    [
        ("analog-value", 80, 80.0),
        ("analog-output", 72.5, 72.5),
        ("AV", "72.5", 72.5),
        ("AV", " -3 ", -3.0),
        ("AV", "1e3", 1000.0),
        ("binary-value", "active", "active"),
        ("BV", " Inactive ", "inactive"),
        ("BO", "ON", "active"),
        ("BO", "off", "inactive"),
        ("BO", "1", "active"),
        ("BO", 0, "inactive"),
        ("BO", 1, "active"),
        ("BO", True, "active"),
        ("multi-state-value", 1, 1),
        ("MSO", " 3 ", 3),
        ("MSV", 2**32 - 1, 2**32 - 1),
    ],
)
def test_values(object_type: str, value: Any, expected: Any) -> None:
    coerced = coerce_value(object_type, value)
    assert coerced == expected
    assert type(coerced) is type(expected)


@pytest.mark.parametrize(
    ("object_type", "value", "message"),
    [
        ("AV", "abc", "is not a number"),
        ("AV", "", "is not a number"),
        ("AV", "nan", "is not a number"),
        ("AV", "inf", "is not a number"),
        ("AV", "1e999", "is not a number"),
        ("AV", 10**400, "is not a number"),
        ("AV", float("nan"), "is not a number"),
        ("AV", True, "is not a number"),
        ("AV", None, "is not a number"),
        ("AV", [80], "is not a number"),
        ("BV", 2, "is not active/inactive"),
        ("BV", "yes", "is not active/inactive"),
        ("BV", 1.0, "is not active/inactive"),
        ("BV", None, "is not active/inactive"),
        ("MSV", 0, "is not a state number"),
        ("MSV", -1, "is not a state number"),
        ("MSV", 2**32, "is not a state number"),
        ("MSV", True, "is not a state number"),
        ("MSV", 2.0, "is not a state number"),
        ("MSV", "1.5", "is not a state number"),
        ("MSV", "two", "is not a state number"),
    ],
)
def test_refused_values(object_type: str, value: Any, message: str) -> None:
    with pytest.raises(PointError, match=message) as caught:
        coerce_value(object_type, value)
    assert caught.value.field == "value"


def test_value_error_names_the_level() -> None:
    with pytest.raises(PointError, match="level 2 value 'hot' is not a number"):
        av(values=(78, "hot", 82))


# --- OverridePoint ------------------------------------------------------------------------


def test_point_is_normalised() -> None:
    point = av("192.168.1.20:47808", name="  Zone 3 setpoint ")
    assert point.address == "192.168.1.20"
    assert point.object_type == "analog-value"
    assert point.priority == DEFAULT_PRIORITY == 10
    assert point.values == (78.0, 80.0, 82.5)
    assert point.name == "Zone 3 setpoint"
    assert point.kind == "analog"
    assert point.key == "192.168.1.20/analog-value,302"


def test_point_identity_ignores_spelling() -> None:
    assert av("127.0.0.5:47808", object_type="AV") == av("127.0.0.5", object_type="analog-value")


@pytest.mark.parametrize(
    ("object_type", "values", "kind", "stored"),
    [
        ("binaryOutput", ("on", "on", "off"), "binary", ("active", "active", "inactive")),
        ("multiStateValue", (2, "3", 4), "multi-state", (2, 3, 4)),
    ],
)
def test_point_kinds(object_type: str, values: Any, kind: str, stored: Any) -> None:
    point = av(object_type=object_type, values=values)
    assert (point.kind, point.values) == (kind, stored)


@pytest.mark.parametrize("name", [None, "", "   "])
def test_blank_names_are_none(name: str | None) -> None:
    assert av(name=name).name is None


def test_a_point_is_named_to_people_by_its_name_else_its_object() -> None:
    assert av(name="Zone setpoint").label == "Zone setpoint"
    unnamed = av(name=None)
    assert unnamed.label == f"{unnamed.object_type} {unnamed.instance}"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"address": "ahu1.local"}, "address"),
        ({"object_type": "analogInput"}, "object_type"),
        ({"instance": -1}, "instance"),
        ({"priority": 5}, "priority"),
        ({"values": (80, 80)}, "values"),
        ({"values": (80, 80, "x")}, "value"),
    ],
)
def test_invalid_points(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(PointError) as caught:
        av(**kwargs)
    assert caught.value.field == field


def test_point_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        av().priority = 8  # type: ignore[misc]


@pytest.mark.parametrize(("level", "value"), [(0, None), (1, 78.0), (2, 80.0), (3, 82.5)])
def test_value_for_level(level: int, value: float | None) -> None:
    assert value_for_level(av(), level) == value


@pytest.mark.parametrize("level", [-1, 4])
def test_value_for_unknown_level(level: int) -> None:
    with pytest.raises(ValueError, match="outside 0-3"):
        value_for_level(av(), level)
