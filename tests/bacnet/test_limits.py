"""Timeouts, offline devices, bounded concurrency and the reachability check."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bacpypes3.apdu import WritePropertyRequest

from custom_components.loadshed_ven.bacnet import (
    BacnetLimits,
    BacnetOverrideWriter,
    BacnetStack,
    StackRegistry,
)
from custom_components.loadshed_ven.bacnet.limits import Throttle, trunk_network
from custom_components.loadshed_ven.engine.overrides import FailureKind, Outcome
from sim.bacnet import SimBacnetNetwork

from . import AV, client_interface, make_point

BASE_IP = "127.79.2.2"
ROUTER_IP = "127.79.3.1"
NETWORK = 23456
IP_DEVS = [f"127.79.2.{n}" for n in range(2, 8)]
ROUTED_DEVS = [f"{NETWORK}:{mac}" for mac in range(2, 6)]
APDU_TIMEOUT_MS = 200
RETRIES = 1  # bacpypes3 gives up after 2 x 0.2 s
LATENCY = 0.05


@pytest.fixture
async def building(socket_enabled: None) -> AsyncIterator[SimBacnetNetwork]:
    """Six IP controllers and four routed ones."""
    net = SimBacnetNetwork(
        ip_devices=6, routed_devices=4, base_ip=BASE_IP, router_ip=ROUTER_IP, network=NETWORK
    )
    await net.start()
    yield net
    await net.stop()


@pytest.fixture
async def stack(socket_enabled: None, building: SimBacnetNetwork) -> AsyncIterator[BacnetStack]:
    """A stack with short APDU timeouts so offline devices fail fast."""
    registry = StackRegistry()
    handle = await registry.acquire(
        client_interface(
            {NETWORK: ROUTER_IP}, apdu_timeout_ms=APDU_TIMEOUT_MS, apdu_retries=RETRIES
        )
    )
    yield handle.stack
    await handle.release()


def _writer(stack: BacnetStack, **limits: Any) -> BacnetOverrideWriter:
    return BacnetOverrideWriter(stack, BacnetLimits(guard_margin=0.5, **limits))


@pytest.mark.parametrize("address", [IP_DEVS[0], ROUTED_DEVS[0]])
async def test_offline_device_within_the_configured_timeout(
    building: SimBacnetNetwork, stack: BacnetStack, address: str
) -> None:
    writer = _writer(stack)
    building.device(address).offline = True
    start = time.monotonic()
    outcome = await writer.write(make_point(address), 80.0)
    elapsed = time.monotonic() - start
    assert (outcome.ok, outcome.failure) == (False, FailureKind.OFFLINE)
    assert outcome.detail is not None
    assert "no-response" in outcome.detail  # bacpypes3's abort came before the guard
    assert 0.35 <= elapsed < writer.request_timeout(address)
    assert building.device(address).priority_array(AV)[9] is None

    building.device(address).offline = False
    assert (await writer.write(make_point(address), 80.0)).ok


async def test_offline_during_read_back(building: SimBacnetNetwork, stack: BacnetStack) -> None:
    writer = _writer(stack)
    dev = building.device(IP_DEVS[1])
    real_request = stack.app.request

    async def write_then_vanish(apdu: Any) -> Any:
        result = await real_request(apdu)
        if apdu.apduService == WritePropertyRequest.service_choice:
            dev.offline = True
        return result

    stack.app.request = write_then_vanish
    try:
        outcome = await writer.write(make_point(dev.address), 80.0)
    finally:
        del stack.app.request
    assert (outcome.ok, outcome.failure) == (False, FailureKind.OFFLINE)
    assert outcome.detail is not None
    assert outcome.detail.startswith("write accepted, but reading it back failed")
    assert dev.priority_array(AV)[9] == 80.0  # the write did land: the engine keeps it FAILED


async def test_guard_bounds_a_stuck_request(
    stack: BacnetStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = _writer(stack)

    async def hang(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(3600)

    monkeypatch.setattr(stack.app, "request", hang)  # what every read and write awaits
    start = time.monotonic()
    outcome = await writer.read(make_point(IP_DEVS[0]))
    assert (outcome.ok, outcome.failure) == (False, FailureKind.OFFLINE)
    assert time.monotonic() - start == pytest.approx(0.4 + 0.5, abs=0.3)


async def test_cancellation_is_not_swallowed(
    stack: BacnetStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = _writer(stack)
    started = asyncio.Event()

    async def hang(*args: Any, **kwargs: Any) -> Any:
        started.set()
        await asyncio.sleep(3600)

    monkeypatch.setattr(stack.app, "request", hang)  # what every read and write awaits
    task = asyncio.create_task(writer.write(make_point(IP_DEVS[0]), 80.0))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_per_device_limit(building: SimBacnetNetwork, stack: BacnetStack) -> None:
    writer = _writer(stack, per_device=2)
    dev = building.device(IP_DEVS[2])
    dev.latency = LATENCY
    values: list[Any] = [80.0, "active", 2]
    points = [
        make_point(dev.address, object_type, instance, value=value)
        for (object_type, instance), value in zip(
            [("analog-value", 302), ("binary-value", 1), ("multi-state-value", 1)],
            values,
            strict=True,
        )
    ]
    work = [(points[n % 3], values[n % 3]) for n in range(20)]
    outcomes = await asyncio.gather(*(writer.write(p, v) for p, v in work))
    assert all(o.ok for o in outcomes)
    assert dev.in_flight.peak == 2  # used, never exceeded
    assert dev.priority_array(AV)[9] == 80.0


async def test_overall_limit(building: SimBacnetNetwork, stack: BacnetStack) -> None:
    writer = _writer(stack, per_device=4, overall=3)
    for address in IP_DEVS:
        building.device(address).latency = LATENCY
    outcomes = await asyncio.gather(
        *(writer.write(make_point(a), 79.0) for a in IP_DEVS for _ in range(2))
    )
    assert all(o.ok for o in outcomes)
    assert building.in_flight.peak == 3
    assert all(building.device(a).in_flight.peak <= 3 for a in IP_DEVS)


@pytest.mark.parametrize("per_network", [1, 2])
async def test_routed_network_limit(
    building: SimBacnetNetwork, stack: BacnetStack, per_network: int
) -> None:
    writer = _writer(stack, per_device=2, per_network=per_network)
    for address in ROUTED_DEVS:
        building.device(address).latency = LATENCY
    outcomes = await asyncio.gather(*(writer.release(make_point(a)) for a in ROUTED_DEVS))
    assert outcomes == [Outcome(ok=True)] * len(ROUTED_DEVS)
    assert building.in_flight.peak == per_network  # used, never exceeded, on the trunk


async def test_routed_requests_get_free_slots_first(
    building: SimBacnetNetwork, stack: BacnetStack
) -> None:
    """The trunk is not left idle until every queued IP request is done."""
    writer = _writer(stack, overall=1, per_network=1)
    for address in [*IP_DEVS, *ROUTED_DEVS]:
        building.device(address).latency = LATENCY
    finished: list[str] = []

    async def write(address: str) -> Outcome:
        outcome = await writer.write(make_point(address), 79.0)
        finished.append(address)
        return outcome

    outcomes = await asyncio.gather(*(write(a) for a in [*IP_DEVS, *ROUTED_DEVS[:2]]))
    assert all(o.ok for o in outcomes)
    assert finished[:2] == [IP_DEVS[0], ROUTED_DEVS[0]]  # queued behind 5 IP writes, served next
    assert finished.index(ROUTED_DEVS[1]) < finished.index(IP_DEVS[-1])
    assert building.in_flight.peak == 1


async def test_cancelled_waiters_give_their_slot_back(
    building: SimBacnetNetwork, stack: BacnetStack
) -> None:
    writer = _writer(stack, overall=1)
    building.device(IP_DEVS[0]).latency = LATENCY
    first = asyncio.create_task(writer.write(make_point(IP_DEVS[0]), 79.0))
    waiting = [asyncio.create_task(writer.write(make_point(a), 79.0)) for a in IP_DEVS[1:4]]
    await asyncio.sleep(LATENCY / 2)
    for task in waiting[:2]:
        task.cancel()
    assert (await first).ok
    assert (await waiting[2]).ok  # the slot went on to the one still waiting
    for task in waiting[:2]:
        with pytest.raises(asyncio.CancelledError):
            await task
    assert (await writer.write(make_point(IP_DEVS[4]), 79.0)).ok


async def test_check_points_lists_the_unreachable(
    building: SimBacnetNetwork, stack: BacnetStack
) -> None:
    writer = _writer(stack)
    building.device(IP_DEVS[3]).offline = True
    building.device(ROUTED_DEVS[1]).offline = True
    good = [make_point(IP_DEVS[0]), make_point(ROUTED_DEVS[0], "binary-value", 1, value="active")]
    offline = [make_point(IP_DEVS[3]), make_point(ROUTED_DEVS[1])]
    unknown = [make_point(IP_DEVS[1], instance=4242)]
    unrouted = [make_point("999:3")]

    start = time.monotonic()
    problems = await writer.check_points([*good, *offline, *unknown, *unrouted])
    assert time.monotonic() - start < 1.5  # offline ones run in parallel, each bounded
    found = {point.key: outcome.failure for point, outcome in problems}
    assert found == {
        offline[0].key: FailureKind.OFFLINE,
        offline[1].key: FailureKind.OFFLINE,
        unknown[0].key: FailureKind.UNKNOWN_OBJECT,
        unrouted[0].key: FailureKind.ERROR,
    }
    assert all(outcome.detail for _, outcome in problems)
    assert building.overridden_points() == 0  # checking never writes


@pytest.mark.parametrize(
    ("address", "network"),
    [("23456:5", 23456), ("23456:0x0a0b", 23456), ("2000:10.1.2.5", None), ("10.1.2.5", None)],
)
def test_trunk_network(address: str, network: int | None) -> None:
    assert trunk_network(address) == network


async def test_ip_routed_devices_are_not_a_trunk() -> None:
    """Behind a BACnet/IP-to-IP router each device gets its own slots, as a direct one does."""
    throttle = Throttle(BacnetLimits(per_network=1))
    async with (
        throttle.slot("2000:10.1.2.5"),
        throttle.slot("2000:10.1.2.6:47809"),
        throttle.slot("2000:10.1.2.7"),
    ):
        pass  # all three held at once: no per-network limit of 1 applied
    async with throttle.slot("23456:5"):
        second = asyncio.create_task(_hold(throttle, "23456:6"))
        await asyncio.sleep(0.05)
        assert not second.done()  # the MS/TP trunk's one slot is taken
    await asyncio.wait_for(second, 1)


async def _hold(throttle: Throttle, address: str) -> None:
    async with throttle.slot(address):
        pass


def test_limit_defaults() -> None:
    assert BacnetLimits() == BacnetLimits(per_device=2, per_network=4, overall=64)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"overall": 0}, "overall must be 1-128"),
        ({"overall": 255}, "overall must be 1-128"),
        ({"per_device": 0}, "at least 1"),
        ({"per_network": 0}, "at least 1"),
        ({"guard_margin": 0}, "guard_margin"),
    ],
)
def test_limits_are_validated(fields: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BacnetLimits(**fields)
