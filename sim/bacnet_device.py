"""One simulated BACnet controller: :class:`SimBacnetDevice`, on loopback IP or behind a router.

Its points, their priority arrays and the local (non-network) way to read and set them are
here; the router and the building's network of controllers are :mod:`sim.bacnet`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sim.bacnet_faults import (
    DEFAULT_DUPLICATE_WINDOW,
    FaultyApplication,
    FaultyServiceAccessPoint,
    InFlightGauge,
)
from sim.bacnet_objects import (
    MODEL_NAME,
    PRIORITY_SLOTS,
    ObjectRef,
    PointValue,
    SimBacnetError,
    build_application,
    build_extras,
    build_points,
    check_free,
    check_loopback,
    close_application,
    device_object,
    ip_port,
    is_overridden,
    normalize_object_id,
    priority_value,
    slot_values,
    to_python,
    virtual_port,
    wait_until_bound,
)

MAX_MSTP_MAC = 127  # MS/TP masters use MAC 0..127; the router takes 1

type ChangeListener = Callable[["SimBacnetDevice", str], None]
"""Called with the device and the object id whenever a priority slot changes."""


class SimBacnetDevice:
    """One simulated controller.

    ``address`` is what a client writes: ``"127.77.0.5"`` for BACnet/IP, or
    ``"12345:3"`` for a controller on the virtual network ``vlan_name`` behind a router.

    Runtime faults: ``latency`` (seconds added before each confirmed request is handled)
    and ``offline`` (every request silently dropped). ``deny_writes`` makes remote writes
    to one object (or to every object) answer ``property/write-access-denied`` until
    ``allow_writes``. ``in_flight`` counts requests being held for the latency (the
    network's ``in_flight`` counts across controllers).

    Duplicate detection, as in real controllers: a confirmed request that repeats a
    (client address, invoke ID) answered less than ``duplicate_window`` seconds ago gets
    the same answer again and is not executed (``duplicates_answered`` counts them);
    0 turns it off.

    Besides its three commandable points it holds sensors and outputs a site survey finds
    (:data:`sim.bacnet_objects.EXTRA_IDS`). Service faults for discovery:
    ``refuse_object_list`` aborts reading the object list whole (segmentation not
    supported), ``refuse_rpm`` rejects ReadPropertyMultiple.
    """

    def __init__(
        self,
        instance: int,
        address: str,
        *,
        vlan_name: str | None = None,
        duplicate_window: float = DEFAULT_DUPLICATE_WINDOW,
    ) -> None:
        """Describe the controller; nothing binds until :meth:`start`."""
        self.instance = instance
        self.address = address
        self.name = f"Sim Controller {instance}"
        self.latency: float = 0.0
        self.offline: bool = False
        self.refuse_object_list: bool = False
        self.refuse_rpm: bool = False
        self.duplicate_window = duplicate_window
        self.duplicates_answered = 0
        self._vlan_name = vlan_name
        self._app: Any = None
        self._points: dict[str, Any] = {}
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._listeners: list[ChangeListener] = []
        self.in_flight = InFlightGauge()
        self._gauges: list[InFlightGauge] = [self.in_flight]
        if vlan_name is None:
            check_loopback(address)
        else:
            network, _, mac = address.partition(":")
            self._network, self._mac = int(network), int(mac)
            if not 2 <= self._mac <= MAX_MSTP_MAC:
                raise ValueError(f"MS/TP MAC must be 2..{MAX_MSTP_MAC}, got {self._mac}")

    @property
    def app(self) -> Any:
        """The running bacpypes3 Application (None before start / after stop)."""
        return self._app

    @property
    def routed(self) -> bool:
        """True for a controller behind the simulated router."""
        return self._vlan_name is not None

    def _create(self) -> None:
        """Build the application; its socket binds in a background task."""
        if self._vlan_name is None:
            check_free(self.address)
            port = ip_port(self.address)
        else:
            port = virtual_port(self._network, self._mac, self._vlan_name, 1)
        device = device_object(self.instance, self.name, MODEL_NAME)
        points = build_points()
        for point in points:
            point._on_change = self._notify
        self._points = {str(p.objectIdentifier): p for p in points}
        app = FaultyApplication(self)
        asap = FaultyServiceAccessPoint(device, app.device_info_cache, self)
        self._app = build_application(app, asap, [device, port, *points, *build_extras()])

    async def _ready(self) -> None:
        try:
            await wait_until_bound(self._app, self.address)
        except SimBacnetError:
            await self.stop()
            raise

    async def start(self) -> None:
        """Create the application and wait until its socket is bound."""
        if self._app is None:
            self._create()
            await self._ready()

    async def stop(self) -> None:
        """Close the controller completely: sockets, delayed requests, timers."""
        app, self._app = self._app, None
        if app is None:
            return
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        self._in_flight.clear()
        await close_application(app)

    async def _answer_late(self) -> bool:
        """Sleep for the latency (cancelled by stop); return False if now offline."""
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        for gauge in self._gauges:
            gauge.enter()
        try:
            await asyncio.sleep(self.latency)
        finally:
            for gauge in self._gauges:
                gauge.leave()
            if task is not None:
                self._in_flight.discard(task)
        return not self.offline

    def add_listener(self, listener: ChangeListener) -> None:
        """Call ``listener(device, object_id)`` after every priority-slot change."""
        self._listeners.append(listener)

    def _notify(self, object_id: str) -> None:
        for listener in self._listeners:
            listener(self, object_id)

    def point(self, obj: ObjectRef) -> Any:
        """Return the local bacpypes3 object for ``obj``; KeyError if the device lacks it.

        Points exist from the first start on (bacpypes3 objects need a running loop) and
        keep their state across stop; a new start resets them.
        """
        object_id = normalize_object_id(obj)
        if not self._points:
            raise KeyError(f"{self.address} has not been started")
        try:
            return self._points[object_id]
        except KeyError:
            raise KeyError(f"{self.address} has no commandable {object_id}") from None

    @property
    def point_ids(self) -> list[str]:
        """Object ids of the commandable points, in canonical string form."""
        return list(self._points)

    def deny_writes(self, obj: ObjectRef | None = None) -> None:
        """Answer remote writes to ``obj`` (None: every object) with write-access-denied.

        The refusal lasts until :meth:`allow_writes`, like a controller whose objects are
        locked out; reads keep working.
        """
        for point in self._chosen(obj):
            point._write_denied = True

    def allow_writes(self, obj: ObjectRef | None = None) -> None:
        """Accept remote writes to ``obj`` (None: every object) again."""
        for point in self._chosen(obj):
            point._write_denied = False

    @property
    def denied_points(self) -> list[str]:
        """Object ids whose remote writes are refused now."""
        return [oid for oid, point in self._points.items() if point._write_denied]

    def _chosen(self, obj: ObjectRef | None) -> list[Any]:
        if obj is None:
            if not self._points:
                raise KeyError(f"{self.address} has not been started")
            return list(self._points.values())
        return [self.point(obj)]

    def priority_array(self, obj: ObjectRef) -> list[PointValue | None]:
        """Read the local priority array: 16 Python values, None for NULL slots."""
        return slot_values(self.point(obj))

    def present_value(self, obj: ObjectRef) -> PointValue:
        """Read the local present value."""
        point = self.point(obj)
        return to_python(point, point.presentValue)

    def relinquish_default(self, obj: ObjectRef) -> PointValue:
        """Read the local relinquish default."""
        point = self.point(obj)
        return to_python(point, point.relinquishDefault)

    def write_local(self, obj: ObjectRef, value: PointValue | None, priority: int) -> None:
        """Set slot ``priority`` (1..16) directly, as another writer would; None releases."""
        if not 1 <= priority <= PRIORITY_SLOTS:
            raise ValueError(f"priority must be 1..{PRIORITY_SLOTS}, got {priority}")
        point = self.point(obj)
        point.priorityArray[priority - 1] = priority_value(point, value)

    def overridden_points(self) -> int:
        """Number of this device's points holding any non-NULL priority slot."""
        return sum(1 for point in self._points.values() if is_overridden(point))
