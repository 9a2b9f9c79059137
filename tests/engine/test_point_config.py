"""What configuration may hold: REAL-sized analog values, no network or broadcast addresses."""

from __future__ import annotations

import ipaddress

import pytest

from custom_components.loadshed_ven.bacnet.values import ValueMismatchError, encode
from custom_components.loadshed_ven.engine.point_text import expand_seed, parse_bulk
from custom_components.loadshed_ven.engine.points import (
    MAX_REAL,
    OverridePoint,
    PointError,
    check_configured,
    fits_real,
)

LAN = ipaddress.IPv4Network("192.168.1.0/24")


@pytest.mark.parametrize(
    ("value", "fits"),
    [
        (0, True),
        (-3, True),
        (72.5, True),
        (MAX_REAL, True),
        (-MAX_REAL, True),
        (3.4028235e38, True),  # rounds to the largest single
        (3.41e38, False),
        (1e39, False),
        (-1e39, False),
        (10**400, False),
        (float("inf"), False),
        (float("nan"), False),
        (True, False),
        ("80", False),
    ],
)
def test_fits_real(value: object, fits: bool) -> None:
    assert fits_real(value) is fits


def test_bulk_refuses_value_beyond_real_naming_the_line() -> None:
    points, errors = parse_bulk(
        "192.168.1.20, AV, 1, 10, 78\n192.168.1.21, AV, 2, 10, 78, 1e39, 82\n"
        "192.168.1.22, AV, 3, 10, -5e38"
    )
    assert [p.instance for p in points] == [1]
    assert [e.line for e in errors] == [2, 3]
    assert "level 2 value 1e+39 is beyond what a BACnet REAL holds" in str(errors[0])
    assert "level 1 value -5e+38" in str(errors[1])


def test_bulk_accepts_beyond_real_text_for_binary_and_multistate() -> None:
    points, errors = parse_bulk("192.168.1.20, BV, 1, 10, active\n192.168.1.20, MSV, 1, 10, 3")
    assert errors == []
    assert len(points) == 2


def test_seed_refuses_value_beyond_real() -> None:
    with pytest.raises(PointError, match="REAL") as err:
        expand_seed("192.168.1.20", "analog-value", 302, 10, "1e39")
    assert err.value.field == "value"


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("192.168.1.255", "broadcast address of 192.168.1.0/24"),
        ("192.168.1.255:47809", "broadcast address of 192.168.1.0/24"),
        ("192.168.1.0", "network address of 192.168.1.0/24"),
    ],
)
def test_bulk_refuses_network_and_directed_broadcast(address: str, why: str) -> None:
    points, errors = parse_bulk(f"192.168.1.20, AV, 1, 10, 78\n{address}, AV, 2, 10, 78", LAN)
    assert len(points) == 1
    assert len(errors) == 1
    assert errors[0].line == 2
    assert why in errors[0].message


def test_addresses_are_judged_against_the_local_network_only() -> None:
    # Other subnets' .0/.255 may be hosts (a /16 has 192.168.2.255); routed MACs are not IPs.
    text = "192.168.2.255, AV, 1, 10, 78\n10.0.0.0, AV, 2, 10, 78\n12345:0, AV, 3, 10, 78"
    points, errors = parse_bulk(text, LAN)
    assert errors == []
    assert len(points) == 3
    # Without a known network nothing is judged (the flow always passes one).
    assert parse_bulk("192.168.1.255, AV, 1, 10, 78")[1] == []


@pytest.mark.parametrize("prefix", ["192.168.1.254/31", "192.168.1.255/32"])
def test_point_to_point_prefixes_have_no_broadcast_address(prefix: str) -> None:
    network = ipaddress.IPv4Interface(prefix).network
    points, errors = parse_bulk("192.168.1.255, AV, 1, 10, 78", network)
    assert errors == []
    assert len(points) == 1


def test_seed_refuses_directed_broadcast_naming_the_line() -> None:
    points, errors = expand_seed(
        "192.168.1.20\n192.168.1.21, 192.168.1.255", "AV", 302, 10, 80, local_network=LAN
    )
    assert [p.address for p in points] == ["192.168.1.20", "192.168.1.21"]
    assert [e.line for e in errors] == [2]
    assert "broadcast" in errors[0].message


def test_a_recorded_point_stays_readable_but_is_not_configurable() -> None:
    # The ledger must be able to load what it recorded, so the point itself is accepted...
    point = OverridePoint(
        address="192.168.1.255", object_type="AV", instance=1, values=(78, 1e39, 80)
    )
    # ...but configuration refuses it, and encoding it never reaches bacpypes3.
    with pytest.raises(PointError, match="REAL"):
        check_configured(point)
    with pytest.raises(PointError, match="broadcast"):
        check_configured(
            OverridePoint(address="192.168.1.255", object_type="AV", instance=1, values=(1, 1, 1)),
            LAN,
        )
    with pytest.raises(ValueMismatchError, match="REAL"):
        encode(point, 1e39)
    assert float(encode(point, 78.0)) == 78.0
