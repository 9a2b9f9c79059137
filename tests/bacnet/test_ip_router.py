"""Controllers behind a BACnet/IP-to-BACnet/IP router, addressed ``network:IP`` (6-byte MACs)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from bacpypes3.pdu import Address, RemoteStation

from custom_components.loadshed_ven.bacnet import BacnetOverrideWriter, BacnetStack
from custom_components.loadshed_ven.bacnet.values import check_address, to_address
from custom_components.loadshed_ven.engine.overrides import FailureKind
from sim.ip_router import SimRoutedIpSite

from . import AV, client_interface, make_point

ROUTER_IP = "127.84.0.1"
FAR_IP = "127.84.1.1"
DEVICE_IP = "127.84.1.2"  # and .3
NETWORK = 2000


@pytest.fixture
async def site(socket_enabled: None) -> AsyncIterator[SimRoutedIpSite]:
    routed = SimRoutedIpSite(
        ROUTER_IP,
        2,
        far_ip=FAR_IP,
        base_ip=DEVICE_IP,
        network=NETWORK,
        first_device_instance=3901,
    )
    await routed.start()
    yield routed
    await routed.stop()


@pytest.fixture
async def stack(site: SimRoutedIpSite) -> AsyncIterator[BacnetStack]:
    running = BacnetStack(client_interface({NETWORK: ROUTER_IP}))
    await running.start()
    yield running
    await running.close()


@pytest.mark.parametrize(
    "text", ["2000:127.84.1.2", "2000:127.84.1.2:47808", "2000:0x7f540102bac0"]
)
def test_a_six_byte_remote_station(text: str) -> None:
    address = to_address(text)
    assert isinstance(address, RemoteStation)
    assert address.addrNet == NETWORK
    assert address.addrAddr == bytes([127, 84, 1, 2, 0xBA, 0xC0])
    assert address == Address("2000:127.84.1.2")
    assert str(address) == "2000:127.84.1.2"


def test_other_ports_and_refusals() -> None:
    assert to_address("2000:10.1.2.5:47809").addrAddr == bytes([10, 1, 2, 5, 0xBA, 0xC1])
    with pytest.raises(ValueError, match="host names are not accepted"):
        check_address("2000:bbmd.local")


async def test_write_read_back_and_release(site: SimRoutedIpSite, stack: BacnetStack) -> None:
    writer = BacnetOverrideWriter(stack)
    point = make_point(site.addresses[0])
    assert point.address == f"{NETWORK}:{DEVICE_IP}"
    outcome = await writer.write(point, 80.0)
    assert (outcome.ok, outcome.slot_value) == (True, 80.0)
    device = site.device(point.address)
    assert device.priority_array(AV)[9] == 80.0
    assert device.present_value(AV) == 80.0
    assert (await writer.read(point)).slot_value == 80.0
    assert (await writer.release(point)).ok
    assert device.priority_array(AV)[9] is None
    assert device.present_value(AV) == 72.0


async def test_the_router_is_really_used(site: SimRoutedIpSite, stack: BacnetStack) -> None:
    """With the router down the same address gets no answer: nothing else reaches it."""
    writer = BacnetOverrideWriter(stack)
    point = make_point(site.addresses[1])
    assert (await writer.read(point)).ok
    await site.router.stop()
    outcome = await writer.read(point)
    assert (outcome.ok, outcome.failure) == (False, FailureKind.OFFLINE)


async def test_who_is_to_the_routed_network(site: SimRoutedIpSite, stack: BacnetStack) -> None:
    answers = await stack.app.who_is(address=Address(f"{NETWORK}:*"), timeout=1.0)
    found = {str(answer.pduSource): answer.iAmDeviceIdentifier[1] for answer in answers}
    assert found == {
        f"{NETWORK}:127.84.1.2": 3901,
        f"{NETWORK}:127.84.1.3": 3902,
    }
