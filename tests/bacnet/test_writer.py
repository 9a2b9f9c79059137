"""Writes, releases and reads, checked against the simulated controllers' priority arrays."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from bacpypes3.apdu import (
    ErrorPDU,
    ReadPropertyACK,
    ReadPropertyRequest,
    RejectPDU,
    WritePropertyRequest,
)
from bacpypes3.basetypes import (
    BinaryPV,
    DateTime,
    PriorityArray,
    PriorityValue,
    PropertyIdentifier,
)
from bacpypes3.constructeddata import Any as EncodedValue
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import Date, Null, ObjectIdentifier, Real, Time, Unsigned

from custom_components.loadshed_ven.bacnet import (
    BacnetOverrideWriter,
    BacnetStack,
    StackHandle,
    StackRegistry,
)
from custom_components.loadshed_ven.bacnet.readback import Target, parse_priority_array
from custom_components.loadshed_ven.bacnet.values import decode_priority_array
from custom_components.loadshed_ven.engine.overrides import FailureKind, Outcome, OverrideWriter
from sim.bacnet import SimBacnetNetwork
from sim.bacnet_objects import SimAnalogValue

from . import AV, BV, MSV, client_interface, make_point

BASE_IP = "127.79.0.2"
ROUTER_IP = "127.79.1.1"
NETWORK = 12345
IP_DEV = "127.79.0.2"
ROUTED_DEV = "12345:2"


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
    """The adapter's shared stack, with a static route to the simulated router."""
    registry = StackRegistry()
    handle = await registry.acquire(client_interface({NETWORK: ROUTER_IP}))
    yield handle
    await handle.release()
    assert len(registry) == 0


@pytest.fixture
def stack(handle: StackHandle) -> BacnetStack:
    """The running stack."""
    return handle.stack


@pytest.fixture
def writer(stack: BacnetStack) -> BacnetOverrideWriter:
    """A writer with default limits."""
    writer = BacnetOverrideWriter(stack)
    engine_side: OverrideWriter = writer  # mypy checks the engine's protocol here
    assert engine_side is writer
    return writer


@pytest.mark.parametrize("address", [IP_DEV, ROUTED_DEV])
async def test_write_then_release_analog(
    building: SimBacnetNetwork, writer: BacnetOverrideWriter, address: str
) -> None:
    dev = building.device(address)
    point = make_point(address)

    outcome = await writer.write(point, 80.0)
    assert outcome == Outcome(ok=True, slot_value=80.0)
    assert dev.priority_array(AV)[9] == 80.0
    assert dev.present_value(AV) == 80.0

    outcome = await writer.release(point)
    assert outcome == Outcome(ok=True, slot_value=None)
    assert dev.priority_array(AV) == [None] * 16
    assert dev.present_value(AV) == 72.0


async def test_real_precision_is_reported_as_written(
    building: SimBacnetNetwork, writer: BacnetOverrideWriter
) -> None:
    outcome = await writer.write(make_point(IP_DEV), 72.3)
    assert outcome == Outcome(ok=True, slot_value=72.3)  # the device holds float32 72.3
    assert building.device(IP_DEV).priority_array(AV)[9] == pytest.approx(72.3, abs=1e-5)


@pytest.mark.parametrize("address", [IP_DEV, ROUTED_DEV])
async def test_binary_and_multistate(
    building: SimBacnetNetwork, writer: BacnetOverrideWriter, address: str
) -> None:
    dev = building.device(address)
    binary = make_point(address, "binary-value", 1, value="active")
    stage = make_point(address, "multi-state-value", 1, priority=12, value=3)

    assert await writer.write(binary, "active") == Outcome(ok=True, slot_value="active")
    assert await writer.write(stage, 3) == Outcome(ok=True, slot_value=3)
    assert dev.priority_array(BV)[9] == "active"
    assert dev.present_value(BV) == "active"
    assert dev.priority_array(MSV)[11] == 3
    assert dev.present_value(MSV) == 3

    assert await writer.release(binary) == Outcome(ok=True)
    assert await writer.release(stage) == Outcome(ok=True)
    assert dev.present_value(BV) == "inactive"
    assert dev.present_value(MSV) == 1
    assert building.overridden_points() == 0


@pytest.mark.parametrize("address", [IP_DEV, ROUTED_DEV])
async def test_operator_at_priority_8_owns_the_point(
    building: SimBacnetNetwork, writer: BacnetOverrideWriter, address: str
) -> None:
    dev = building.device(address)
    point = make_point(address)
    await writer.write(point, 80.0)
    dev.write_local(AV, 76.0, 8)
    dev.write_local(AV, 60.0, 14)  # below us: not an owner

    assert await writer.read(point) == Outcome(ok=True, slot_value=80.0, owner_priority=8)
    outcome = await writer.write(point, 80.0)
    assert outcome == Outcome(ok=True, slot_value=80.0, owner_priority=8)
    assert dev.priority_array(AV)[7:10] == [76.0, None, 80.0]
    assert dev.present_value(AV) == 76.0

    outcome = await writer.release(point)
    assert outcome == Outcome(ok=True, slot_value=None, owner_priority=8)
    assert dev.priority_array(AV)[9] is None
    assert dev.present_value(AV) == 76.0  # the operator's value, untouched
    dev.write_local(AV, None, 8)
    assert dev.present_value(AV) == 60.0  # next slot
    assert dev.priority_array(AV)[7] is None


