"""Our BACnet client against a controller served by bac-py, an independent implementation.

Every other controller in the tests is a bacpypes3 object, like our client; here the
priority arrays and present values are bac-py's, checked through bac-py's own object API.

Nothing leaves loopback: the controller binds 127.81.0.2 (an ephemeral port), our stack
127.81.0.1/32 (an ephemeral port, so it opens no broadcast socket), and bac-py's broadcast
address is set to its own 127.81.0.2, so its start-up I-Am goes back to itself. The helper
records the destination of every datagram bac-py sends, and each test ends by asserting
that none left 127.0.0.0/8 (and that bac-py's broadcast address is a loopback one).
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import pytest
from bac_py.types.enums import BinaryPV, ObjectType

from custom_components.loadshed_ven.bacnet import (
    BacnetOverrideWriter,
    LocalInterface,
    StackRegistry,
)
from custom_components.loadshed_ven.engine.overrides import FailureKind, Outcome

from . import make_point
from .bac_py_device import LOOPBACK, RELINQUISH_DEFAULT, BacPyController

CONTROLLER_IP = "127.81.0.2"
CLIENT_ADDRESS = "127.81.0.1/32"
AV = ObjectType.ANALOG_VALUE
BV = ObjectType.BINARY_VALUE


@pytest.fixture
async def controller(socket_enabled: None) -> AsyncIterator[BacPyController]:
    """The bac-py device, checked for loopback-only traffic when the test ends."""
    device = BacPyController(CONTROLLER_IP)
    await device.start()
    assert ipaddress.IPv4Address(device.broadcast_address) in LOOPBACK
    assert device.sent_to, "the start-up I-Am was not recorded"
    yield device
    await device.stop()
    assert device.left_loopback() == []


@pytest.fixture
async def writer(controller: BacPyController) -> AsyncIterator[BacnetOverrideWriter]:
    """Our stack and writer, on loopback with an ephemeral port."""
    registry = StackRegistry()
    interface = LocalInterface(
        address=CLIENT_ADDRESS,
        port=0,
        device_instance=599,
        apdu_timeout_ms=1000,
        apdu_retries=0,
    )
    handle = await registry.acquire(interface)
    yield BacnetOverrideWriter(handle.stack)
    await handle.release()
    assert len(registry) == 0


async def test_write_then_release_analog(
    controller: BacPyController, writer: BacnetOverrideWriter
) -> None:
    point = make_point(controller.address)

    assert await writer.write(point, 80.0) == Outcome(ok=True, slot_value=80.0)
    assert controller.priority_array(AV, 302) == [None] * 9 + [80.0] + [None] * 6
    assert controller.present_value(AV, 302) == 80.0

    assert await writer.release(point) == Outcome(ok=True, slot_value=None)
    assert controller.priority_array(AV, 302) == [None] * 16
    assert controller.present_value(AV, 302) == RELINQUISH_DEFAULT


async def test_release_falls_back_to_a_lower_slot(
    controller: BacPyController, writer: BacnetOverrideWriter
) -> None:
    point = make_point(controller.address)
    controller.write_local(AV, 302, 65.0, 14)
    assert await writer.write(point, 80.0) == Outcome(ok=True, slot_value=80.0)
    assert controller.present_value(AV, 302) == 80.0
    assert await writer.release(point) == Outcome(ok=True, slot_value=None)
    assert controller.priority_array(AV, 302)[9] is None
    assert controller.present_value(AV, 302) == 65.0


async def test_a_higher_slot_owns_the_point(
    controller: BacPyController, writer: BacnetOverrideWriter
) -> None:
    point = make_point(controller.address)
    controller.write_local(AV, 302, 76.0, 8)

    outcome = await writer.write(point, 80.0)
    assert outcome == Outcome(ok=True, slot_value=80.0, owner_priority=8)
    assert controller.priority_array(AV, 302)[7:10] == [76.0, None, 80.0]
    assert controller.present_value(AV, 302) == 76.0

    assert await writer.read(point) == Outcome(ok=True, slot_value=80.0, owner_priority=8)
    outcome = await writer.release(point)
    assert outcome == Outcome(ok=True, slot_value=None, owner_priority=8)
    assert controller.priority_array(AV, 302)[9] is None
    assert controller.present_value(AV, 302) == 76.0  # the other writer's value, untouched


async def test_read_returns_what_the_controller_holds(
    controller: BacPyController, writer: BacnetOverrideWriter
) -> None:
    point = make_point(controller.address)
    assert await writer.read(point) == Outcome(ok=True, slot_value=None)
    controller.write_local(AV, 302, 77.5, 10)
    assert await writer.read(point) == Outcome(ok=True, slot_value=77.5)
    assert await writer.check_points([point]) == []


async def test_unknown_object(controller: BacPyController, writer: BacnetOverrideWriter) -> None:
    points = [
        make_point(controller.address, instance=999),
        make_point(controller.address, "multi-state-value", 1, value=2),
    ]
    for point in points:
        for outcome in (
            await writer.write(point, point.values[0]),
            await writer.release(point),
            await writer.read(point),
        ):
            assert (outcome.ok, outcome.failure) == (False, FailureKind.UNKNOWN_OBJECT)
            assert outcome.detail is not None
            assert "unknown-object" in outcome.detail
    failed = await writer.check_points(points)  # the configuration check's probe
    assert [outcome.failure for _, outcome in failed] == [FailureKind.UNKNOWN_OBJECT] * 2
    assert controller.priority_array(AV, 302) == [None] * 16


async def test_binary_write_then_release(
    controller: BacPyController, writer: BacnetOverrideWriter
) -> None:
    point = make_point(controller.address, "binary-value", 1, value="active")

    assert await writer.write(point, "active") == Outcome(ok=True, slot_value="active")
    assert controller.priority_array(BV, 1)[9] == BinaryPV.ACTIVE
    assert controller.present_value(BV, 1) == BinaryPV.ACTIVE

    controller.write_local(BV, 1, BinaryPV.INACTIVE, 8)
    assert await writer.read(point) == Outcome(ok=True, slot_value="active", owner_priority=8)
    controller.write_local(BV, 1, None, 8)

    assert await writer.release(point) == Outcome(ok=True, slot_value=None)
    assert controller.priority_array(BV, 1) == [None] * 16
    assert controller.present_value(BV, 1) == BinaryPV.INACTIVE
