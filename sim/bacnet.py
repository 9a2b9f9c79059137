"""Simulated BACnet/IP and routed MS/TP controllers on loopback, built on bacpypes3.

Every controller is a bacpypes3 ``Application`` with a device object, a network port
and three commandable points (see :mod:`sim.bacnet_objects`) with real 16-slot priority
arrays. IP controllers bind their own ``127.a.b.c:47808`` with a /32 mask, so they open
no broadcast socket and can only ever send unicast to loopback. Routed controllers sit on
a virtual network behind a simulated router and are addressed ``<network>:<mac>``.
One controller is :mod:`sim.bacnet_device`; here are the router and the building's network.

Reaching routed controllers from a client application::

    await add_static_route(client_app, network.router_address, [12345])
    await client_app.read_property("12345:2", "analog-value,302", "present-value")

A client on loopback must not bind port 47808: bacpypes3 treats any ``127.x.x.x`` on its
own port as itself and answers locally. Bind ``127.0.0.1/32:0`` or ``:47809`` instead.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable
from typing import Any

from bacpypes3.app import Application
from bacpypes3.pdu import Address
from bacpypes3.vlan import VirtualNetwork

from sim.bacnet_device import MAX_MSTP_MAC, ChangeListener, SimBacnetDevice
from sim.bacnet_faults import DEFAULT_DUPLICATE_WINDOW, InFlightGauge
from sim.bacnet_objects import (
    BACNET_PORT,
    SimBacnetError,
    check_free,
    check_loopback,
    close_application,
    device_object,
    ip_port,
    virtual_port,
    wait_until_bound,
)
from sim.bbmd import SimRemoteSite
from sim.ip_ranges import ip_range
from sim.ip_router import SimRoutedIpSite

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


async def add_static_route(app: Any, router_ip: str, networks: Iterable[int]) -> None:
    """Tell ``app`` that ``networks`` are reached through the router at ``router_ip``.

    ``update_path_info`` fills both halves of bacpypes3's routing cache; ``set_path_info``
    alone leaves it half-filled and the first routed reply raises ``RuntimeError``.
    """
    await app.nsap.router_info_cache.update_path_info(None, Address(router_ip), set(networks))


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


def _next_ip(ip: str) -> str:
    return ip_range(str(ipaddress.IPv4Address(ip) + 1), 1)[0]


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

    Optionally (off by default) the building also has ``remote_devices`` controllers on
    another "subnet" reached only through a BBMD at ``bbmd_ip`` (:mod:`sim.bbmd`), and
    ``routed_ip_devices`` controllers on network ``routed_ip_network`` behind a BACnet/IP
    router at ``ip_router_ip`` (:mod:`sim.ip_router`). Their addresses follow the BBMD's and
    the router's (the router's far side takes the next one), their instances the others'.
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
        remote_devices: int = 0,
        bbmd_ip: str = "127.2.0.1",
        routed_ip_devices: int = 0,
        ip_router_ip: str = "127.3.0.1",
        routed_ip_network: int = 2000,
    ) -> None:
        """Plan addresses and instances; nothing binds until :meth:`start`.

        ``duplicate_window`` is each controller's duplicate-detection window (0: off).
        """
        if ip_devices < 0 or not 0 <= routed_devices <= MAX_MSTP_MAC - 1:
            raise ValueError(f"need ip_devices >= 0 and 0 <= routed_devices <= {MAX_MSTP_MAC - 1}")
        ips = ip_range(base_ip, ip_devices)
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
        first_remote = instance + 1
        self.remote: SimRemoteSite | None = None
        if remote_devices:
            self.remote = SimRemoteSite(
                bbmd_ip,
                remote_devices,
                base_ip=_next_ip(bbmd_ip),
                first_device_instance=first_remote,
                duplicate_window=duplicate_window,
            )
        self.routed_ip: SimRoutedIpSite | None = None
        if routed_ip_devices:
            far_ip = _next_ip(ip_router_ip)
            self.routed_ip = SimRoutedIpSite(
                ip_router_ip,
                routed_ip_devices,
                far_ip=far_ip,
                base_ip=_next_ip(far_ip),
                network=routed_ip_network,
                first_device_instance=first_remote + remote_devices + 1,
                duplicate_window=duplicate_window,
            )
        self._by_address = {d.address: d for d in self.devices}
        self._extra = [d for site in self._sites for d in site.devices]
        for ip_device in self.remote.devices if self.remote else []:
            self._by_address[ip_device.address] = ip_device
        if self.routed_ip is not None:
            for address, routed in zip(
                self.routed_ip.addresses, self.routed_ip.devices, strict=True
            ):
                self._by_address[address] = routed
        self._listeners: list[ChangeListener] = []
        self._running = False
        self.in_flight = InFlightGauge()  # across all controllers
        for device in [*self.devices, *self._extra]:
            device.add_listener(self._notify)
            device._gauges.append(self.in_flight)

    @property
    def _sites(self) -> list[SimRemoteSite | SimRoutedIpSite]:
        return [site for site in (self.remote, self.routed_ip) if site is not None]

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
        """Find a controller by client address: ``127.0.0.5``, ``12345:3``, ``2000:127.3.1.2``."""
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
        return sum(d.overridden_points() for d in [*self.devices, *self._extra])

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
            for site in self._sites:
                await site.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop every controller and the router, and forget the virtual network."""
        if not self._running:
            return
        self._running = False
        for site in self._sites:
            await site.stop()
        await asyncio.gather(*(d.stop() for d in self.devices))
        if self._router is not None:
            await self._router.stop()
        VirtualNetwork._networks.pop(self._vlan_name, None)
