"""Invoke IDs: per destination, never reused while a controller may still remember them."""

from __future__ import annotations

import asyncio

from custom_components.loadshed_ven.bacnet import BacnetOverrideWriter, BacnetStack
from custom_components.loadshed_ven.bacnet.invoke_ids import INVOKE_IDS, REUSE_AFTER, InvokeIds
from sim.bacnet import SimBacnetNetwork

from . import AV, client_interface, make_point


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_destination_counts_on_its_own() -> None:
    ids = InvokeIds(clock=Clock(), first=lambda: 250)
    assert [ids.take("a") for _ in range(8)] == [250, 251, 252, 253, 254, 255, 0, 1]
    assert [ids.take("b") for _ in range(2)] == [250, 251]  # "a" used nothing of "b"'s


def test_no_id_is_reused_towards_a_destination_within_the_window() -> None:
    clock = Clock()
    ids = InvokeIds(clock=clock, first=lambda: 0)
    first_round = [ids.take("a") for _ in range(INVOKE_IDS)]
    assert sorted(first_round) == list(range(INVOKE_IDS))
    clock.now += 1.0
    # More than 256 requests within the window: the least recently used ID goes first.
    assert [ids.take("a") for _ in range(3)] == [0, 1, 2]
    clock.now += REUSE_AFTER
    assert ids.take("a") == 3  # forgotten by now: counting simply goes on


def test_a_freed_id_is_preferred_to_a_recent_one() -> None:
    clock = Clock()
    ids = InvokeIds(clock=clock, first=lambda: 0)
    assert [ids.take("a") for _ in range(3)] == [0, 1, 2]
    clock.now += REUSE_AFTER + 1
    for _ in range(INVOKE_IDS - 3):
        ids.take("a")  # 3..255, all recent
    assert ids.take("a") == 0  # 0, 1, 2 are old enough again


async def test_more_than_256_requests_to_one_controller_are_all_executed(
    socket_enabled: None,
) -> None:
    """bacpypes3's own counter wraps after 256 requests; a controller that keeps answers for a
    few seconds would then answer a later request from its cache instead of executing it."""
    net = SimBacnetNetwork(ip_devices=2, base_ip="127.79.8.2")
    await net.start()
    stack = BacnetStack(client_interface())
    await stack.start()
    try:
        writer = BacnetOverrideWriter(stack)
        busy, other = net.devices
        for round_ in range(100):  # 100 x (write + read) to one, then one read elsewhere
            value = 70.0 + round_ % 5
            assert (await writer.write(make_point(busy.address, value=value), value)).ok
            assert (await writer.read(make_point(other.address))).ok
        assert busy.priority_array(AV)[9] == 74.0
        outcome = await writer.release(make_point(busy.address))
        assert outcome.ok
        assert busy.priority_array(AV)[9] is None
        assert busy.duplicates_answered == other.duplicates_answered == 0
    finally:
        await stack.close()
        await net.stop()
        await asyncio.sleep(0)
