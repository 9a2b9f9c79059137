"""A BBMD and the "remote" controllers behind it, on loopback, speaking real BVLL.

At a site the controllers sit on another subnet; a client there registers with the
subnet's BBMD as a foreign device and its broadcasts travel as Distribute-Broadcast-To-
Network to the BBMD, which forwards them to the subnet. Loopback has no broadcast, so the
"subnet" is the BBMD's broadcast distribution table: it lists every remote controller with
a host mask (/32), and a /32 entry means "send the Forwarded-NPDU straight to that address".
The controllers bind /32 themselves, so they never hear a plain broadcast: a client that is
not registered with the BBMD cannot discover them, one that is can.

The BBMD listens on :data:`SIM_BBMD_PORT`, not 47808: bacpypes3 treats any ``127.x.x.x`` on
its own port as itself, and the controllers use 47808. It can be stopped and started again
(it forgets its foreign-device table, as a rebooted BBMD does) and told to refuse
registrations (it then answers Register-Foreign-Device with a NAK). Broadcasts from a
device not in its table are answered with a Distribute-Broadcast-To-Network NAK.
"""

from __future__ import annotations

from typing import Any, Final

from bacpypes3.app import Application
from bacpypes3.ipv4.bvll import DistributeBroadcastToNetwork, Result
from bacpypes3.ipv4.link import BBMDLinkLayer
from bacpypes3.pdu import IPv4Address
from bacpypes3.primitivedata import ObjectIdentifier

from sim.bacnet_device import SimBacnetDevice
from sim.bacnet_faults import DEFAULT_DUPLICATE_WINDOW
from sim.bacnet_objects import (
    BACNET_PORT,
    SimBacnetError,
    check_loopback,
    close_application,
    device_object,
    wait_until_bound,
)
from sim.ip_ranges import ip_range, port_is_free
from sim.site import HubSite

SIM_BBMD_PORT: Final = 47807
REGISTER_NAK: Final = 0x0030  # the BVLL result code of a refused Register-Foreign-Device
DISTRIBUTE_NAK: Final = 0x0060  # ... of a Distribute-Broadcast-To-Network not forwarded


class _SimBbmdLink(BBMDLinkLayer):  # type: ignore[misc]
    """bacpypes3's BBMD link layer that can refuse registrations.

    Like many BBMDs (and unlike bacpypes3's) it forwards broadcasts only for registered
    foreign devices and NAKs the others, so a client it has forgotten can tell.
    """

    refuse = False

    async def confirmation(self, lpdu: Any) -> None:
        """NAK a Distribute-Broadcast-To-Network from a device not in the table."""
        if isinstance(lpdu, DistributeBroadcastToNetwork) and not any(
            entry.fdAddress == lpdu.pduSource for entry in self.bbmdFDT
        ):
            nak = Result(code=DISTRIBUTE_NAK, destination=lpdu.pduSource)
            await self.request(nak)
            return
        await super().confirmation(lpdu)

    def register_foreign_device(self, addr: Any, ttl: int) -> int:
        """Add ``addr`` to the foreign-device table, or NAK while refusing."""
        if self.refuse:
            return REGISTER_NAK
        result: int = super().register_foreign_device(addr, ttl)
        return result


class SimBbmd:
    """A BBMD at ``ip:port`` whose broadcast distribution table lists ``peers`` with /32 masks."""

    def __init__(
        self, ip: str, peers: list[str], *, port: int = SIM_BBMD_PORT, instance: int = 9001
    ) -> None:
        """Describe the BBMD; nothing binds until :meth:`start`."""
        for address in (ip, *peers):
            check_loopback(address)
        self.ip = ip
        self.port = port
        self.peers = list(peers)
        self._instance = instance
        self._refuse = False
        self._app: Any = None
        self._link: _SimBbmdLink | None = None

    @property
    def address(self) -> str:
        """``ip:port``, what a client registers with."""
        return f"{self.ip}:{self.port}"

    @property
    def running(self) -> bool:
        """True between start and stop."""
        return self._app is not None

    @property
    def refuse_registrations(self) -> bool:
        """While True, Register-Foreign-Device is answered with a NAK (0x0030)."""
        return self._refuse

    @refuse_registrations.setter
    def refuse_registrations(self, refuse: bool) -> None:
        self._refuse = refuse
        if self._link is not None:
            self._link.refuse = refuse

    @property
    def foreign_devices(self) -> list[str]:
        """The foreign-device table: ``ip:port`` of every registered device."""
        if self._link is None:
            return []
        return [str(IPv4Address(entry.fdAddress.addrTuple)) for entry in self._link.bbmdFDT]

    async def start(self) -> None:
        """Bind and start forwarding; a restart begins with an empty foreign-device table."""
        if self._app is not None:
            return
        if not port_is_free(self.ip, self.port):
            raise SimBacnetError(f"{self.address} is already in use")
        app = Application.from_object_list([device_object(self._instance, "Sim BBMD")])
        local = IPv4Address(f"{self.ip}/32:{self.port}")
        link = _SimBbmdLink(local)
        link.refuse = self._refuse
        for peer in self.peers:
            link.add_peer(IPv4Address(f"{peer}/32:{BACNET_PORT}"))
        app.link_layers[ObjectIdentifier("network-port,1")] = link
        app.nsap.bind(link, address=local)
        self._app, self._link = app, link
        try:
            await wait_until_bound(app, self.address)
        except SimBacnetError:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Close the socket and the table's one-second clock."""
        app, self._app = self._app, None
        link, self._link = self._link, None
        if link is not None:
            link._fdt_clock_handle.cancel()
        if app is not None:
            await close_application(app)


class SimRemoteSite(HubSite):
    """``count`` controllers on their own loopback addresses, reached through one BBMD.

    Controllers take consecutive addresses from ``base_ip`` and device instances from
    ``first_device_instance``; the BBMD takes the next instance.
    """

    def __init__(
        self,
        bbmd_ip: str,
        count: int,
        *,
        base_ip: str = "127.0.8.2",
        first_device_instance: int = 3001,
        bbmd_port: int = SIM_BBMD_PORT,
        duplicate_window: float = DEFAULT_DUPLICATE_WINDOW,
    ) -> None:
        """Plan addresses; nothing binds until :meth:`start`."""
        if count < 0:
            raise ValueError("the number of remote controllers must be >= 0")
        ips = ip_range(base_ip, count)
        if bbmd_ip in ips:
            raise ValueError(f"BBMD address {bbmd_ip} collides with a remote controller")
        self.devices = [
            SimBacnetDevice(first_device_instance + k, ip, duplicate_window=duplicate_window)
            for k, ip in enumerate(ips)
        ]
        self.bbmd = SimBbmd(bbmd_ip, ips, port=bbmd_port, instance=first_device_instance + count)

    @property
    def hub(self) -> SimBbmd:
        """The BBMD the controllers are reached through."""
        return self.bbmd