def _ack_data(array: PriorityArray) -> bytes:
    """The bytes of a ReadProperty ACK of ``array``, as bacpypes3 encodes one."""
    ack = ReadPropertyACK(
        objectIdentifier=ObjectIdentifier(AV),
        propertyIdentifier=PropertyIdentifier("priority-array"),
        propertyValue=EncodedValue(array),
    )
    return bytes(ack.encode().pduData)


def test_quick_decoder_leaves_other_slot_kinds_to_bacpypes3() -> None:
    """Primitives are read from their tags; a date-time slot sends the array to bacpypes3."""
    null = PriorityValue(null=())
    point = make_point(IP_DEV)
    kinds = [
        PriorityValue(real=76.0),
        PriorityValue(enumerated=1),
        PriorityValue(unsigned=70000),
        PriorityValue(integer=-3),
        PriorityValue(boolean=True),
        PriorityValue(double=1.5),
    ]
    plain = PriorityArray([*kinds, null, PriorityValue(real=76.0)] + [null] * 8)
    slots = parse_priority_array(_ack_data(plain))
    assert slots is not None
    expected = [76.0, 1.0, 70000.0, -3.0, 1.0, 1.5, None, 76.0] + [None] * 8
    assert decode_priority_array(point, slots) == expected
    assert decode_priority_array(point, slots) == decode_priority_array(point, plain)

    stamp = DateTime(date=Date("2024-01-02"), time=Time("12:00:00"))
    mixed = PriorityArray([null] * 7 + [PriorityValue(datetime=stamp)] + [null] * 8)
    assert parse_priority_array(_ack_data(mixed)) is None
    held = decode_priority_array(point, EncodedValue(mixed).cast_out(PriorityArray))
    assert held[7] is not None  # still seen as an owner above priority 10
    assert held[:7] == held[8:15] == [None] * 7
    data = _ack_data(plain)
    value_starts = data.index(b"\x3e") + 1
    for cut, message in ((value_starts + 3, "ends inside a tag"), (-1, "no complete")):
        with pytest.raises(ValueError, match=message):
            parse_priority_array(data[:cut])


@pytest.mark.parametrize(
    ("object_type", "value"),
    [
        ("analog-value", Real(72.5)),
        ("analog-output", Real(-1e30)),
        ("binary-value", BinaryPV("active")),
        ("multi-state-value", Unsigned(3)),
        ("multi-state-value", Unsigned(2**32 - 1)),
        ("analog-value", Null(())),
    ],
)
@pytest.mark.parametrize("priority", [8, 10, 16])
def test_requests_are_encoded_as_bacpypes3_encodes_them(
    object_type: str, value: Any, priority: int
) -> None:
    """The templates plus the value give the very bytes bacpypes3's own requests carry."""
    for address in (IP_DEV, ROUTED_DEV, "2000:10.1.2.5:47809"):
        engine_value = {"binary-value": "active", "multi-state-value": 1}.get(object_type, 1.0)
        point = make_point(address, object_type, 7, priority=priority, value=engine_value)
        target = Target(point)
        expected = WritePropertyRequest(
            objectIdentifier=ObjectIdentifier(f"{object_type},7"),
            propertyIdentifier=PropertyIdentifier("present-value"),
            propertyValue=value,
            destination=Address(address),
        )
        expected.priority = priority
        for ours, theirs in (
            (target.write_request(value, priority), expected.encode()),
            (
                target.read_request(),
                ReadPropertyRequest(
                    objectIdentifier=ObjectIdentifier(f"{object_type},7"),
                    propertyIdentifier=PropertyIdentifier("priority-array"),
                    destination=Address(address),
                ).encode(),
            ),
        ):
            assert bytes(ours.pduData) == bytes(theirs.pduData)
            assert (ours.apduType, ours.apduService, ours.pduDestination) == (
                theirs.apduType,
                theirs.apduService,
                theirs.pduDestination,
            )


async def test_read_without_writing(
    building: SimBacnetNetwork, writer: BacnetOverrideWriter
) -> None:
    point = make_point(ROUTED_DEV)
    assert await writer.read(point) == Outcome(ok=True, slot_value=None)
    building.device(ROUTED_DEV).write_local(AV, 77.0, 10)
    assert await writer.read(point) == Outcome(ok=True, slot_value=77.0)
    assert building.overridden_points() == 1


async def test_only_the_given_point_is_written(
    building: SimBacnetNetwork, writer: BacnetOverrideWriter
) -> None:
    await writer.write(make_point("12345:3", priority=9), 78.0)
    assert building.device("12345:3").priority_array(AV)[8] == 78.0
    assert building.overridden_points() == 1


