"""The local BACnet/IP stack: one bacpypes3 Application per (local IP, UDP port).

bacpypes3 binds its socket in a background task that retries forever and with
SO_REUSEPORT, so a port held by another program only shows up as requests that never get
answers. :meth:`BacnetStack.start` therefore checks the port with a plain bind first and
waits for bacpypes3's bind with a timeout. Where it listens is :mod:`.interface`; sharing one
running stack between its users is :mod:`.stack_registry`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from bacpypes3.apdu import ComplexAckPDU, ConfirmedRequestPDU
from bacpypes3.app import Application
from bacpypes3.appservice import ApplicationServiceAccessPoint
from bacpypes3.comm import ServiceAccessPoint
from bacpypes3.ipv4 import IPv4DatagramProtocol
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.networkport import NetworkPortObject
from bacpypes3.pdu import PDU, Address, IPv4Address
from bacpypes3.primitivedata import ObjectIdentifier

from .bbmd import BbmdListener, BbmdRegistrar, BbmdStatus, BbmdTiming, ForeignLink
from .errors import BacnetStackError, InterfaceConflictError, StackClosedError
from .interface import LocalInterface, check_port_free
from .invoke_ids import InvokeIds, invoke_ids_for
from .limits import BacnetLimits, Throttle

_LOGGER = logging.getLogger(__name__)

VENDOR_IDENTIFIER: Final = 999  # the BACpypes sample vendor id; nothing keys on it
BIND_TIMEOUT: Final = 5.0
# A bind in progress takes milliseconds; one that keeps failing sleeps 1 s between tries.
_CLOSE_BIND_GRACE: Final = 1.0
_MAX_SOURCES: Final = 65536  # senders whose parsed address is kept (controllers, routers)


class RawReplyRequest(ConfirmedRequestPDU):  # type: ignore[misc]
    """A request sent already encoded, whose ComplexACK is handed back undecoded.

    bacpypes3 decodes every ACK into a Sequence of typed fields, a tenth of a millisecond per
    answer; the override writer reads the few tags of a priority array itself.
    """


class _RawReplyAccessPoint(ApplicationServiceAccessPoint):  # type: ignore[misc]
    """bacpypes3's service access point, passing ACKs to :class:`RawReplyRequest`s as they came."""

    raw_replies: set[tuple[Any, int]]

    async def sap_response(self, apdu: Any) -> None:
        """Skip decoding the ACK of a raw request; everything else goes the usual way."""
        if isinstance(apdu, ComplexAckPDU) and (apdu.pduSource, apdu.apduInvokeID) in (
            self.raw_replies
        ):
            await ServiceAccessPoint.sap_response(self, apdu)
            return
        await super().sap_response(apdu)


class _Application(Application):  # type: ignore[misc]
    """bacpypes3's Application, numbering confirmed requests per destination.

    See :mod:`.invoke_ids`: bacpypes3's own counter (one for all destinations, from 0 in each
    new application) repeats IDs that controllers with duplicate detection still remember.
    """

    invoke_ids: InvokeIds
    raw_replies: set[tuple[Any, int]]

    def request(self, apdu: Any) -> Any:
        """Number a confirmed request before bacpypes3 sends it (it keeps a set invoke ID)."""
        if isinstance(apdu, ConfirmedRequestPDU) and apdu.apduInvokeID is None:
            apdu.apduInvokeID = self.invoke_ids.take(apdu.pduDestination)
        future = super().request(apdu)
        if isinstance(apdu, RawReplyRequest):
            # Keyed as bacpypes3 matches the answer: its source and the invoke ID it ended with.
            key = (apdu.pduDestination, apdu.apduInvokeID)
            raw = self.raw_replies
            raw.add(key)
            future.add_done_callback(lambda _: raw.discard(key))
        return future


class _SourceCachingProtocol(IPv4DatagramProtocol):  # type: ignore[misc]
    """bacpypes3's datagram protocol, parsing each sender's address once.

    bacpypes3 builds an IPv4Address from every datagram's (host, port), which recomputes the
    network's broadcast address with :mod:`ipaddress`: a tenth of a millisecond per answer.
    The stack only reads the address it is given (routing builds new ones), so one serves all.
    """

    _sources: dict[tuple[str, int], Any]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        """What bacpypes3 does (a PDU to the server, in a task of its own), with the cache."""
        source = self._sources.get(addr)
        if source is None:
            if len(self._sources) >= _MAX_SOURCES:
                self._sources.clear()
            source = self._sources[addr] = IPv4Address(addr)
        pdu = PDU(data, source=source, destination=self.destination)
        asyncio.ensure_future(self.server.confirmation(pdu))  # noqa: RUF006 - as bacpypes3 does


