"""One concurrency budget per shared stack: entries on one interface never add up their limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from custom_components.loadshed_ven.bacnet import (
    BacnetLimits,
    BacnetOverrideWriter,
    StackRegistry,
)
from sim.bacnet import SimBacnetNetwork

from . import AV, client_interface, make_point

BASE_IP = "127.79.6.2"
ROUTER_IP = "127.79.7.1"
NETWORK = 34567
IP_DEVS = [f"127.79.6.{n}" for n in range(2, 8)]
ROUTED_DEVS = [f"{NETWORK}:{mac}" for mac in range(2, 5)]
LATENCY = 0.05
LIMITS = BacnetLimits(per_device=2, per_network=1, overall=3)


@pytest.fixture
async def building(socket_enabled: None) -> AsyncIterator[SimBacnetNetwork]:
    """Six IP controllers and three routed ones, each answering after LATENCY."""
    net = SimBacnetNetwork(
        ip_devices=6, routed_devices=3, base_ip=BASE_IP, router_ip=ROUTER_IP, network=NETWORK
    )
    await net.start()
    for device in net.devices:
        device.latency = LATENCY
    yield net
    await net.stop()


@pytest.fixture
async def registry(building: SimBacnetNetwork) -> AsyncIterator[StackRegistry]:
    """A registry whose stacks enforce LIMITS."""
    registry = StackRegistry(LIMITS)
    yield registry
    await registry.close_all()


async def test_entries_sharing_a_stack_share_its_limits(
    building: SimBacnetNetwork, registry: StackRegistry
) -> None:
    """Two users of one interface, each writing every controller: 3 in flight, not 6."""
    first = await registry.acquire(client_interface({NETWORK: ROUTER_IP}))
    second = await registry.acquire(client_interface({NETWORK: ROUTER_IP}))
    assert first.stack is second.stack
    writers = [BacnetOverrideWriter(first.stack), BacnetOverrideWriter(second.stack)]
    assert writers[0].limits == writers[1].limits == LIMITS
    outcomes = await asyncio.gather(
        *(writer.write(make_point(a), 79.0) for writer in writers for a in IP_DEVS)
    )
    assert all(o.ok for o in outcomes)
    assert building.in_flight.peak == LIMITS.overall
    for address in IP_DEVS:
        assert building.device(address).priority_array(AV)[9] == 79.0


async def test_a_shared_trunk_takes_one_request_at_a_time(
    building: SimBacnetNetwork, registry: StackRegistry
) -> None:
    """The per-network limit holds across users too: one request on the trunk at once."""
    handles = [await registry.acquire(client_interface({NETWORK: ROUTER_IP})) for _ in range(2)]
    writers = [BacnetOverrideWriter(handle.stack) for handle in handles]
    outcomes = await asyncio.gather(
        *(writer.release(make_point(a)) for writer in writers for a in ROUTED_DEVS)
    )
    assert all(o.ok for o in outcomes)
    assert building.in_flight.peak == LIMITS.per_network


async def test_explicit_limits_get_a_budget_of_their_own(
    building: SimBacnetNetwork, registry: StackRegistry
) -> None:
    """Only a writer given limits of its own (measurements) steps outside the stack's budget."""
    handle = await registry.acquire(client_interface({NETWORK: ROUTER_IP}))
    shared = BacnetOverrideWriter(handle.stack)
    own = BacnetOverrideWriter(handle.stack, BacnetLimits(per_device=2, overall=2))
    outcomes = await asyncio.gather(
        *(shared.write(make_point(a), 78.0) for a in IP_DEVS[:3]),
        *(own.write(make_point(a), 78.0) for a in IP_DEVS[3:]),
    )
    assert all(o.ok for o in outcomes)
    assert building.in_flight.peak == LIMITS.overall + 2
