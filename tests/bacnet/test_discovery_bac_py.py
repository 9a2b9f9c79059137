"""Discovery against controllers served by bac-py, an implementation independent of bacpypes3.

A directed Who-Is finds each controller (bac-py answers with a broadcast I-Am, which the test
device also hands to our stack: loopback has no broadcast), then its object list and
properties are read and checked against what bac-py holds. Nothing leaves 127.0.0.0/8.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bac_py.types.enums import ObjectType, PropertyIdentifier

from custom_components.loadshed_ven.bacnet import (
    BacnetStack,
    DiscoveredDevice,
    DiscoveredObject,
    DiscoveryProgress,
    LocalInterface,
    StackRegistry,
    discover_devices,
    read_objects,
)

from .bac_py_device import (
    DEVICE_NAME,
    LOOPBACK,
    MODEL_NAME,
    OBJECTS,
    VENDOR_NAME,
    BacPyController,
)

CLIENT_IP = "127.87.0.1"
CONTROLLER_IPS = ("127.87.0.2", "127.87.0.3")
INSTANCES = (8201, 8202)


@pytest.fixture
async def stack(socket_enabled: None) -> AsyncIterator[BacnetStack]:
    """Our stack on loopback with an ephemeral port."""
    registry = StackRegistry()
    handle = await registry.acquire(
        LocalInterface(
            address=f"{CLIENT_IP}/32",
            port=0,
            device_instance=599,
            apdu_timeout_ms=1000,
            apdu_retries=0,
        )
    )
    yield handle.stack
    await handle.release()
    assert len(registry) == 0


@pytest.fixture
async def controllers(stack: BacnetStack) -> AsyncIterator[list[BacPyController]]:
    """Two bac-py devices whose broadcasts also reach our stack."""
    devices = [BacPyController(ip, n) for ip, n in zip(CONTROLLER_IPS, INSTANCES, strict=True)]
    for device in devices:
        device.broadcast_to.append((CLIENT_IP, stack.local_port))
        await device.start()
    yield devices
    for device in devices:
        await device.stop()
        assert ipaddress.IPv4Address(device.broadcast_address) in LOOPBACK
        assert device.left_loopback() == []


def identity(controller: BacPyController, instance: int) -> DiscoveredDevice:
    """What a bac-py controller says it is."""
    return DiscoveredDevice(instance, controller.address, DEVICE_NAME, VENDOR_NAME, MODEL_NAME)


async def test_directed_who_is_finds_each_controller(
    stack: BacnetStack, controllers: list[BacPyController]
) -> None:
    for controller, instance in zip(controllers, INSTANCES, strict=True):
        found = await discover_devices(stack, address=controller.address, wait=2.0)
        assert found == [identity(controller, instance)]


async def test_instance_limits_filter_the_answer(
    stack: BacnetStack, controllers: list[BacPyController]
) -> None:
    other = INSTANCES[1]
    found = await discover_devices(
        stack, address=controllers[0].address, low_limit=other, high_limit=other, wait=0.5
    )
    assert found == []


async def test_object_list_and_properties_match_what_bac_py_holds(
    stack: BacnetStack, controllers: list[BacPyController]
) -> None:
    controller = controllers[0]
    seen: list[DiscoveryProgress] = []

    result = await read_objects(stack, identity(controller, INSTANCES[0]), progress=seen.append)

    assert result.failures == ()
    assert result.listed == len(OBJECTS) + 1  # and the device object
    assert seen[-1] == DiscoveryProgress("objects", len(OBJECTS), len(OBJECTS))
    expected = []
    for object_type, instance, name, units, low, high, commandable, text in OBJECTS:
        held = controller.obj(ObjectType[object_type.upper().replace("-", "_")], instance)
        value = _engine_value(object_type, held.read_property(PropertyIdentifier.PRESENT_VALUE))
        default = None
        if commandable:
            default = held.read_property(PropertyIdentifier.RELINQUISH_DEFAULT)
            default = _engine_value(object_type, default)
        expected.append(
            DiscoveredObject(
                object_type, instance, name, units, value, low, high, commandable, text, default
            )
        )
    assert sorted(result.objects, key=lambda o: o.object_id) == sorted(
        expected, key=lambda o: o.object_id
    )


def _engine_value(object_type: str, value: Any) -> Any:
    """bac-py's value as discovery reports it (binary states by name)."""
    if object_type.startswith("binary-"):
        return "active" if value else "inactive"
    return value
