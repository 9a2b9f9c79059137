"""Discovering a controller with more objects than there are invoke IDs.

Reading 300 objects takes more than 256 requests to one controller, so invoke IDs repeat. A
controller detecting duplicates answers a repeat from its cache, with the answer meant for
another object. Discovery paces its requests so that no ID repeats within the controller's
window, and refuses any answer that does not echo the request; both are checked here with a
short window (the pacing constants are shrunk to match, so the test takes about a second).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from bacpypes3.basetypes import EngineeringUnits

from custom_components.loadshed_ven.bacnet import (
    BacnetStack,
    DiscoveredDevice,
    StackRegistry,
    discover_devices,
    discovery_reads,
    read_objects,
)
from sim.bacnet import SimBacnetNetwork
from sim.bacnet_device import SimBacnetDevice
from sim.bacnet_objects import SimAnalogValue

from . import client_interface

IP_DEV = "127.86.3.2"
EXTRA = 300
FIRST = 1000
WINDOW = 0.5  # the controller's duplicate window, in seconds


@pytest.fixture
async def controller(socket_enabled: None) -> AsyncIterator[SimBacnetDevice]:
    """One controller with 300 more analog values, each named after its instance."""
    net = SimBacnetNetwork(ip_devices=1, base_ip=IP_DEV, duplicate_window=WINDOW)
    await net.start()
    device = net.devices[0]
    for instance in range(FIRST, FIRST + EXTRA):
        device.app.add_object(
            SimAnalogValue(
                objectIdentifier=("analog-value", instance),
                objectName=f"AV {instance}",
                presentValue=float(instance),
                relinquishDefault=float(instance),
                units=EngineeringUnits.percent,
                statusFlags=[0, 0, 0, 0],
                eventState="normal",
                outOfService=False,
            )
        )
    yield device
    await net.stop()


@pytest.fixture
async def stack(controller: SimBacnetDevice) -> AsyncIterator[BacnetStack]:
    """Our stack on an ephemeral loopback port."""
    registry = StackRegistry()
    handle = await registry.acquire(client_interface())
    yield handle.stack
    await handle.release()


def _check_names(objects: list[tuple[str, int, str | None]]) -> int:
    """Assert no object carries another's name; return how many have one."""
    named = 0
    for object_type, instance, name in objects:
        if object_type == "analog-value" and instance >= FIRST and name is not None:
            assert name == f"AV {instance}"
            named += 1
    return named


async def test_paced_requests_never_get_a_remembered_answer(
    controller: SimBacnetDevice, stack: BacnetStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(discovery_reads, "PACE_WINDOW", WINDOW + 0.2)
    (device,) = await discover_devices(stack, address=IP_DEV)
    started = time.monotonic()

    result = await read_objects(stack, device, concurrency=4)

    assert time.monotonic() - started >= WINDOW  # 200 requests, then a pause
    assert result.complete
    assert result.listed == EXTRA + 10
    rows = [(o.object_type, o.instance, o.name) for o in result.objects]
    assert _check_names(rows) == EXTRA
    assert controller.duplicates_answered == 0


async def test_answers_meant_for_another_request_are_refused(
    controller: SimBacnetDevice, stack: BacnetStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(discovery_reads, "PACE_REQUESTS", 10_000)  # no pacing: IDs repeat
    controller.duplicate_window = 5.0  # longer than the whole read

    result = await read_objects(stack, DiscoveredDevice(1001, IP_DEV), concurrency=4)

    assert controller.duplicates_answered > 0  # the controller did answer from its cache
    assert not result.complete
    rows = [(o.object_type, o.instance, o.name) for o in result.objects]
    assert _check_names(rows) < EXTRA  # some could not be read; none got a wrong name
    assert all(discovery_reads.MISMATCH in f.reason for f in result.failures)
