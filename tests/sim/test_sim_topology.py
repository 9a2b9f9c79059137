"""The optional parts of the simulated BACnet network: a BBMD site and a BACnet/IP router."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from bacpypes3.pdu import Address

from custom_components.loadshed_ven.bacnet import (
    BacnetOverrideWriter,
    BacnetStack,
    BbmdRegistration,
    BbmdStatus,
    BbmdTiming,
    LocalInterface,
)
from sim.__main__ import _parser
from sim.bacnet import SimBacnetNetwork
from sim.bbmd import SIM_BBMD_PORT
from sim.building import BuildingConfig, SimBuilding
from tests.bacnet import AV, make_point

FAST = BbmdTiming(answer_seconds=0.3, tries=1, retry_seconds=0.3, renew_seconds=5.0)


@pytest.fixture
async def network(socket_enabled: None) -> AsyncIterator[SimBacnetNetwork]:
    net = SimBacnetNetwork(
        ip_devices=1,
        base_ip="127.93.0.2",
        first_device_instance=5001,
        remote_devices=2,
        bbmd_ip="127.93.1.1",
        routed_ip_devices=2,
        ip_router_ip="127.93.2.1",
    )
    await net.start()
    yield net
    await net.stop()


def test_off_by_default() -> None:
    net = SimBacnetNetwork(ip_devices=1)
    assert (net.remote, net.routed_ip) == (None, None)
    assert "bbmd" not in SimBuilding(BuildingConfig(devices=1)).endpoints()["bacnet"]  # type: ignore[operator]


def test_address_and_instance_plan() -> None:
    net = SimBacnetNetwork(
        ip_devices=2, routed_devices=1, base_ip="127.93.0.2", remote_devices=2, routed_ip_devices=2
    )
    assert net.remote is not None
    assert net.routed_ip is not None
    assert [d.instance for d in net.devices] == [1001, 1002, 1003]  # the MS/TP router: 1004
    assert [(d.address, d.instance) for d in net.remote.devices] == [
        ("127.2.0.2", 1005),
        ("127.2.0.3", 1006),
    ]
    assert net.remote.bbmd.address == f"127.2.0.1:{SIM_BBMD_PORT}"
    assert net.routed_ip.router.far_ip == "127.3.0.2"
    assert net.routed_ip.addresses == ["2000:127.3.0.3", "2000:127.3.0.4"]
    assert [d.instance for d in net.routed_ip.devices] == [1008, 1009]
    assert net.device("2000:127.3.0.4:47808") is net.routed_ip.devices[1]
    assert net.device("127.2.0.3") is net.remote.devices[1]


def test_command_line_options() -> None:
    args = _parser().parse_args(
        ["--remote-devices", "3", "--bbmd-ip", "127.9.0.1", "--routed-ip-devices", "2"]
    )
    assert (args.remote_devices, args.bbmd_ip, args.routed_ip_devices, args.ip_router_ip) == (
        3,
        "127.9.0.1",
        2,
        "127.3.0.1",
    )
    defaults = _parser().parse_args([])
    assert (defaults.remote_devices, defaults.routed_ip_devices) == (0, 0)


async def test_both_paths_in_one_building(network: SimBacnetNetwork) -> None:
    assert network.remote is not None
    assert network.routed_ip is not None
    stack = BacnetStack(
        LocalInterface(
            address="127.0.0.1/32",
            port=0,
            device_instance=595,
            apdu_timeout_ms=1000,
            apdu_retries=0,
            routes={2000: "127.93.2.1"},
            bbmd=BbmdRegistration(address="127.93.1.1", port=SIM_BBMD_PORT, ttl=30),
        ),
        bbmd_timing=FAST,
    )
    changes: list[tuple[str, int]] = []
    network.add_listener(lambda device, _oid: changes.append((device.address, device.instance)))
    await stack.start()
    try:
        answers = await stack.app.who_is(timeout=0.8)
        assert stack.bbmd_status is BbmdStatus.REGISTERED
        assert {a.iAmDeviceIdentifier[1] for a in answers} >= {5003, 5004}
        routed = await stack.app.who_is(address=Address("2000:*"), timeout=0.8)
        assert {a.iAmDeviceIdentifier[1] for a in routed} == {5006, 5007}

        writer = BacnetOverrideWriter(stack)
        for address in ("127.93.1.3", "2000:127.93.2.4"):
            assert (await writer.write(make_point(address), 79.0)).ok
            assert network.device(address).priority_array(AV)[9] == 79.0
        assert network.overridden_points() == 2  # what the simulated meter counts
        assert changes == [("127.93.1.3", 5004), ("127.93.2.4", 5007)]
    finally:
        await stack.close()
