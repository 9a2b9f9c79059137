"""Device addresses (engine/addresses.py): the three forms, their one normalised text, errors."""

from __future__ import annotations

import pytest

from custom_components.loadshed_ven.engine import points
from custom_components.loadshed_ven.engine.addresses import (
    ADDRESS_HELP,
    PointError,
    normalise_address,
    routed_network,
)


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        # Forms stored in point keys before routed IP existed: byte-identical.
        ("192.168.1.20", "192.168.1.20"),
        ("192.168.1.20:47808", "192.168.1.20"),
        ("192.168.1.20:47809", "192.168.1.20:47809"),
        ("12345:2", "12345:2"),
        ("12345:0x02", "12345:2"),
        ("00012:007", "12:7"),
        # A controller behind a BACnet/IP-to-BACnet/IP router.
        ("2000:127.0.9.5", "2000:127.0.9.5"),
        ("2000:127.0.9.5:47808", "2000:127.0.9.5"),
        (" 2000:10.1.2.5:47809 ", "2000:10.1.2.5:47809"),
        ("02000:10.1.2.5", "2000:10.1.2.5"),
        ("65534:10.1.2.5:1", "65534:10.1.2.5:1"),
        ("12345:192.168.1.20", "12345:192.168.1.20"),
        # The 6-byte MAC in hex is the same controller, so it gets the same key.
        ("2000:0x7f000905bac0", "2000:127.0.9.5"),
        ("2000:0X0A010205BAC1", "2000:10.1.2.5:47809"),
    ],
)
def test_accepted(text: str, normalised: str) -> None:
    assert normalise_address(text) == normalised
    assert normalise_address(normalised) == normalised  # idempotent


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("2000:ahu1.local", "'ahu1.local' is not an IPv4 address"),
        ("2000:10.1.2", "'10.1.2' is not an IPv4 address"),
        ("2000:10.1.2.5:0", "port '0'"),
        ("2000:10.1.2.5:65536", "port '65536'"),
        ("2000:10.1.2.5:", "port ''"),
        ("2000:10.1.2.5:1:2", "port '1:2'"),
        ("2000:0.0.0.0", "0.0.0.0 is not a device address"),
        ("2000:255.255.255.255", "is not a device address"),
        ("2000:224.0.0.1", "is not a device address"),
        ("0:10.1.2.5", "network '0'"),
        ("65535:10.1.2.5", "network '65535'"),
        ("2000:0x7f000905bac0ff", "MAC '0x7f000905bac0ff'"),
        ("2000:0x00000000bac0", "0.0.0.0 is not a device address"),
        ("2000:0x7f0009050000", "port '0'"),
        ("12345:2@127.1.0.1", "is not an IPv4 address"),
        ("ahu1", "neither an IPv4 address nor network:MAC"),
    ],
)
def test_refused(text: str, detail: str) -> None:
    with pytest.raises(PointError) as caught:
        normalise_address(text)
    assert detail in str(caught.value)
    assert caught.value.field == "address"
    assert ADDRESS_HELP in str(caught.value)


def test_help_names_every_form() -> None:
    assert "network:MAC" in ADDRESS_HELP
    assert "network:IP[:port]" in ADDRESS_HELP
    assert "2000:10.1.2.5" in ADDRESS_HELP
    assert "host names are not accepted" in ADDRESS_HELP


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("192.168.1.20", None),
        ("192.168.1.20:47809", None),
        ("12345:2", 12345),
        ("2000:127.0.9.5", 2000),
        ("2000:127.0.9.5:47809", 2000),
    ],
)
def test_routed_network(address: str, network: int | None) -> None:
    assert routed_network(address) == network


def test_points_keeps_the_names() -> None:
    """Code importing the address helpers from points gets the same objects."""
    assert points.normalise_address is normalise_address
    assert points.PointError is PointError
    point = points.OverridePoint(
        address="2000:127.0.9.5:47808",
        object_type="av",
        instance=302,
        values=(78, 80, 82),
    )
    assert point.key == "2000:127.0.9.5/analog-value,302"
    with pytest.raises(PointError, match="network:IP"):
        points.OverridePoint(address="ahu1", object_type="av", instance=1, values=(1, 2, 3))
