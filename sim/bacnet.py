"""Simulated BACnet/IP and routed MS/TP controllers on loopback, built on bacpypes3.

Every controller is a bacpypes3 ``Application`` with a device object, a network port
and three commandable points (see :mod:`sim.bacnet_objects`) with real 16-slot priority
arrays. IP controllers bind their own ``127.a.b.c:47808`` with a /32 mask, so they open
no broadcast socket and can only ever send unicast to loopback. Routed controllers sit on
a virtual network behind a simulated router and are addressed ``<network>:<mac>``.

Reaching routed controllers from a client application::

    await add_static_route(client_app, network.router_address, [12345])
    await client_app.read_property("12345:2", "analog-value,302", "present-value")

A client on loopback must not bind port 47808: bacpypes3 treats any ``127.x.x.x`` on its
own port as itself and answers locally. Bind ``127.0.0.1/32:0`` or ``:47809`` instead.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from bacpypes3.app import Application
from bacpypes3.pdu import Address
from bacpypes3.vlan import VirtualNetwork

from sim.bacnet_faults import DEFAULT_DUPLICATE_WINDOW, FaultyServiceAccessPoint, InFlightGauge
from sim.bacnet_objects import (
    BACNET_PORT,
    PRIORITY_SLOTS,
    ObjectRef,
    PointValue,
    SimBacnetError,
    build_application,
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

__all__ = [
    "InFlightGauge",
    "SimBacnetDevice",
    "SimBacnetError",
    "SimBacnetNetwork",
    "SimBacnetRouter",
    "add_static_route",
    "close_application",
    "wait_until_bound",
]

MAX_MSTP_MAC = 127  # MS/TP masters use MAC 0..127; the router takes 1

type ChangeListener = Callable[["SimBacnetDevice", str], None]
"""Called with the device and the object id whenever a priority slot changes."""


async def add_static_route(app: Any, router_ip: str, networks: Iterable[int]) -> None:
    """Tell ``app`` that ``networks`` are reached through the router at ``router_ip``.

    ``update_path_info`` fills both halves of bacpypes3's routing cache; ``set_path_info``
    alone leaves it half-filled and the first routed reply raises ``RuntimeError``.
    """
    await app.nsap.router_info_cache.update_path_info(None, Address(router_ip), set(networks))


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
        device = device_object(self.instance, self.name)
        points = build_points()
        for point in points:
            point._on_change = self._notify
        self._points = {str(p.objectIdentifier): p for p in points}
        app = Application()
        asap = FaultyServiceAccessPoint(device, app.device_info_cache, self)
        self._app = build_application(app, asap, [device, port, *points])

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


class SimBacnetRouter:
    """A BACnet/IP-to-virtual-network router at ``ip:47808`` (MAC 1 on the virtual side)."""

    def __init__(
        self, ip: str, network: int, vlan_name: str, instance: int, ip_network: int = 1
    ) -> None:
        """Describe the router; nothing binds until :meth:`start`."""
        check_loopback(ip)
        self.ip = ip
        self.network = network
        self._vlan_name = vlan_name
        self._instance = instance
        self._ip_network = ip_network
        self._app: Any = None

    @property
    def app(self) -> Any:
        """The running bacpypes3 Application (None before start / after stop)."""
        return self._app

    async def start(self) -> None:
        """Bind the IP side and attach to the virtual network."""
        check_free(self.ip)
        self._app = Application.from_object_list(
            [
                device_object(self._instance, f"Sim Router {self._instance}"),
                ip_port(self.ip, self._ip_network),
                virtual_port(self.network, 1, self._vlan_name, 2),
            ]
        )
        try:
            await wait_until_bound(self._app, self.ip)
        except SimBacnetError:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Close the router completely."""
        app, self._app = self._app, None
        if app is not None:
            await close_application(app)


def _ip_range(base_ip: str, count: int) -> list[str]:
    """``count`` consecutive loopback addresses from ``base_ip``, skipping .0 and .255 hosts."""
    addresses: list[str] = []
    current = ipaddress.IPv4Address(base_ip)
    while len(addresses) < count:
        if current.packed[3] not in (0, 255):
            check_loopback(str(current))
            addresses.append(str(current))
        current += 1
    return addresses


def _raise_first(results: list[Any]) -> None:
    for result in results:
        if isinstance(result, BaseException):
            raise result


