"""The local BACnet/IP stack: one bacpypes3 Application per (local IP, UDP port).

bacpypes3 binds its socket in a background task that retries forever and with
SO_REUSEPORT, so a port held by another program only shows up as requests that never get
answers. :meth:`BacnetStack.start` therefore checks the port with a plain bind first and
waits for bacpypes3's bind with a timeout. Where it listens is :mod:`.interface`; sharing one
running stack between its users is :mod:`.stack_registry`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from bacpypes3.apdu import ConfirmedRequestPDU
from bacpypes3.app import Application
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.networkport import NetworkPortObject
from bacpypes3.pdu import Address

from .errors import BacnetStackError, InterfaceConflictError, StackClosedError
from .interface import LocalInterface, check_port_free
from .invoke_ids import InvokeIds, invoke_ids_for

_LOGGER = logging.getLogger(__name__)

VENDOR_IDENTIFIER: Final = 999  # the BACpypes sample vendor id; nothing keys on it
BIND_TIMEOUT: Final = 5.0
# A bind in progress takes milliseconds; one that keeps failing sleeps 1 s between tries.
_CLOSE_BIND_GRACE: Final = 1.0


class _Application(Application):  # type: ignore[misc]
    """bacpypes3's Application, numbering confirmed requests per destination.

    See :mod:`.invoke_ids`: bacpypes3's own counter (one for all destinations, from 0 in each
    new application) repeats IDs that controllers with duplicate detection still remember.
    """

    invoke_ids: InvokeIds

    def request(self, apdu: Any) -> Any:
        """Number a confirmed request before bacpypes3 sends it (it keeps a set invoke ID)."""
        if isinstance(apdu, ConfirmedRequestPDU) and apdu.apduInvokeID is None:
            apdu.apduInvokeID = self.invoke_ids.take(apdu.pduDestination)
        return super().request(apdu)


class BacnetStack:
    """One running bacpypes3 Application bound to a :class:`LocalInterface`."""

    def __init__(self, interface: LocalInterface) -> None:
        """Describe the stack; nothing binds until :meth:`start`."""
        self._interface = interface
        self._routes: dict[int, str] = dict(interface.routes)
        self._app: Any = None
        self._closed = False

    @property
    def interface(self) -> LocalInterface:
        """The interface the stack was started with."""
        return self._interface

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
            if iface.can_broadcast:
                broadcast = ipaddress.IPv4Interface(iface.address).network.broadcast_address
                check_port_free(str(broadcast), iface.port)
        self._app = app = _Application.from_object_list(
            [
                DeviceObject(
                    objectIdentifier=("device", iface.device_instance),
                    objectName=iface.device_name,
                    vendorIdentifier=VENDOR_IDENTIFIER,
                    apduTimeout=iface.apdu_timeout_ms,
                    numberOfApduRetries=iface.apdu_retries,
                ),
                NetworkPortObject(
                    f"{iface.address}:{iface.port}",
                    objectIdentifier=("network-port", 1),
                    objectName="NetworkPort-1",
                ),
            ]
        )
        app.invoke_ids = invoke_ids_for(iface.key)
        try:
            await asyncio.wait_for(self._server()._local_transport_ready.wait(), BIND_TIMEOUT)
            for network, router in self._routes.items():
                await self._install_route(network, router)
        except TimeoutError:
            await self.close()
            raise BacnetStackError(
                f"UDP {iface.ip}:{iface.port} did not bind within {BIND_TIMEOUT:.0f} s"
            ) from None
        except BaseException:
            await self.close()
            raise
        _LOGGER.debug("BACnet stack bound to %s:%s", iface.ip, self.local_port)

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
