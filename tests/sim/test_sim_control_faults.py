"""The control API's run-time faults: refused writes and duplicate detection, per controller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer

from sim.bacnet import SimBacnetNetwork
from sim.bacnet_objects import FAN_SPEED_STAGE, SHED_ENABLE, ZONE_COOLING_SETPOINT
from sim.building import SimBuilding
from sim.control import build_app

IP_DEV = "127.77.6.2"


@pytest.fixture
async def api(socket_enabled: None) -> AsyncIterator[tuple[TestClient[Any, Any], Any]]:
    """The control API over one running controller (no VTN or meter needed here)."""
    net = SimBacnetNetwork(ip_devices=1, base_ip=IP_DEV)
    await net.start()
    building = cast(SimBuilding, SimpleNamespace(vtn=None, bacnet=net))
    client = TestClient(TestServer(build_app(building), host="127.0.0.1"))
    await client.start_server()
    try:
        yield client, net.device(IP_DEV)
    finally:
        await client.close()
        await net.stop()


async def test_refused_writes_for_chosen_objects_or_the_whole_controller(
    api: tuple[TestClient[Any, Any], Any],
) -> None:
    client, device = api
    shown = await (await client.get(f"/devices/{IP_DEV}")).json()
    assert (shown["deny_writes"], shown["duplicate_window"]) == ([], 5.0)

    reply = await client.post(f"/devices/{IP_DEV}", json={"deny_writes": [SHED_ENABLE]})
    assert (await reply.json())["deny_writes"] == [SHED_ENABLE]
    assert device.denied_points == [SHED_ENABLE]
    reply = await client.post(f"/devices/{IP_DEV}", json={"deny_writes": True})
    assert (await reply.json())["deny_writes"] == [
        ZONE_COOLING_SETPOINT,
        SHED_ENABLE,
        FAN_SPEED_STAGE,
    ]
    reply = await client.post(f"/devices/{IP_DEV}", json={"deny_writes": False})
    assert (await reply.json())["deny_writes"] == []


@pytest.mark.parametrize(
    "body",
    [{"deny_writes": ["no-such-object,1"]}, {"deny_writes": "yes"}, {"duplicate_window": -1}],
)
async def test_bad_fault_requests_are_refused_and_change_nothing(
    api: tuple[TestClient[Any, Any], Any], body: dict[str, Any]
) -> None:
    client, device = api
    device.deny_writes(SHED_ENABLE)
    reply = await client.post(f"/devices/{IP_DEV}", json=body)
    assert reply.status == 400
    assert (await reply.json())["error"]
    assert device.denied_points == [SHED_ENABLE]
    assert device.duplicate_window == 5.0


async def test_duplicate_detection_switched_at_run_time(
    api: tuple[TestClient[Any, Any], Any],
) -> None:
    client, device = api
    reply = await client.post(f"/devices/{IP_DEV}", json={"duplicate_window": 0})
    assert (await reply.json())["duplicate_window"] == 0
    assert device.duplicate_window == 0
