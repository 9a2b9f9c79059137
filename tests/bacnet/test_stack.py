"""The shared local stack: port checks, sharing, routes and a clean close."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest

from custom_components.loadshed_ven.bacnet import (
    BacnetOverrideWriter,
    BacnetStack,
    BacnetStackError,
    InterfaceConflictError,
    LocalInterface,
    PortInUseError,
    StackClosedError,
    StackRegistry,
)
from custom_components.loadshed_ven.engine.overrides import FailureKind
from sim.bacnet import SimBacnetNetwork

from . import AV, client_interface, make_point

BASE_IP = "127.79.4.2"
ROUTER_IP = "127.79.5.1"
NETWORK = 34567
LOCAL_IP = "127.79.4.200"  # the adapter's own address in these tests
LOCAL_PORT = 47809  # not 47808: the simulated controllers use it


def _interface(**changes: object) -> LocalInterface:
    fields: dict[str, object] = {
        "address": f"{LOCAL_IP}/32",
        "port": LOCAL_PORT,
        "device_instance": 600,
        "apdu_timeout_ms": 500,
        "apdu_retries": 0,
    }
    fields.update(changes)
    return LocalInterface(**fields)  # type: ignore[arg-type]


def _port_is_free(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((ip, port))
        except OSError:
            return False
    return True


@pytest.fixture
async def building(socket_enabled: None) -> AsyncIterator[SimBacnetNetwork]:
    """One IP controller and one routed controller."""
    net = SimBacnetNetwork(
        ip_devices=1, routed_devices=1, base_ip=BASE_IP, router_ip=ROUTER_IP, network=NETWORK
    )
    await net.start()
    yield net
    await net.stop()


@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain", "another-bacpypes3"])
async def test_port_in_use_fails_fast(socket_enabled: None, reuse_port: bool) -> None:
    registry = StackRegistry()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        if reuse_port:  # how bacpypes3 binds: it would silently share the port
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((LOCAL_IP, LOCAL_PORT))
        start = time.monotonic()
        with pytest.raises(PortInUseError) as err:
            await registry.acquire(_interface())
        assert time.monotonic() - start < 0.5
    assert str(err.value) == (
        f"UDP port {LOCAL_PORT} on {LOCAL_IP} is already in use by another program"
    )
    assert len(registry) == 0
    handle = await registry.acquire(_interface())  # the port is free again
    await handle.release()


async def test_address_not_on_this_host(socket_enabled: None) -> None:
    with pytest.raises(BacnetStackError, match="not an address of this host"):
        await StackRegistry().acquire(_interface(address="192.0.2.55/24"))


async def test_registry_shares_one_stack(building: SimBacnetNetwork, socket_enabled: None) -> None:
    registry = StackRegistry()
    first = await registry.acquire(_interface(routes={NETWORK: ROUTER_IP}))
    second = await registry.acquire(_interface())
    assert first.stack is second.stack
    assert first.stack.app is second.stack.app
    assert (len(registry), registry.users(_interface())) == (1, 2)
    assert first.stack.local_port == LOCAL_PORT
    assert not _port_is_free(LOCAL_IP, LOCAL_PORT)

    writer = BacnetOverrideWriter(second.stack)
    assert (await writer.write(make_point("34567:2"), 81.0)).ok
    assert building.device("34567:2").priority_array(AV)[9] == 81.0

    await first.release()
    await first.release()  # a second release of the same handle changes nothing
    assert registry.users(_interface()) == 1
    assert (await writer.release(make_point("34567:2"))).ok

    await second.release()
    assert len(registry) == 0
    assert not second.stack.running
    assert _port_is_free(LOCAL_IP, LOCAL_PORT)
    outcome = await writer.read(make_point(BASE_IP))
    assert (outcome.ok, outcome.failure) == (False, FailureKind.ERROR)
    assert outcome.detail == "the BACnet stack is not running"

    third = await registry.acquire(_interface())  # a fresh stack after the last release
    assert third.stack is not first.stack
    await third.release()


async def test_conflicting_identity_is_refused(socket_enabled: None) -> None:
    registry = StackRegistry()
    handle = await registry.acquire(_interface(routes={NETWORK: ROUTER_IP}))
    try:
        with pytest.raises(InterfaceConflictError, match="already runs BACnet device 600"):
            await registry.acquire(_interface(device_instance=601))
        with pytest.raises(InterfaceConflictError, match="already routed through"):
            await registry.acquire(_interface(routes={NETWORK: "127.79.5.9"}))
        assert registry.users(_interface()) == 1
        with pytest.raises(InterfaceConflictError):  # all or nothing
            await registry.acquire(_interface(routes={4001: "127.79.5.3", NETWORK: "127.79.5.9"}))
        assert dict(handle.stack.routes) == {NETWORK: ROUTER_IP}
        other = await registry.acquire(_interface(routes={4000: "127.79.5.2"}))
        assert dict(handle.stack.routes) == {NETWORK: ROUTER_IP, 4000: "127.79.5.2"}
        await other.release()
    finally:
        await handle.release()


async def test_close_fails_a_pending_request_and_leaves_nothing(
    building: SimBacnetNetwork, socket_enabled: None
) -> None:
    stack = BacnetStack(client_interface({NETWORK: ROUTER_IP}, apdu_timeout_ms=5000))
    await stack.start()
    writer = BacnetOverrideWriter(stack)
    building.device(BASE_IP).latency = 10.0
    pending = asyncio.create_task(writer.write(make_point(BASE_IP), 80.0))
    await asyncio.sleep(0.1)
    await stack.close()
    outcome = await asyncio.wait_for(pending, 1)
    assert (outcome.ok, outcome.failure) == (False, FailureKind.ERROR)
    assert outcome.detail == "the BACnet stack was closed"
    with pytest.raises(StackClosedError):
        _ = stack.app
    with pytest.raises(BacnetStackError, match="only once"):
        await stack.start()
    # verify_cleanup fails the test if a transaction timer or task was left behind


@pytest.mark.parametrize("address", [BASE_IP, f"{NETWORK}:2"])
async def test_release_after_stack_restart_not_swallowed_by_duplicate_detection(
    building: SimBacnetNetwork, socket_enabled: None, address: str
) -> None:
    """A stack re-created on the same address (a reload) goes on with the invoke IDs.

    The simulated controllers keep their answer to each (client, invoke ID) for a few seconds
    and answer a repeat from it without executing it, as real ones do: a new stack that
    counted from the old one's first ID again would see its release acknowledged, not done.
    """
    device = building.device(address)
    assert device.duplicate_window > 0
    point = make_point(address, value=78.0)
    interface = _interface(routes={NETWORK: ROUTER_IP})
    first = BacnetStack(interface)
    await first.start()
    try:
        assert (await BacnetOverrideWriter(first).write(point, 78.0)).ok
    finally:
        await first.close()
    assert device.priority_array(AV)[9] == 78.0

    second = BacnetStack(interface)
    await second.start()
    try:
        outcome = await BacnetOverrideWriter(second).release(point)
    finally:
        await second.close()
    assert (outcome.ok, outcome.failure) == (True, None)
    assert device.priority_array(AV)[9] is None
    assert device.duplicates_answered == 0


async def test_ephemeral_port_and_routes_installed(
    building: SimBacnetNetwork, socket_enabled: None
) -> None:
    stack = BacnetStack(client_interface({NETWORK: ROUTER_IP}))
    await stack.start()
    try:
        assert stack.local_port not in (0, 47808)
        assert dict(stack.routes) == {NETWORK: ROUTER_IP}
        assert not stack.interface.can_broadcast
        assert (await BacnetOverrideWriter(stack).read(make_point("34567:2"))).ok
    finally:
        await stack.close()


def test_interface_is_validated() -> None:
    iface = LocalInterface(address=" 192.168.1.5/24 ", device_instance=7, routes={5: "10.0.0.1"})
    assert (iface.ip, iface.key, iface.can_broadcast) == (
        "192.168.1.5",
        ("192.168.1.5", 47808),
        True,
    )
    assert iface.transaction_seconds == 6.0
    assert LocalInterface(address="10.1.1.1", device_instance=1).address == "10.1.1.1/32"


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"address": "bms.local/24"}, "is not ip/prefix"),
        ({"port": 70000}, "outside 0-65535"),
        ({"device_instance": 4194303}, "outside 0-4194302"),
        ({"routes": {0: "10.0.0.2"}}, "network 0 is outside"),
        ({"routes": {5: "router.local"}}, "'router.local' is not an IPv4 address"),
        ({"apdu_timeout_ms": 0}, "APDU timeout"),
        ({"device_name": " "}, "device name is empty"),
    ],
)
def test_interface_rejects(fields: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LocalInterface(**{"address": "10.0.0.1/24", "device_instance": 1, **fields})  # type: ignore[arg-type]
