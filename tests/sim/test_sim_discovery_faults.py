"""What a site survey reads from a simulated controller, and the services it can refuse.

A plain bacpypes3 client checks the objects besides the three points, the device's vendor and
model, and the two service faults: the whole object list aborted (segmentation not supported)
and ReadPropertyMultiple rejected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from bacpypes3.apdu import AbortPDU, ErrorPDU, RejectPDU
from bacpypes3.app import Application
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.networkport import NetworkPortObject

from sim.bacnet import SimBacnetNetwork, close_application, wait_until_bound
from sim.bacnet_objects import (
    DAMPER_COMMAND,
    EXTRA_IDS,
    MODEL_NAME,
    POINT_IDS,
    VENDOR_NAME,
    ZONE_COOLING_SETPOINT,
    ZONE_TEMPERATURE,
)

IP_DEV = "127.88.0.2"
DEVICE = "device,1001"


@pytest.fixture
async def building(socket_enabled: None) -> AsyncIterator[SimBacnetNetwork]:
    """One IP controller on 127.88.0.2."""
    net = SimBacnetNetwork(ip_devices=1, base_ip=IP_DEV)
    await net.start()
    yield net
    await net.stop()


@pytest.fixture
async def client(building: SimBacnetNetwork) -> AsyncIterator[Any]:
    """A client on an ephemeral port (47808 on loopback would answer itself)."""
    app = Application.from_object_list(
        [
            DeviceObject(
                objectIdentifier=("device", 599),
                objectName="survey-client",
                vendorIdentifier=999,
                apduTimeout=2000,
                numberOfApduRetries=0,
            ),
            NetworkPortObject(
                "127.0.0.1/32:0", objectIdentifier=("network-port", 1), objectName="NetworkPort-1"
            ),
        ]
    )
    await wait_until_bound(app, "client")
    yield app
    await close_application(app)


async def test_objects_identity_and_ranges(building: SimBacnetNetwork, client: Any) -> None:
    listed = [str(oid) for oid in await client.read_property(IP_DEV, DEVICE, "object-list")]
    assert listed == [DEVICE, "network-port,1", *POINT_IDS, *EXTRA_IDS]
    assert str(await client.read_property(IP_DEV, DEVICE, "vendor-name")) == VENDOR_NAME
    assert str(await client.read_property(IP_DEV, DEVICE, "model-name")) == MODEL_NAME

    setpoint = await client.read_property_multiple(
        IP_DEV, [ZONE_COOLING_SETPOINT, ["units", "min-pres-value", "max-pres-value"]]
    )
    assert [str(value) for *_, value in setpoint] == ["degrees-fahrenheit", "55.0", "90.0"]
    assert str(await client.read_property(IP_DEV, DAMPER_COMMAND, "units")) == "percent"
    # Sensors are not commandable: no priority array, and writes are refused.
    with pytest.raises(ErrorPDU) as missing:
        await client.read_property(IP_DEV, ZONE_TEMPERATURE, "priority-array")
    assert str(missing.value.errorCode) == "unknown-property"
    # The extra objects stay out of the points the building counts and can lock.
    assert building.devices[0].point_ids == list(POINT_IDS)


async def test_refused_object_list_is_an_abort_but_each_index_reads(
    building: SimBacnetNetwork, client: Any
) -> None:
    building.devices[0].refuse_object_list = True

    with pytest.raises(AbortPDU) as aborted:
        await client.read_property(IP_DEV, DEVICE, "object-list")
    assert str(aborted.value.apduAbortRejectReason) == "segmentation-not-supported"
    with pytest.raises(AbortPDU):
        await client.read_property_multiple(IP_DEV, [DEVICE, ["object-list"]])

    length = await client.read_property(IP_DEV, DEVICE, "object-list", 0)
    assert length == 2 + len(POINT_IDS) + len(EXTRA_IDS)
    assert str(await client.read_property(IP_DEV, DEVICE, "object-list", 3)) == POINT_IDS[0]


async def test_refused_rpm_is_a_reject_and_single_reads_work(
    building: SimBacnetNetwork, client: Any
) -> None:
    building.devices[0].refuse_rpm = True

    with pytest.raises(RejectPDU) as rejected:
        await client.read_property_multiple(IP_DEV, [DEVICE, ["object-name"]])
    assert str(rejected.value.apduAbortRejectReason) == "unrecognized-service"
    assert str(await client.read_property(IP_DEV, DEVICE, "object-name")) == "Sim Controller 1001"

    building.devices[0].refuse_rpm = False
    names = await client.read_property_multiple(IP_DEV, [DEVICE, ["object-name"]])
    assert str(names[0][3]) == "Sim Controller 1001"
