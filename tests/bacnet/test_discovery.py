"""Discovery against the simulated controllers: Who-Is, identities, object lists, faults, limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from custom_components.loadshed_ven.bacnet import (
    BacnetStack,
    DiscoveredDevice,
    DiscoveredObject,
    DiscoveryError,
    DiscoveryProgress,
    StackHandle,
    StackRegistry,
    discover_devices,
    read_objects,
)
from sim.bacnet import SimBacnetNetwork
from sim.bacnet_objects import MODEL_NAME, VENDOR_NAME

from . import client_interface

BASE_IP = "127.86.0.2"
ROUTER_IP = "127.86.1.1"
NETWORK = 12345
IP_DEV = "127.86.0.2"
ROUTED_DEV = "12345:2"
INSTANCES = {IP_DEV: 1001, "127.86.0.3": 1002, ROUTED_DEV: 1003, "12345:3": 1004}

SETPOINT = DiscoveredObject(
    object_type="analog-value",
    instance=302,
    name="Zone Cooling Setpoint",
    units="degrees-fahrenheit",
    present_value=72.0,
    min_value=55.0,
    max_value=90.0,
    commandable=True,
    description="Occupied cooling setpoint of the zone",
    relinquish_default=72.0,
)
EXPECTED = (
    SETPOINT,
    DiscoveredObject(
        "binary-value", 1, "Shed Enable", None, "inactive", None, None, True,
        "Demand response shed request", "inactive",
    ),
    DiscoveredObject(
        "multi-state-value", 1, "Fan Speed Stage", None, 1, 1.0, 3.0, True,
        "Supply fan speed stage", 1,
    ),
    DiscoveredObject(
        "analog-input", 1, "Zone Temperature", "degrees-fahrenheit", 72.5, -40.0, 150.0, False,
        "Space temperature sensor",
    ),
    DiscoveredObject(
        "analog-input", 2, "Outside Air Temperature", "degrees-fahrenheit", 85.0, -40.0, 150.0,
        False, "Outside air sensor",
    ),
    DiscoveredObject(
        "analog-output", 3, "Outside Air Damper Command", "percent", 20.0, 0.0, 100.0, True,
        "Outside air damper position", 20.0,
    ),
    DiscoveredObject(
        "analog-output", 2, "Supply Fan Speed Command", "percent", 100.0, 0.0, 100.0, True,
        "Supply fan VFD speed", 100.0,
    ),
    DiscoveredObject(
        "binary-input", 1, "Zone Occupancy", None, "active", None, None, False, "Occupancy sensor"
    ),
)  # fmt: skip
LISTED = 10  # the objects above, the device and its network port


def device(address: str) -> DiscoveredDevice:
    """The identity a simulated controller answers with."""
    instance = INSTANCES[address]
    return DiscoveredDevice(
        instance, address, f"Sim Controller {instance}", VENDOR_NAME, MODEL_NAME
    )


@pytest.fixture
async def building(socket_enabled: None) -> AsyncIterator[SimBacnetNetwork]:
    """Two IP controllers and two routed ones."""
    net = SimBacnetNetwork(
        ip_devices=2, routed_devices=2, base_ip=BASE_IP, router_ip=ROUTER_IP, network=NETWORK
    )
    await net.start()
    yield net
    await net.stop()


@pytest.fixture
async def handle(socket_enabled: None, building: SimBacnetNetwork) -> AsyncIterator[StackHandle]:
    """Our stack (no broadcast socket), routed to the simulated router; 0.5 s per request."""
    registry = StackRegistry()
    handle = await registry.acquire(client_interface({NETWORK: ROUTER_IP}, apdu_timeout_ms=500))
    yield handle
    await handle.release()
    assert len(registry) == 0


@pytest.fixture
def stack(handle: StackHandle) -> BacnetStack:
    """The running stack."""
    return handle.stack


@pytest.mark.parametrize("address", [IP_DEV, ROUTED_DEV])
async def test_directed_who_is_finds_the_device_and_its_identity(
    stack: BacnetStack, address: str
) -> None:
    started = time.monotonic()
    assert await discover_devices(stack, address=address, wait=3.0) == [device(address)]
    assert time.monotonic() - started < 1.5  # the answer ends the wait


async def test_who_is_to_a_routed_network_reports_progress(stack: BacnetStack) -> None:
    seen: list[DiscoveryProgress] = []

    found = await discover_devices(stack, network=NETWORK, wait=0.5, progress=seen.append)

    assert found == [device(ROUTED_DEV), device("12345:3")]
    assert seen == [DiscoveryProgress("devices", n, 2) for n in range(3)]


async def test_instance_limits_narrow_the_who_is(stack: BacnetStack) -> None:
    found = await discover_devices(
        stack, network=NETWORK, low_limit=1004, high_limit=1010, wait=0.5
    )
    assert found == [device("12345:3")]


async def test_two_devices_with_one_instance_are_both_listed(socket_enabled: None) -> None:
    net = SimBacnetNetwork(
        ip_devices=0, routed_devices=2, router_ip="127.86.2.1", network=NETWORK + 1
    )
    net.devices[1].instance = net.devices[0].instance  # a commissioning mistake
    await net.start()
    registry = StackRegistry()
    handle = await registry.acquire(client_interface({NETWORK + 1: "127.86.2.1"}))
    try:
        found = await discover_devices(handle.stack, network=NETWORK + 1, wait=0.5)
    finally:
        await handle.release()
        await net.stop()

    assert [(d.instance, d.address, d.name) for d in found] == [
        (1001, "12346:2", "Sim Controller 1001"),
        (1001, "12346:3", "Sim Controller 1002"),  # named before the instance was changed
    ]


async def test_a_device_that_stops_answering_is_listed_without_a_name(
    building: SimBacnetNetwork, stack: BacnetStack
) -> None:
    def go_quiet(progress: DiscoveryProgress) -> None:
        building.device("12345:3").offline = True  # after its I-Am, before its name is read

    found = await discover_devices(stack, network=NETWORK, wait=0.5, progress=go_quiet)

    assert found == [device(ROUTED_DEV), DiscoveredDevice(1004, "12345:3")]


async def test_nothing_answers_from_an_offline_address(
    building: SimBacnetNetwork, stack: BacnetStack
) -> None:
    building.device(IP_DEV).offline = True
    assert await discover_devices(stack, address=IP_DEV, wait=0.3) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "cannot broadcast"),
        ({"network": NETWORK, "address": IP_DEV}, "not both"),
        ({"address": "controller.local"}, "not an IPv4"),
        ({"network": 70000}, "outside 1-65534"),
        ({"network": 999}, "no router is configured for network 999"),
        ({"address": IP_DEV, "low_limit": 5}, "both instance limits"),
        ({"address": IP_DEV, "low_limit": 9, "high_limit": 5}, "low <= high"),
        ({"address": IP_DEV, "concurrency": 0}, "concurrency"),
    ],
)
async def test_requests_that_cannot_be_sent_are_refused(
    stack: BacnetStack, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(DiscoveryError, match=message):
        await discover_devices(stack, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("address", [IP_DEV, ROUTED_DEV])
async def test_object_list_and_properties(stack: BacnetStack, address: str) -> None:
    seen: list[DiscoveryProgress] = []

    result = await read_objects(stack, device(address), progress=seen.append)

    assert result.objects == EXPECTED
    assert result.complete
    assert result.failures == ()
    assert (result.listed, result.per_index) == (LISTED, False)
    assert seen == [DiscoveryProgress("objects", n, len(EXPECTED)) for n in range(9)]
    assert result.objects[0].object_id == "analog-value,302"


@pytest.mark.parametrize(("no_list", "no_rpm"), [(True, False), (False, True), (True, True)])
async def test_refused_services_fall_back(
    building: SimBacnetNetwork, stack: BacnetStack, no_list: bool, no_rpm: bool
) -> None:
    dev = building.device(ROUTED_DEV)
    dev.refuse_object_list, dev.refuse_rpm = no_list, no_rpm
    seen: list[DiscoveryProgress] = []

    result = await read_objects(stack, device(ROUTED_DEV), progress=seen.append)

    assert result.objects == EXPECTED
    assert result.complete
    assert (result.listed, result.per_index) == (LISTED, no_list)
    walked = [p for p in seen if p.phase == "object-list"]
    assert walked == (
        [DiscoveryProgress("object-list", n, LISTED) for n in range(11)] if no_list else []
    )


async def test_refused_rpm_still_identifies_the_device(
    building: SimBacnetNetwork, stack: BacnetStack
) -> None:
    building.device(IP_DEV).refuse_rpm = True
    assert await discover_devices(stack, address=IP_DEV) == [device(IP_DEV)]


async def test_a_device_that_never_answers_gives_a_partial_result(
    building: SimBacnetNetwork, stack: BacnetStack
) -> None:
    building.device(IP_DEV).offline = True
    started = time.monotonic()

    result = await read_objects(stack, device(IP_DEV))

    assert time.monotonic() - started < 2.5  # the whole list, then its length: 0.5 s each
    assert result.objects == ()
    assert not result.complete
    assert [f.object_id for f in result.failures] == ["device,1001"]
    assert "no response" in result.failures[0].reason


async def test_a_device_that_goes_quiet_midway_is_given_up_quickly(
    building: SimBacnetNetwork, stack: BacnetStack
) -> None:
    dev = building.device(IP_DEV)
    dev.refuse_object_list = True
    dev.refuse_rpm = True  # one request per property: 8 objects x 5-7 properties

    def go_quiet(progress: DiscoveryProgress) -> None:
        if progress.phase == "objects":
            dev.offline = True

    started = time.monotonic()
    result = await read_objects(stack, device(IP_DEV), concurrency=2, progress=go_quiet)

    assert time.monotonic() - started < 2.5  # 3 unanswered requests (0.5 s, 2 at once), not 50
    assert result.listed == LISTED
    assert result.per_index
    assert [obj.name for obj in result.objects] == [None] * len(EXPECTED)
    reasons = " ".join(f.reason for f in result.failures)
    assert "no response" in reasons
    assert "the device stopped answering" in reasons


async def test_closing_the_stack_midway_ends_the_walk_with_a_reason(
    building: SimBacnetNetwork, stack: BacnetStack
) -> None:
    building.device(IP_DEV).latency = 0.1
    walk = asyncio.create_task(read_objects(stack, device(IP_DEV), concurrency=1))
    await asyncio.sleep(0.25)  # the object list is in, the objects are being read

    await stack.close()
    async with asyncio.timeout(2):
        result = await walk

    assert not result.complete
    assert result.listed == LISTED
    assert result.objects[0] == SETPOINT
    assert result.failures
    assert all(f.reason.endswith("the BACnet stack was closed") for f in result.failures)


async def test_the_deadline_keeps_what_was_read(
    building: SimBacnetNetwork, stack: BacnetStack
) -> None:
    building.device(IP_DEV).latency = 0.1

    result = await read_objects(stack, device(IP_DEV), concurrency=1, deadline=0.55)

    assert not result.complete
    assert result.listed == LISTED
    assert len(result.objects) == len(EXPECTED)  # every listed object, read or not
    read = [obj for obj in result.objects if obj.name is not None]
    assert 1 <= len(read) < len(EXPECTED)
    assert read[0] == SETPOINT
    reasons = {f.object_id: f.reason for f in result.failures}
    assert reasons["device,1001"] == "stopped at the 0.55 s deadline"
    unread = {obj.object_id for obj in result.objects if obj.name is None}
    assert unread == {oid for oid, why in reasons.items() if "deadline" in why} - {"device,1001"}


@pytest.mark.parametrize("concurrency", [1, 2, 3])
async def test_requests_in_flight_to_a_device_stay_within_the_bound(
    building: SimBacnetNetwork, stack: BacnetStack, concurrency: int
) -> None:
    dev = building.device(IP_DEV)
    dev.latency = 0.02
    dev.refuse_object_list = True  # the per-index walk asks the most at once

    result = await read_objects(stack, device(IP_DEV), concurrency=concurrency)

    assert result.complete
    assert dev.in_flight.peak == concurrency  # used, never exceeded


async def test_devices_identified_at_once_stay_within_the_bound(
    building: SimBacnetNetwork, stack: BacnetStack
) -> None:
    for dev in building.routed_devices:
        dev.latency = 0.05
        dev.refuse_rpm = True  # three reads each

    found = await discover_devices(stack, network=NETWORK, wait=0.3, concurrency=1)

    assert found == [device(ROUTED_DEV), device("12345:3")]
    assert building.in_flight.peak == 1
