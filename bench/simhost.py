"""The simulated building in a process of its own, steered over stdin/stdout.

The building answers on the second CPU core, so the integration's stack in the benchmark process
is not slowed down by the controllers it talks to, and the longest event-loop callback measured
there is the integration's alone.

Protocol: one JSON object per line in, one per line out. Every request has ``"cmd"``; every
answer has ``"ok"`` and, when false, ``"error"``. Commands:

``start``    {devices, routed, base_ip, router_ip, network} -> {vtn_url, meter_port, seconds}
``extra``    {addresses, count}: give those controllers ``count`` more commandable analog values
             (``analog-value,303`` upward) so a controller can carry several override points
``latency``  {seconds}: every controller answers each confirmed request that much later
``slots``    {points: [[address, object id]], priority} -> {values: [slot value or null]}
``peak``     -> {peak}: most requests held by the controllers at once since the last ``peak``
``cpu``      -> {seconds}: CPU time this process has used
``watch``    start recording when ``analog-value,302`` slots change -> {}
``watched``  -> {first, last, count}: wall-clock times of the first and last change since ``watch``
``event``    {level, start_in, duration} -> {event_id, start}: queue an event at the VTN
``events``   {count, intervals, interval_seconds, start_in} -> {event_ids, start}: queue ``count``
             events of ``intervals`` consecutive intervals each (levels cycling 1, 2, 3), so the
             VEN gets them in one message at its next poll
``remove``   {event_ids}: stop serving those events (the VEN sees an implied cancel)
``stop``     stop the building and exit
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from custom_components.loadshed_ven.bacnet.stack import (
    cache_sources,
    snapshot_transaction_settings,
)
from sim.bacnet_device import SimBacnetDevice
from sim.bacnet_objects import ZONE_COOLING_SETPOINT, SimAnalogValue, slot_values
from sim.building import BuildingConfig, SimBuilding

FIRST_EXTRA_INSTANCE = 303


class _Host:
    """Runs one building and answers commands about it."""

    def __init__(self) -> None:
        self.building: SimBuilding | None = None
        self.extra: dict[tuple[str, str], Any] = {}  # (address, object id) -> bacpypes3 object
        self.changes: list[float] = []
        self.watching = False

    @property
    def live(self) -> SimBuilding:
        if self.building is None:
            raise RuntimeError("the building is not started")
        return self.building

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        handler = getattr(self, f"cmd_{request['cmd']}", None)
        if handler is None:
            raise ValueError(f"unknown command {request['cmd']!r}")
        answer: dict[str, Any] = await handler(request)
        return answer

    async def cmd_start(self, request: dict[str, Any]) -> dict[str, Any]:
        return await self.start(request)

    async def cmd_extra(self, request: dict[str, Any]) -> dict[str, Any]:
        self.add_extra(request["addresses"], int(request["count"]))
        return {}

    async def cmd_latency(self, request: dict[str, Any]) -> dict[str, Any]:
        for device in self.live.bacnet.devices:
            device.latency = float(request["seconds"])
        return {}

    async def cmd_slots(self, request: dict[str, Any]) -> dict[str, Any]:
        priority = int(request["priority"])
        return {"values": [self.slot(a, o, priority) for a, o in request["points"]]}

    async def cmd_peak(self, _request: dict[str, Any]) -> dict[str, Any]:
        gauge = self.live.bacnet.in_flight
        peak = gauge.peak
        gauge.reset()
        return {"peak": peak}

    async def cmd_cpu(self, _request: dict[str, Any]) -> dict[str, Any]:
        return {"seconds": time.process_time()}

    async def cmd_watch(self, _request: dict[str, Any]) -> dict[str, Any]:
        self.changes.clear()
        self.watching = True
        return {}

    async def cmd_watched(self, _request: dict[str, Any]) -> dict[str, Any]:
        changes = self.changes
        return {
            "first": changes[0] if changes else None,
            "last": changes[-1] if changes else None,
            "count": len(changes),
        }

    async def cmd_event(self, request: dict[str, Any]) -> dict[str, Any]:
        start = datetime.now(UTC) + timedelta(seconds=float(request["start_in"]))
        event_id = self.live.vtn.add_event(
            level=int(request["level"]),
            start=start,
            duration=timedelta(seconds=float(request["duration"])),
        )
        return {"event_id": event_id, "start": start.timestamp()}

    async def cmd_events(self, request: dict[str, Any]) -> dict[str, Any]:
        start = datetime.now(UTC) + timedelta(seconds=float(request["start_in"]))
        length = timedelta(seconds=int(request["interval_seconds"]))
        spans = [(length, 1 + n % 3) for n in range(int(request["intervals"]))]
        # One pass over the queue: every event lands in the same oadrDistributeEvent.
        event_ids = [
            self.live.vtn.add_event(intervals=spans, start=start)
            for _ in range(int(request["count"]))
        ]
        return {"event_ids": event_ids, "start": start.timestamp()}

    async def cmd_remove(self, request: dict[str, Any]) -> dict[str, Any]:
        for event_id in request["event_ids"]:
            self.live.vtn.remove_event(str(event_id))
        return {}

    async def start(self, request: dict[str, Any]) -> dict[str, Any]:
        began = time.perf_counter()
        self.building = SimBuilding(
            BuildingConfig(
                devices=int(request["devices"]),
                routed_devices=int(request["routed"]),
                base_ip=str(request["base_ip"]),
                router_ip=str(request["router_ip"]),
                network=int(request["network"]),
                vtn_port=0,
                meter_port=0,
                poll_interval=timedelta(seconds=1),
            )
        )
        await self.building.start()
        self.building.bacnet.add_listener(self._changed)
        _lighten(self.building)
        return {
            "vtn_url": self.building.vtn.url,
            "meter_port": self.building.meter.port,
            "seconds": time.perf_counter() - began,
        }

    def _changed(self, _device: SimBacnetDevice, object_id: str) -> None:
        if self.watching and object_id == ZONE_COOLING_SETPOINT:
            self.changes.append(time.time())

    def add_extra(self, addresses: list[str], count: int) -> None:
        for address in addresses:
            device = self.live.bacnet.device(address)
            for instance in range(FIRST_EXTRA_INSTANCE, FIRST_EXTRA_INSTANCE + count):
                object_id = f"analog-value,{instance}"
                if (device.address, object_id) in self.extra:
                    continue
                point = SimAnalogValue(
                    objectIdentifier=object_id,
                    objectName=f"Zone Setpoint {instance}",
                    presentValue=72.0,
                    relinquishDefault=72.0,
                    statusFlags=[0, 0, 0, 0],
                    eventState="normal",
                    outOfService=False,
                )
                device.app.add_object(point)
                self.extra[(device.address, object_id)] = point

    def slot(self, address: str, object_id: str, priority: int) -> Any:
        device = self.live.bacnet.device(address)
        point = self.extra.get((device.address, object_id))
        values = device.priority_array(object_id) if point is None else slot_values(point)
        return values[priority - 1]

    async def stop(self) -> None:
        if self.building is not None:
            await self.building.stop()
            self.building = None


def _lighten(building: SimBuilding) -> None:
    """Spare the controllers two fixed costs per request that no real controller has.

    bacpypes3 reads its device object's APDU settings through ``inspect`` and parses each
    sender's address anew for every request. The controllers share the benchmark's two cores
    with the integration, so that CPU would be charged to it; the answers do not change.
    """
    apps = [device.app for device in building.bacnet.devices]
    router = building.bacnet.router
    if router is not None:
        apps.append(router.app)
    for app in apps:
        if app is None:
            continue
        snapshot_transaction_settings(app, app.device_object)
        for link in app.link_layers.values():
            server = getattr(link, "server", None)
            if server is not None:
                cache_sources(server)


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)  # a slots request for 5,000 points is one line
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    host = _Host()
    try:
        while line := await reader.readline():
            request = json.loads(line)
            if request["cmd"] == "stop":
                break
            try:
                answer = {"ok": True, **await host.handle(request)}
            except Exception as err:  # noqa: BLE001 - every failure goes back to the caller
                answer = {"ok": False, "error": f"{type(err).__name__}: {err}"}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
    finally:
        await host.stop()
        sys.stdout.write(json.dumps({"ok": True}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(_serve())