class SimBacnetNetwork:
    """The building's controllers: ``ip_devices`` on BACnet/IP, ``routed_devices`` behind a router.

    IP controllers take consecutive addresses from ``base_ip`` (127.77.0.254 is followed by
    127.77.1.1); routed ones are ``<network>:2``, ``<network>:3``, ... behind the router at
    ``router_ip``. Device instances count up from ``first_device_instance`` (IP first, then
    routed); the router takes the next instance after the last controller.
    """

    def __init__(
        self,
        ip_devices: int = 50,
        routed_devices: int = 0,
        *,
        base_ip: str = "127.0.0.2",
        router_ip: str = "127.1.0.1",
        network: int = 12345,
        first_device_instance: int = 1001,
        duplicate_window: float = DEFAULT_DUPLICATE_WINDOW,
    ) -> None:
        """Plan addresses and instances; nothing binds until :meth:`start`.

        ``duplicate_window`` is each controller's duplicate-detection window (0: off).
        """
        if ip_devices < 0 or not 0 <= routed_devices <= MAX_MSTP_MAC - 1:
            raise ValueError(f"need ip_devices >= 0 and 0 <= routed_devices <= {MAX_MSTP_MAC - 1}")
        ips = _ip_range(base_ip, ip_devices)
        if routed_devices and router_ip in ips:
            raise ValueError(f"router_ip {router_ip} collides with a controller address")
        self.network = network
        self._vlan_name = f"sim-mstp-{network}-{id(self):x}"
        instance = first_device_instance
        self.devices: list[SimBacnetDevice] = []
        for ip in ips:
            self.devices.append(SimBacnetDevice(instance, ip, duplicate_window=duplicate_window))
            instance += 1
        for mac in range(2, 2 + routed_devices):
            self.devices.append(
                SimBacnetDevice(
                    instance,
                    f"{network}:{mac}",
                    vlan_name=self._vlan_name,
                    duplicate_window=duplicate_window,
                )
            )
            instance += 1
        self._router = (
            SimBacnetRouter(router_ip, network, self._vlan_name, instance)
            if routed_devices
            else None
        )
        self._router_ip = router_ip
        self._by_address = {d.address: d for d in self.devices}
        self._listeners: list[ChangeListener] = []
        self._running = False
        self.in_flight = InFlightGauge()  # across all controllers
        for device in self.devices:
            device.add_listener(self._notify)
            device._gauges.append(self.in_flight)

    @property
    def router_address(self) -> str | None:
        """The router's IP (for :func:`add_static_route`), or None without routed controllers."""
        return self._router_ip if self._router is not None else None

    @property
    def router(self) -> SimBacnetRouter | None:
        """The simulated router, or None without routed controllers."""
        return self._router

    @property
    def ip_devices(self) -> list[SimBacnetDevice]:
        """The BACnet/IP controllers."""
        return [d for d in self.devices if not d.routed]

    @property
    def routed_devices(self) -> list[SimBacnetDevice]:
        """The controllers behind the router."""
        return [d for d in self.devices if d.routed]

    def device(self, address: str) -> SimBacnetDevice:
        """Find a controller by the address a client uses: ``"127.0.0.5"`` or ``"12345:3"``."""
        key = address.removesuffix(f":{BACNET_PORT}") if "." in address else address
        try:
            return self._by_address[key]
        except KeyError:
            raise KeyError(f"no simulated controller at {address!r}") from None

    def add_listener(self, listener: ChangeListener) -> None:
        """Call ``listener(device, object_id)`` after any priority-slot change on any controller."""
        self._listeners.append(listener)

    def _notify(self, device: SimBacnetDevice, object_id: str) -> None:
        for listener in self._listeners:
            listener(device, object_id)

    def overridden_points(self) -> int:
        """Number of points, across all controllers, holding any non-NULL priority slot."""
        return sum(d.overridden_points() for d in self.devices)

    async def start(self) -> None:
        """Start the router (if any) and every controller; on failure nothing stays running."""
        if self._running:
            return
        self._running = True
        try:
            if self._router is not None:
                VirtualNetwork(self._vlan_name)  # registers itself by name
                await self._router.start()
            for index, device in enumerate(self.devices, 1):
                device._create()
                if index % 50 == 0:
                    await asyncio.sleep(0)  # let earlier binds run; keep the loop responsive
            results = await asyncio.gather(
                *(d._ready() for d in self.devices), return_exceptions=True
            )
            _raise_first(results)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop every controller and the router, and forget the virtual network."""
        if not self._running:
            return
        self._running = False
        await asyncio.gather(*(d.stop() for d in self.devices))
        if self._router is not None:
            await self._router.stop()
        VirtualNetwork._networks.pop(self._vlan_name, None)