@pytest.mark.parametrize("address", [IP_DEV, ROUTED_DEV])
async def test_write_access_denied(
    building: SimBacnetNetwork, writer: BacnetOverrideWriter, address: str
) -> None:
    dev = building.device(address)
    dev.deny_writes(AV)
    outcome = await writer.write(make_point(address), 80.0)
    assert not outcome.ok
    assert outcome.failure is FailureKind.ACCESS_DENIED
    assert outcome.detail is not None
    assert "write-access-denied" in outcome.detail
    assert dev.priority_array(AV)[9] is None
    release = await writer.release(make_point(address))
    assert release.failure is FailureKind.ACCESS_DENIED


async def test_unknown_object(writer: BacnetOverrideWriter) -> None:
    for point in (make_point(IP_DEV, instance=999), make_point(ROUTED_DEV, "analog-output", 1)):
        for outcome in (
            await writer.write(point, 80.0),
            await writer.release(point),
            await writer.read(point),
        ):
            assert (outcome.ok, outcome.failure) == (False, FailureKind.UNKNOWN_OBJECT)
            assert outcome.detail is not None
            assert "unknown-object" in outcome.detail


@pytest.mark.parametrize(
    ("object_type", "value"),
    [
        ("analog-value", "active"),
        ("analog-value", True),
        ("analog-value", float("nan")),
        ("binary-value", 1),
        ("binary-value", "on"),
        ("multi-state-value", 2.0),
        ("multi-state-value", 0),
        ("multi-state-value", "2"),
    ],
)
async def test_mismatched_value_is_refused_without_sending(
    building: SimBacnetNetwork,
    stack: BacnetStack,
    monkeypatch: pytest.MonkeyPatch,
    object_type: str,
    value: Any,
) -> None:
    writer = BacnetOverrideWriter(stack)
    sent: list[Any] = []

    async def record(*args: Any, **kwargs: Any) -> None:
        sent.append(args)

    monkeypatch.setattr(stack.app, "request", record)  # what every read and write awaits
    instance = 302 if object_type == "analog-value" else 1
    point = make_point(
        IP_DEV, object_type, instance, value={"analog-value": 1.0}.get(object_type, 1)
    )
    outcome = await writer.write(point, value)
    assert (outcome.ok, outcome.failure) == (False, FailureKind.ERROR)
    assert outcome.detail is not None
    assert outcome.detail.startswith("not sent")
    assert sent == []
    assert building.overridden_points() == 0


async def test_accepted_but_not_held_is_not_verified(
    building: SimBacnetNetwork, writer: BacnetOverrideWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def ignore(self: Any, *args: Any, **kwargs: Any) -> None:
        """Acknowledge and do nothing, like a controller that drops remote writes."""

    building.device(IP_DEV).write_local(AV, 70.0, 10)
    monkeypatch.setattr(SimAnalogValue, "write_property", ignore)
    outcome = await writer.write(make_point(IP_DEV), 80.0)
    assert (outcome.ok, outcome.failure, outcome.slot_value) == (
        False,
        FailureKind.NOT_VERIFIED,
        70.0,
    )
    assert outcome.detail is not None
    assert "holds 70.0 instead of 80.0" in outcome.detail
    release = await writer.release(make_point(IP_DEV))
    assert (release.ok, release.failure) == (False, FailureKind.NOT_VERIFIED)


def _error_pdu(error_class: str, error_code: str) -> ErrorPDU:
    error = ErrorPDU()
    error.errorClass = error_class
    error.errorCode = error_code
    return error


@pytest.mark.parametrize(
    ("returned", "kind"),
    [
        (_error_pdu("property", "write-access-denied"), FailureKind.ACCESS_DENIED),
        (RejectPDU(reason="invalid-tag"), FailureKind.ERROR),
        ("-no property type-", FailureKind.ERROR),
    ],
)
async def test_error_returned_instead_of_raised(
    stack: BacnetStack,
    writer: BacnetOverrideWriter,
    monkeypatch: pytest.MonkeyPatch,
    returned: Any,
    kind: FailureKind,
) -> None:
    async def give_back(*args: Any, **kwargs: Any) -> Any:
        return returned

    monkeypatch.setattr(stack.app, "request", give_back)  # what the write awaits
    outcome = await writer.write(make_point(IP_DEV), 80.0)
    assert (outcome.ok, outcome.failure) == (False, kind)


async def test_unexpected_error_becomes_an_outcome(
    stack: BacnetStack,
    writer: BacnetOverrideWriter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("vendor table")

    monkeypatch.setattr(stack.app, "request", broken)  # what every read and write awaits
    outcome = await writer.read(make_point(IP_DEV))
    assert (outcome.ok, outcome.failure) == (False, FailureKind.ERROR)
    assert "Unexpected error on BACnet point" in caplog.text


async def test_unrouted_network_fails_without_sending(writer: BacnetOverrideWriter) -> None:
    outcome = await writer.write(make_point("999:2"), 80.0)
    assert (outcome.ok, outcome.failure) == (False, FailureKind.ERROR)
    assert outcome.detail is not None
    assert "no router is configured for network 999" in outcome.detail
