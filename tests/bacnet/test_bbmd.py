"""Foreign-device registration with a BBMD, against the simulated BBMD and remote controllers.

The remote controllers hear broadcasts only as Forwarded-NPDUs from the BBMD, so these tests
fail when the client does not really register and send its broadcasts through the BBMD.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from custom_components.loadshed_ven.bacnet import (
    BacnetOverrideWriter,
    BacnetStack,
    BbmdRegistration,
    BbmdStatus,
    BbmdTiming,
    InterfaceConflictError,
    LocalInterface,
    StackRegistry,
)
from sim.bbmd import SimRemoteSite

from . import AV, make_point

BBMD_IP = "127.83.0.1"
REMOTE_IP = "127.83.1.2"  # the remote controllers: 127.83.1.2 and .3
REMOTE_INSTANCES = {3801, 3802}
# Short upkeep so that outages and recoveries show within a second or two.
FAST = BbmdTiming(answer_seconds=0.3, tries=1, retry_seconds=0.3, renew_seconds=0.6)


def _foreign(port: int = 0, **bbmd: object) -> LocalInterface:
    return LocalInterface(
        address="127.0.0.1/32",
        port=port,
        device_instance=598,
        apdu_timeout_ms=1000,
        apdu_retries=0,
        bbmd=BbmdRegistration(address=BBMD_IP, port=47807, **bbmd),  # type: ignore[arg-type]
    )


@pytest.fixture
async def site(socket_enabled: None) -> AsyncIterator[SimRemoteSite]:
    remote = SimRemoteSite(BBMD_IP, 2, base_ip=REMOTE_IP, first_device_instance=3801)
    await remote.start()
    yield remote
    await remote.stop()


@pytest.fixture
async def stack(site: SimRemoteSite) -> AsyncIterator[BacnetStack]:
    running = BacnetStack(_foreign(ttl=30), bbmd_timing=FAST)
    await running.start()
    yield running
    await running.close()


async def _reach(stack: BacnetStack, wanted: BbmdStatus, within: float = 3.0) -> list[str]:
    """Wait until the registration reaches ``wanted``; returns the statuses seen meanwhile."""
    seen: list[str] = []
    reached = asyncio.Event()

    def listener(status: BbmdStatus, reason: str) -> None:
        seen.append(status)
        if status is wanted:
            reached.set()

    remove = stack.add_bbmd_listener(listener)
    try:
        if stack.bbmd_status is not wanted:
            async with asyncio.timeout(within):
                await reached.wait()
    finally:
        remove()
    return seen


async def _discovered(stack: BacnetStack) -> set[int]:
    answers = await stack.app.who_is(timeout=0.8)
    return {answer.iAmDeviceIdentifier[1] for answer in answers} & REMOTE_INSTANCES


async def test_registers_and_discovers_through_the_bbmd(
    site: SimRemoteSite, stack: BacnetStack
) -> None:
    await _reach(stack, BbmdStatus.REGISTERED)
    assert stack.bbmd_reason == f"registered with the BBMD at {BBMD_IP}:47807"
    assert site.bbmd.foreign_devices == [f"127.0.0.1:{stack.local_port}"]
    assert await _discovered(stack) == REMOTE_INSTANCES


async def test_a_client_that_is_not_registered_finds_nothing(site: SimRemoteSite) -> None:
    # A plain client on the remote controllers' own /24, broadcasting on their port.
    plain = BacnetStack(LocalInterface(address="127.83.1.200/24", port=47808, device_instance=597))
    await plain.start()
    try:
        assert plain.bbmd_status is None
        assert await _discovered(plain) == set()
    finally:
        await plain.close()
    assert site.bbmd.foreign_devices == []


async def test_refused_registration(site: SimRemoteSite) -> None:
    site.bbmd.refuse_registrations = True
    stack = BacnetStack(_foreign(), bbmd_timing=FAST)
    await stack.start()
    try:
        await _reach(stack, BbmdStatus.REFUSED)
        assert "refused the registration (NAK 0x0030)" in stack.bbmd_reason
        assert await _discovered(stack) == set()  # broadcasts are not sent while refused
        site.bbmd.refuse_registrations = False  # the BBMD is reconfigured: we get in
        await _reach(stack, BbmdStatus.REGISTERED)
        assert await _discovered(stack) == REMOTE_INSTANCES
    finally:
        await stack.close()


async def test_bbmd_down_and_back_registers_again(site: SimRemoteSite, stack: BacnetStack) -> None:
    await _reach(stack, BbmdStatus.REGISTERED)
    await site.bbmd.stop()
    seen = await _reach(stack, BbmdStatus.UNREACHABLE)
    assert seen == [BbmdStatus.UNREACHABLE]
    assert "did not answer the registration" in stack.bbmd_reason

    await site.bbmd.start()  # a rebooted BBMD has an empty foreign-device table
    assert site.bbmd.foreign_devices == []
    await _reach(stack, BbmdStatus.REGISTERED)
    assert site.bbmd.foreign_devices == [f"127.0.0.1:{stack.local_port}"]
    assert await _discovered(stack) == REMOTE_INSTANCES


async def test_a_bbmd_that_forgot_us_is_noticed_at_the_next_broadcast(
    site: SimRemoteSite,
) -> None:
    """After a quick BBMD reboot its NAK of our Who-Is makes us register again at once."""
    slow = BbmdTiming(answer_seconds=0.3, tries=1, retry_seconds=0.3, renew_seconds=600.0)
    stack = BacnetStack(_foreign(), bbmd_timing=slow)
    await stack.start()
    try:
        await _reach(stack, BbmdStatus.REGISTERED)
        await site.bbmd.stop()
        await site.bbmd.start()  # back before we noticed: our entry is gone
        assert await _discovered(stack) == set()  # NAKed, not forwarded
        await asyncio.sleep(0.2)
        assert site.bbmd.foreign_devices == [f"127.0.0.1:{stack.local_port}"]
        assert await _discovered(stack) == REMOTE_INSTANCES
    finally:
        await stack.close()


async def test_unreachable_bbmd_at_start(socket_enabled: None) -> None:
    stack = BacnetStack(_foreign(), bbmd_timing=FAST)
    statuses: list[BbmdStatus] = []
    stack.add_bbmd_listener(lambda status, _reason: statuses.append(status))
    await stack.start()
    try:
        assert stack.bbmd_status is BbmdStatus.REGISTERING
        await _reach(stack, BbmdStatus.UNREACHABLE)
    finally:
        await stack.close()
    assert statuses[0] is BbmdStatus.UNREACHABLE


async def test_write_read_back_and_release_on_a_remote_controller(
    site: SimRemoteSite, stack: BacnetStack
) -> None:
    await _reach(stack, BbmdStatus.REGISTERED)
    writer = BacnetOverrideWriter(stack)
    point = make_point(REMOTE_IP)
    outcome = await writer.write(point, 80.0)
    assert (outcome.ok, outcome.slot_value) == (True, 80.0)
    device = site.devices[0]
    assert device.priority_array(AV)[9] == 80.0
    assert (await writer.read(point)).slot_value == 80.0
    assert (await writer.release(point)).ok
    assert device.priority_array(AV)[9] is None
    assert device.present_value(AV) == 72.0


async def test_listener_removal_and_no_bbmd(socket_enabled: None) -> None:
    stack = BacnetStack(_foreign(), bbmd_timing=FAST)
    calls: list[BbmdStatus] = []
    remove = stack.add_bbmd_listener(lambda status, _reason: calls.append(status))
    remove()
    remove()  # a second call changes nothing
    assert stack.bbmd_status is None  # not started yet
    await stack.start()
    try:
        await _reach(stack, BbmdStatus.UNREACHABLE)
    finally:
        await stack.close()
    assert calls == []
    assert (stack.bbmd_status, stack.bbmd_reason) == (None, "")

    plain = BacnetStack(LocalInterface(address="127.0.0.1/32", port=0, device_instance=594))
    plain.add_bbmd_listener(lambda status, _reason: calls.append(status))
    await plain.start()
    try:
        assert (plain.bbmd_status, plain.bbmd_reason) == (None, "")
    finally:
        await plain.close()
    assert calls == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"address": "bbmd.local"}, "is not an IPv4 address"),
        ({"address": "0.0.0.0"}, "is not a device address"),
        ({"address": "10.0.0.1", "port": 0}, "port 0 is outside 1-65535"),
        ({"address": "10.0.0.1", "ttl": 29}, "time-to-live 29 s is outside 30-65535"),
        ({"address": "10.0.0.1", "ttl": 65536}, "outside 30-65535"),
    ],
)
def test_registration_is_validated(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BbmdRegistration(**fields)  # type: ignore[arg-type]


def test_registration_defaults_and_interface() -> None:
    bbmd = BbmdRegistration(address=" 10.0.0.1 ")
    assert (bbmd.address, bbmd.port, bbmd.ttl, bbmd.text) == (
        "10.0.0.1",
        47808,
        900,
        "10.0.0.1:47808",
    )
    iface = LocalInterface(address="10.0.0.5/24", device_instance=1, bbmd=bbmd)
    assert iface.can_broadcast  # through the BBMD
    assert not iface.listens_for_broadcasts  # a foreign device opens no broadcast socket
    assert not iface.same_identity(LocalInterface(address="10.0.0.5/24", device_instance=1))
    with pytest.raises(ValueError, match="own address"):
        LocalInterface(address="10.0.0.1/24", device_instance=1, bbmd=bbmd)


async def test_registry_refuses_a_second_bbmd_on_one_port(site: SimRemoteSite) -> None:
    registry = StackRegistry()
    first = await registry.acquire(_foreign(port=47811))
    try:
        same = await registry.acquire(_foreign(port=47811))
        assert same.stack is first.stack
        await same.release()
        with pytest.raises(InterfaceConflictError, match="must use the same BBMD"):
            await registry.acquire(_foreign(port=47811, ttl=60))
    finally:
        await first.release()
