"""Simulated BACnet controllers, exercised by a real bacpypes3 client over loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bacpypes3.apdu import AbortPDU, ErrorPDU
from bacpypes3.app import Application
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.networkport import NetworkPortObject
from bacpypes3.primitivedata import Null, Real
from bacpypes3.vlan import VirtualNetwork

from sim.bacnet import (
    SimBacnetError,
    SimBacnetNetwork,
    add_static_route,
    close_application,
    wait_until_bound,
)
from sim.bacnet_objects import FAN_SPEED_STAGE, SHED_ENABLE, ZONE_COOLING_SETPOINT

AV = ZONE_COOLING_SETPOINT
PV = "present-value"
BASE_IP = "127.77.0.2"
ROUTER_IP = "127.77.1.1"
NETWORK = 12345
IP_DEV = "127.77.0.2"
ROUTED_DEV = "12345:2"


@pytest.fixture
async def building(socket_enabled: None) -> AsyncIterator[SimBacnetNetwork]:
    """Three IP controllers and two routed ones on 127.77.x.x."""
    net = SimBacnetNetwork(
        ip_devices=3, routed_devices=2, base_ip=BASE_IP, router_ip=ROUTER_IP, network=NETWORK
    )
    await net.start()
    yield net
    await net.stop()


@pytest.fixture
async def client(socket_enabled: None, building: SimBacnetNetwork) -> AsyncIterator[Any]:
    """A client on an ephemeral port (47808 on loopback would answer itself)."""
    app = Application.from_object_list(
        [
            DeviceObject(
                objectIdentifier=("device", 599),
                objectName="test-client",
                vendorIdentifier=999,
                apduTimeout=2000,
                numberOfApduRetries=0,
            ),
            NetworkPortObject(
                "127.0.0.1/32:0", objectIdentifier=("network-port", 1), objectName="NetworkPort-1"
            ),
        ]
    )
    await wait_until_bound(app, "client")
    assert building.router_address is not None
    await add_static_route(app, building.router_address, [NETWORK])
    yield app
    await close_application(app)


async def _slot(client: Any, address: str, obj: str, priority: int) -> Any:
    """Read one priority-array slot over the network; None for NULL."""
    slot = await client.read_property(address, obj, "priority-array", priority)
    return None if slot.null is not None else getattr(slot, slot._choice)


@pytest.mark.parametrize("address", [IP_DEV, ROUTED_DEV])
async def test_priority_array_cycle(building: SimBacnetNetwork, client: Any, address: str) -> None:
    dev = building.device(address)
    assert dev.relinquish_default(AV) == 72.0
    assert await client.write_property(address, AV, PV, Real(80.0), priority=10) is None
    assert dev.priority_array(AV)[9] == 80.0
    assert await client.read_property(address, AV, PV) == 80.0
    assert await _slot(client, address, AV, 10) == 80.0

    dev.write_local(AV, 76.0, 8)  # an operator at priority 8 outranks us
    assert await client.read_property(address, AV, PV) == 76.0
    assert await _slot(client, address, AV, 10) == 80.0
    assert dev.priority_array(AV)[7:10] == [76.0, None, 80.0]

    await client.write_property(address, AV, PV, Null(()), priority=10)
    assert await _slot(client, address, AV, 10) is None
    assert await client.read_property(address, AV, PV) == 76.0
    await client.write_property(address, AV, PV, Null(()), priority=8)
    assert await client.read_property(address, AV, PV) == 72.0
    assert dev.priority_array(AV) == [None] * 16
    assert dev.present_value(AV) == 72.0


async def test_binary_and_multistate(building: SimBacnetNetwork, client: Any) -> None:
    dev = building.device(IP_DEV)
    assert dev.present_value(SHED_ENABLE) == "inactive"
    await client.write_property(IP_DEV, SHED_ENABLE, PV, "active", priority=10)
    assert str(await client.read_property(IP_DEV, SHED_ENABLE, PV)) == "active"
    assert dev.priority_array(SHED_ENABLE)[9] == "active"
    dev.write_local(SHED_ENABLE, "inactive", 8)
    assert str(await client.read_property(IP_DEV, SHED_ENABLE, PV)) == "inactive"
    dev.write_local(SHED_ENABLE, None, 8)
    assert dev.present_value(SHED_ENABLE) == "active"

    assert dev.relinquish_default(FAN_SPEED_STAGE) == 1
    await client.write_property(IP_DEV, FAN_SPEED_STAGE, PV, 3, priority=10)
    assert await client.read_property(IP_DEV, FAN_SPEED_STAGE, PV) == 3
    assert dev.priority_array(("multi-state-value", 1))[9] == 3
    await client.write_property(IP_DEV, FAN_SPEED_STAGE, PV, Null(()), priority=10)
    assert dev.present_value(FAN_SPEED_STAGE) == 1


async def test_routed_devices_are_distinct(building: SimBacnetNetwork, client: Any) -> None:
    await client.write_property("12345:3", AV, PV, Real(78.0), priority=10)
    assert await client.read_property("12345:3", AV, PV) == 78.0
    assert await client.read_property("12345:2", AV, PV) == 72.0
    assert building.device("12345:3").priority_array(AV)[9] == 78.0
    assert building.device("12345:2").priority_array(AV)[9] is None


@pytest.mark.parametrize("address", [IP_DEV, ROUTED_DEV])
async def test_latency(building: SimBacnetNetwork, client: Any, address: str) -> None:
    building.device(address).latency = 0.3
    start = time.monotonic()
    assert await client.read_property(address, AV, PV) == 72.0
    assert time.monotonic() - start >= 0.9 * 0.3


@pytest.mark.parametrize("address", [IP_DEV, ROUTED_DEV])
async def test_offline_gives_no_response(
    building: SimBacnetNetwork, client: Any, address: str
) -> None:
    client.device_object.apduTimeout = 300
    dev = building.device(address)
    dev.offline = True
    with pytest.raises(AbortPDU) as err:
        await client.read_property(address, AV, PV)
    assert str(err.value.apduAbortRejectReason) == "no-response"
    dev.offline = False
    assert await client.read_property(address, AV, PV) == 72.0


@pytest.mark.parametrize("address", [IP_DEV, ROUTED_DEV])
async def test_write_access_denied(building: SimBacnetNetwork, client: Any, address: str) -> None:
    dev = building.device(address)
    dev.deny_writes(AV)
    with pytest.raises(ErrorPDU) as err:
        await client.write_property(address, AV, PV, Real(80.0), priority=10)
    assert str(err.value.errorClass) == "property"
    assert str(err.value.errorCode) == "write-access-denied"
    assert dev.priority_array(AV)[9] is None
    assert await client.read_property(address, AV, PV) == 72.0  # reads still work
    dev.allow_writes(AV)
    await client.write_property(address, AV, PV, Real(80.0), priority=10)
    assert dev.present_value(AV) == 80.0


async def test_stop_while_a_request_is_delayed(building: SimBacnetNetwork, client: Any) -> None:
    client.device_object.apduTimeout = 300
    dev = building.device(ROUTED_DEV)
    dev.latency = 30.0
    read = asyncio.ensure_future(client.read_property(ROUTED_DEV, AV, PV))
    await asyncio.sleep(0.1)
    assert dev._in_flight
    await dev.stop()  # cancels the delayed request; verify_cleanup checks nothing lingers
    assert not dev._in_flight
    with pytest.raises(AbortPDU):
        await read


async def test_overridden_points_and_listeners(building: SimBacnetNetwork, client: Any) -> None:
    changes: list[tuple[str, str]] = []
    building.add_listener(lambda dev, obj: changes.append((dev.address, obj)))
    assert building.overridden_points() == 0
    for address in (IP_DEV, "127.77.0.3", ROUTED_DEV):
        await client.write_property(address, AV, PV, Real(80.0), priority=10)
    await client.write_property(IP_DEV, SHED_ENABLE, PV, "active", priority=10)
    assert building.overridden_points() == 4
    assert building.device(IP_DEV).overridden_points() == 2
    assert (ROUTED_DEV, AV) in changes
    await client.write_property(IP_DEV, AV, PV, Null(()), priority=10)
    assert building.overridden_points() == 3
    building.device("127.77.0.4").write_local(FAN_SPEED_STAGE, 2, 8)
    assert building.overridden_points() == 4


async def test_traffic_stays_on_loopback(building: SimBacnetNetwork, client: Any) -> None:
    assert building.router is not None
    apps = [client, building.router.app, *(d.app for d in building.devices if not d.routed)]
    destinations: list[tuple[str, int]] = []
    for app in apps:
        server = next(iter(app.link_layers.values())).server
        assert server.broadcast_transport is None  # /32: no broadcast socket at all
        send = server.local_transport.sendto

        def record(data: bytes, addr: tuple[str, int], send: Any = send) -> None:
            destinations.append(addr)
            send(data, addr)

        server.local_transport.sendto = record
    for dev in building.devices:
        await client.write_property(dev.address, AV, PV, Real(80.0), priority=10)
        assert await client.read_property(dev.address, AV, PV) == 80.0
    assert destinations
    assert all(host.startswith("127.") for host, _ in destinations)


def test_address_plan() -> None:
    net = SimBacnetNetwork(
        ip_devices=300, routed_devices=3, base_ip=BASE_IP, router_ip="127.77.9.1"
    )
    addresses = [d.address for d in net.devices]
    assert addresses[:2] == ["127.77.0.2", "127.77.0.3"]
    assert addresses[252:254] == ["127.77.0.254", "127.77.1.1"]
    assert addresses[-3:] == ["12345:2", "12345:3", "12345:4"]
    assert net.device("127.77.0.5:47808") is net.device("127.77.0.5")
    assert net.device("12345:4").instance == net.devices[0].instance + 302
    assert net.router_address == "127.77.9.1"
    with pytest.raises(KeyError):
        net.device("127.77.200.1")
    with pytest.raises(ValueError, match="collides"):
        SimBacnetNetwork(ip_devices=3, routed_devices=1, base_ip=BASE_IP, router_ip="127.77.0.3")
    with pytest.raises(ValueError, match=r"127\.0\.0\.0/8"):
        SimBacnetNetwork(ip_devices=1, base_ip="10.0.0.2")
    assert SimBacnetNetwork(ip_devices=1, base_ip=BASE_IP).router_address is None


async def test_stop_releases_everything(socket_enabled: None) -> None:
    net = SimBacnetNetwork(
        ip_devices=2, routed_devices=1, base_ip="127.77.2.2", router_ip=ROUTER_IP
    )
    await net.start()
    vlan_names = set(VirtualNetwork._networks)
    await net.stop()
    assert len(VirtualNetwork._networks) == len(vlan_names) - 1
    for ip in ("127.77.2.2", "127.77.2.3", ROUTER_IP):  # a plain bind fails while any holder lives
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((ip, 47808))
    await net.start()  # restartable after a clean stop
    await net.stop()


async def test_address_in_use_fails_cleanly(socket_enabled: None) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.77.3.3", 47808))
        net = SimBacnetNetwork(ip_devices=3, base_ip="127.77.3.2")
        with pytest.raises(SimBacnetError, match="already in use"):
            await net.start()
    assert all(d.app is None for d in net.devices)


async def test_fifty_devices(socket_enabled: None) -> None:
    net = SimBacnetNetwork(ip_devices=50, base_ip="127.77.4.2")
    start = time.monotonic()
    await net.start()
    try:
        assert time.monotonic() - start < 10.0  # about 0.5 s on an idle machine
        assert net.devices[-1].address == "127.77.4.51"
        net.devices[-1].write_local(AV, 75.0, 10)
        assert net.overridden_points() == 1
    finally:
        await net.stop()


# ---- duplicate-request detection and refused writes ---------------------------------------------


@pytest.mark.parametrize("address", [IP_DEV, ROUTED_DEV])
async def test_sim_controller_answers_repeated_invoke_id_from_cache(
    building: SimBacnetNetwork, client: Any, address: str
) -> None:
    """A repeated (client, invoke ID) within the window gets the kept answer, not executed."""
    dev = building.device(address)
    client.next_invoke_id = 7
    await client.write_property(address, AV, PV, Real(78.0), priority=10)
    assert dev.priority_array(AV)[9] == 78.0
    client.next_invoke_id = 7  # a client that starts counting again (a restarted stack)
    await client.write_property(address, AV, PV, Null(()), priority=10)  # acknowledged...
    assert dev.priority_array(AV)[9] == 78.0  # ...and not done
    assert dev.duplicates_answered == 1
    client.next_invoke_id = 7  # even a read with that ID gets the kept SimpleACK, no value
    assert await client.read_property(address, AV, PV) is None
    assert dev.duplicates_answered == 2

    await client.write_property(address, AV, PV, Null(()), priority=10)  # a fresh invoke ID
    assert dev.priority_array(AV)[9] is None


async def test_sim_controller_forgets_answers_after_the_window(
    building: SimBacnetNetwork, client: Any
) -> None:
    dev = building.device(IP_DEV)
    dev.duplicate_window = 0.2
    client.next_invoke_id = 9
    assert await client.read_property(IP_DEV, AV, PV) == 72.0
    dev.write_local(AV, 80.0, 10)
    client.next_invoke_id = 9
    assert await client.read_property(IP_DEV, AV, PV) == 72.0  # the kept answer
    await asyncio.sleep(0.3)
    client.next_invoke_id = 9
    assert await client.read_property(IP_DEV, AV, PV) == 80.0  # executed again


async def test_duplicate_detection_can_be_turned_off(socket_enabled: None, client: Any) -> None:
    net = SimBacnetNetwork(ip_devices=1, base_ip="127.77.5.2", duplicate_window=0)
    await net.start()
    try:
        dev = net.devices[0]
        for value in (Real(78.0), Null(())):
            client.next_invoke_id = 3
            await client.write_property(dev.address, AV, PV, value, priority=10)
        assert dev.priority_array(AV)[9] is None
        assert dev.duplicates_answered == 0
    finally:
        await net.stop()


@pytest.mark.parametrize("address", [IP_DEV, ROUTED_DEV])
async def test_whole_controller_refuses_writes_until_allowed(
    building: SimBacnetNetwork, client: Any, address: str
) -> None:
    dev = building.device(address)
    dev.deny_writes()
    assert dev.denied_points == [AV, SHED_ENABLE, FAN_SPEED_STAGE]
    for obj, value in ((AV, Real(80.0)), (SHED_ENABLE, "active")):
        with pytest.raises(ErrorPDU) as err:
            await client.write_property(address, obj, PV, value, priority=10)
        assert str(err.value.errorCode) == "write-access-denied"
        with pytest.raises(ErrorPDU):  # refused for good: a release too
            await client.write_property(address, obj, PV, Null(()), priority=10)
    assert dev.overridden_points() == 0
    dev.allow_writes()
    assert dev.denied_points == []
    await client.write_property(address, SHED_ENABLE, PV, "active", priority=10)
    assert dev.priority_array(SHED_ENABLE)[9] == "active"
