"""A BACnet/IP-to-BACnet/IP router on loopback and the controllers on its far network.

The router has two BACnet/IP ports: network 1 on ``ip:47808``, where clients reach it, and
network ``network`` (2000) on ``far_ip:`` :data:`SIM_FAR_PORT`. The controllers on the far
network are plain BACnet/IP devices at ``127.x.y.z:47808``; clients address them through the
router as ``2000:127.x.y.z`` (a 6-byte MAC: IP and port), with a static route to network 2000
via the router.

Loopback has no broadcast, so the far network is a "segment" of known members: a broadcast
the router puts on network 2000 (a Who-Is for DNET 2000, say) leaves as the same Original-
Broadcast-NPDU sent once to each member. The controllers bind /32 and hear no other
broadcast. The far port is not 47808 because bacpypes3 treats any ``127.x.x.x`` on its own
port as itself.
"""

from __future__ import annotations

from typing import Any, Final

from bacpypes3.app import Application
from bacpypes3.comm import bind
from bacpypes3.ipv4 import IPv4DatagramServer
from bacpypes3.ipv4.bvll import BVLLCodec
from bacpypes3.ipv4.service import BIPNormal, UDPMultiplexer
from bacpypes3.pdu import PDU, IPv4Address, LocalBroadcast
from bacpypes3.primitivedata import ObjectIdentifier

from sim.bacnet_device import SimBacnetDevice
from sim.bacnet_faults import DEFAULT_DUPLICATE_WINDOW
from sim.bacnet_objects import (
    BACNET_PORT,
    SimBacnetError,
    check_free,
    check_loopback,
    close_application,
    device_object,
    ip_port,
    wait_until_bound,
)
from sim.ip_ranges import ip_range, port_is_free
from sim.site import HubSite

SIM_FAR_PORT: Final = 47807
CLIENT_NETWORK: Final = 1


class _SegmentServer(IPv4DatagramServer):  # type: ignore[misc]
    """A /32 socket whose local broadcasts go to each member of the segment instead."""

    def __init__(self, address: IPv4Address, members: list[IPv4Address]) -> None:
        super().__init__(address, no_broadcast=True)
        self.members = members

    async def indication(self, pdu: Any) -> None:
        """Send a broadcast as one unicast copy per member; anything else as usual."""
        if not isinstance(pdu.pduDestination, LocalBroadcast):
            await super().indication(pdu)
            return
        for member in self.members:
            await super().indication(PDU(pdu.pduData, source=pdu.pduSource, destination=member))


class _SegmentLink(BIPNormal):  # type: ignore[misc]
    """A normal BACnet/IP link layer over a :class:`_SegmentServer`."""

    def __init__(self, address: IPv4Address, members: list[IPv4Address]) -> None:
        BIPNormal.__init__(self)
        self.codec = BVLLCodec()
        self.multiplexer = UDPMultiplexer()
        self.server = _SegmentServer(address, members)
        bind(self, self.codec, self.multiplexer.annexJ)
        bind(self.multiplexer, self.server)

    def close(self) -> None:
        self.server.close()


class SimIpRouter:
    """A router between network 1 at ``ip:47808`` and ``network`` at ``far_ip:47807``."""

    def __init__(
        self, ip: str, far_ip: str, network: int, members: list[str], *, instance: int = 9101
    ) -> None:
        """Describe the router; nothing binds until :meth:`start`."""
        for address in (ip, far_ip, *members):
            check_loopback(address)
        if not 1 < network < 65535:
            raise ValueError(f"network {network} must be 2-65534 (1 is the client side)")
        self.ip = ip
        self.far_ip = far_ip
        self.network = network
        self.members = list(members)
        self._instance = instance
        self._app: Any = None

    @property
    def running(self) -> bool:
        """True between start and stop."""
        return self._app is not None

    async def start(self) -> None:
        """Bind both ports."""
        if self._app is not None:
            return
        check_free(self.ip)
        if not port_is_free(self.far_ip, SIM_FAR_PORT):
            raise SimBacnetError(f"{self.far_ip}:{SIM_FAR_PORT} is already in use")
        name = f"Sim IP Router {self._instance}"
        app = Application.from_object_list(
            [device_object(self._instance, name), ip_port(self.ip, CLIENT_NETWORK)]
        )
        far = IPv4Address(f"{self.far_ip}/32:{SIM_FAR_PORT}")
        members = [IPv4Address(f"{ip}/32:{BACNET_PORT}") for ip in self.members]
        link = _SegmentLink(far, members)
        app.link_layers[ObjectIdentifier("network-port,2")] = link
        app.nsap.bind(link, net=self.network, address=far)
        self._app = app
        try:
            await wait_until_bound(app, self.ip)
        except SimBacnetError:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Close both ports."""
        app, self._app = self._app, None
        if app is not None:
            await close_application(app)


class SimRoutedIpSite(HubSite):
    """``count`` controllers on network ``network`` behind a :class:`SimIpRouter`.

    Controllers take consecutive addresses from ``base_ip`` and instances from
    ``first_device_instance``; the router takes the next instance. Clients address them as
    :attr:`addresses` (``2000:127.0.10.2`` ...) with a static route to ``network`` via ``ip``.
    """

    def __init__(
        self,
        router_ip: str,
        count: int,
        *,
        far_ip: str = "127.0.10.1",
        base_ip: str = "127.0.10.2",
        network: int = 2000,
        first_device_instance: int = 4001,
        duplicate_window: float = DEFAULT_DUPLICATE_WINDOW,
    ) -> None:
        """Plan addresses; nothing binds until :meth:`start`."""
        if count < 0:
            raise ValueError("the number of routed IP controllers must be >= 0")
        ips = ip_range(base_ip, count)
        if far_ip in ips or router_ip in ips:
            raise ValueError("the router's addresses collide with a routed controller")
        self.network = network
        self.devices = [
            SimBacnetDevice(first_device_instance + k, ip, duplicate_window=duplicate_window)
            for k, ip in enumerate(ips)
        ]
        self.router = SimIpRouter(
            router_ip, far_ip, network, ips, instance=first_device_instance + count
        )

    @property
    def addresses(self) -> list[str]:
        """What clients write: ``<network>:<ip>`` (port 47808 implied)."""
        return [f"{self.network}:{device.address}" for device in self.devices]

    def device(self, address: str) -> SimBacnetDevice:
        """The controller at ``<network>:<ip>[:47808]``; KeyError if none."""
        key = address.removesuffix(f":{BACNET_PORT}")
        for device in self.devices:
            if f"{self.network}:{device.address}" == key:
                return device
        raise KeyError(f"no routed IP controller at {address!r}")

    @property
    def hub(self) -> SimIpRouter:
        """The router the controllers are reached through."""
        return self.router