class _TransactionSettings:
    """What bacpypes3 reads from the local device object at the start of every transaction.

    bacpypes3 reads six attributes of the device object per request, and each attribute read of
    a local object goes through ``inspect.getattr_static``: a tenth of the client's CPU per
    point in a large shed. The interface is frozen, so a plain copy taken at start is exact.
    """

    __slots__ = (
        "apduSegmentTimeout",
        "apduTimeout",
        "maxApduLengthAccepted",
        "maxSegmentsAccepted",
        "numberOfApduRetries",
        "segmentationSupported",
    )

    def __init__(self, device: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(device, name))


def snapshot_transaction_settings(app: Any, device: Any) -> None:
    """Let bacpypes3 read ``device``'s transaction settings from a copy (see above).

    For applications whose device object's APDU settings do not change while they run.
    """
    app.asap.device_object = _TransactionSettings(device)


def cache_sources(server: Any) -> None:
    """Make a bound bacpypes3 IPv4 server parse each sender's address once (see above)."""
    protocol: Any = getattr(server, "local_protocol", None)
    if type(protocol) is IPv4DatagramProtocol:
        protocol._sources = {}
        protocol.__class__ = _SourceCachingProtocol  # same layout, one method replaced


class BacnetStack:
    """One running bacpypes3 Application bound to a :class:`LocalInterface`."""

    def __init__(
        self,
        interface: LocalInterface,
        *,
        bbmd_timing: BbmdTiming | None = None,
        limits: BacnetLimits | None = None,
    ) -> None:
        """Describe the stack; nothing binds until :meth:`start`.

        ``bbmd_timing`` tunes the upkeep of a BBMD registration (see :class:`BbmdTiming`);
        ``limits`` is the concurrency budget every writer on this stack shares.
        """
        self._interface = interface
        self._limits = limits or BacnetLimits()
        self._throttle = Throttle(self._limits)
        self._routes: dict[int, str] = dict(interface.routes)
        self._app: Any = None
        self._closed = False
        self._bbmd_timing = bbmd_timing or BbmdTiming()
        self._registrar: BbmdRegistrar | None = None
        self._registrar_task: asyncio.Task[None] | None = None
        self._bbmd_listeners: list[BbmdListener] = []

    @property
    def interface(self) -> LocalInterface:
        """The interface the stack was started with."""
        return self._interface

    @property
    def limits(self) -> BacnetLimits:
        """The concurrency limits of :attr:`throttle`."""
        return self._limits

    @property
    def throttle(self) -> Throttle:
        """The one concurrency budget of this stack, shared by every writer using it.

        Config entries sharing a stack share its socket and the controllers behind it, so
        "2 per controller, 64 in flight" holds for all of them together.
        """
        return self._throttle

    @property
    def app(self) -> Any:
        """The bacpypes3 Application; raises StackClosedError when not running."""
        if self._app is None:
            raise StackClosedError("the BACnet stack is not running")
        return self._app

    @property
    def running(self) -> bool:
        """True between a successful start and close."""
        return self._app is not None

    @property
    def routes(self) -> Mapping[int, str]:
        """Static routes installed: network number -> router IP."""
        return MappingProxyType(self._routes)

    @property
    def local_port(self) -> int:
        """The UDP port actually bound (useful with port 0)."""
        transport = self._server().local_transport
        return int(transport.get_extra_info("sockname")[1])

    @property
    def bbmd_status(self) -> BbmdStatus | None:
        """The registration's status; None without a BBMD, before start and after close."""
        return self._registrar.status if self._registrar is not None else None

    @property
    def bbmd_reason(self) -> str:
        """A sentence explaining :attr:`bbmd_status` ("" without one)."""
        return self._registrar.reason if self._registrar is not None else ""

    def add_bbmd_listener(self, listener: BbmdListener) -> Callable[[], None]:
        """Call ``listener(status, reason)`` in the loop whenever the registration changes.

        May be added before :meth:`start`; returns a function that removes it (safe to call
        twice). The first state after start (REGISTERING) is not announced: read
        :attr:`bbmd_status`. Nothing is called for a stack without a BBMD, or after close.
        """
        self._bbmd_listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._bbmd_listeners.remove(listener)

        return remove

    def _server(self) -> Any:
        return next(iter(self.app.link_layers.values())).server

    async def start(self) -> None:
        """Bind the socket and install the static routes.

        Raises PortInUseError when another program holds the port and BacnetStackError
        when the address is not on this host or the bind does not finish in time.
        """
        if self._closed or self._app is not None:
            raise BacnetStackError("a BACnet stack can be started only once")
        iface = self._interface
        if iface.port != 0:
            check_port_free(iface.ip, iface.port)
            if iface.listens_for_broadcasts:
                broadcast = ipaddress.IPv4Interface(iface.address).network.broadcast_address
                check_port_free(str(broadcast), iface.port)
        device = DeviceObject(
            objectIdentifier=("device", iface.device_instance),
            objectName=iface.device_name,
            vendorIdentifier=VENDOR_IDENTIFIER,
            apduTimeout=iface.apdu_timeout_ms,
            numberOfApduRetries=iface.apdu_retries,
        )
        if iface.bbmd is None:
            port = NetworkPortObject(
                f"{iface.address}:{iface.port}",
                objectIdentifier=("network-port", 1),
                objectName="NetworkPort-1",
            )
            self._app = app = _Application.from_object_list([device, port])
        else:
            self._app = app = self._foreign_application(device)
        app.invoke_ids = invoke_ids_for(iface.key)
        snapshot_transaction_settings(app, device)
        app.raw_replies = app.asap.raw_replies = set()
        app.asap.__class__ = _RawReplyAccessPoint  # built by from_object_list; same layout
        try:
            await asyncio.wait_for(self._server()._local_transport_ready.wait(), BIND_TIMEOUT)
            cache_sources(self._server())
            for network, router in self._routes.items():
                await self._install_route(network, router)
            if self._registrar is not None:
                self._registrar_task = asyncio.get_running_loop().create_task(
                    self._registrar.run(), name=f"BBMD registration {iface.bbmd}"
                )
        except TimeoutError:
            await self.close()
            raise BacnetStackError(
                f"UDP {iface.ip}:{iface.port} did not bind within {BIND_TIMEOUT:.0f} s"
            ) from None
        except BaseException:
            await self.close()
            raise
        _LOGGER.debug("BACnet stack bound to %s:%s", iface.ip, self.local_port)

    def _foreign_application(self, device: Any) -> Any:
        """An application whose only link is a foreign device registered with the BBMD."""
        iface = self._interface
        bbmd = iface.bbmd
        assert bbmd is not None
        app = _Application.from_object_list([device])
        local = IPv4Address(f"{iface.address}:{iface.port}")
        link = ForeignLink(local, IPv4Address(f"{bbmd.address}:{bbmd.port}"), bbmd.ttl)
        app.link_layers[ObjectIdentifier("network-port,1")] = link
        app.nsap.bind(link, address=local)
        self._registrar = BbmdRegistrar(link, bbmd, self._bbmd_timing, self._bbmd_listeners)
        return app

    async def _install_route(self, network: int, router: str) -> None:
        # update_path_info fills both halves of the routing cache; set_path_info alone
        # leaves it half-filled and the first routed reply raises RuntimeError.
        await self.app.nsap.router_info_cache.update_path_info(None, Address(router), {network})

    async def add_routes(self, routes: Mapping[int, str]) -> None:
        """Install more static routes; a network already routed elsewhere is a conflict."""
        for network, router in routes.items():
            current = self._routes.get(network, router)
            if current != router:
                raise InterfaceConflictError(
                    f"network {network} is already routed through {current}, not {router}"
                )
        for network, router in routes.items():
            if network not in self._routes:
                await self._install_route(network, router)
                self._routes[network] = router

    async def close(self) -> None:
        """Close completely: pending requests, timers, bind tasks and sockets."""
        self._closed = True
        task, self._registrar_task = self._registrar_task, None
        self._registrar = None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        app, self._app = self._app, None
        if app is None:
            return
        for requests in list(app._requests.values()):
            for _apdu, future in list(requests):
                if not future.done():
                    future.set_exception(StackClosedError("the BACnet stack was closed"))
        for transaction in [*app.asap.clientTransactions, *app.asap.serverTransactions]:
            transaction.stop_timer()
        for pending in [*app.nse.who_is_router_to_network_futures]:
            pending.future.cancel()  # its done-callback cancels the discovery timer
        binding: list[asyncio.Task[Any]] = []
        for link in app.link_layers.values():
            server = getattr(link, "server", None)
            if server is not None:
                binding.extend(t for t in server._transport_tasks if not t.done())
        if binding:
            # close() alone leaves a retrying bind that grabs the port later; cancelling a
            # bind mid-flight logs a traceback. Let a bind in progress finish, cancel the rest.
            _, stuck = await asyncio.wait(binding, timeout=_CLOSE_BIND_GRACE)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        app.close()
        await asyncio.sleep(0)  # let the transports finish closing before a rebind
