"""The local BACnet/IP stack: one bacpypes3 Application per (local IP, UDP port).

bacpypes3 binds its socket in a background task that retries forever and with
SO_REUSEPORT, so a port held by another program only shows up as requests that never get
answers. :meth:`BacnetStack.start` therefore checks the port with a plain bind first and
waits for bacpypes3's bind with a timeout. :class:`StackRegistry` shares one running stack
between every user of the same interface and closes it after the last one lets go.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from bacpypes3.apdu import ConfirmedRequestPDU
from bacpypes3.app import Application
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.networkport import NetworkPortObject
from bacpypes3.pdu import Address

from .invoke_ids import InvokeIds, invoke_ids_for

_LOGGER = logging.getLogger(__name__)

DEFAULT_PORT: Final = 47808
MAX_DEVICE_INSTANCE: Final = 4194302
VENDOR_IDENTIFIER: Final = 999  # the BACpypes sample vendor id; nothing keys on it
BIND_TIMEOUT: Final = 5.0
# A bind in progress takes milliseconds; one that keeps failing sleeps 1 s between tries.
_CLOSE_BIND_GRACE: Final = 1.0


class BacnetStackError(Exception):
    """The local BACnet stack could not start or be shared."""


class PortInUseError(BacnetStackError):
    """Another program holds the UDP port the stack must bind."""


class InterfaceConflictError(BacnetStackError):
    """The interface is already running with a different identity or route."""


class StackClosedError(BacnetStackError):
    """The stack was closed while a request was waiting for its answer."""


def _check_ipv4(text: str, what: str) -> ipaddress.IPv4Address:
    """Parse an IPv4 literal; host names are refused because resolving them blocks."""
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise ValueError(f"{what} '{text}' is not an IPv4 address") from None


@dataclass(frozen=True, kw_only=True)
class LocalInterface:
    """Where the local stack listens and how it identifies itself.

    ``address`` is ``ip/prefix`` (``192.168.1.5/24``); the prefix gives the broadcast
    address used for router discovery, ``/32`` means unicast only. ``port`` 0 binds an
    ephemeral port (devices answer the source port; no broadcasts are received).
    ``routes`` maps a remote network number to the IP of the router that reaches it.
    A request is retried ``apdu_retries`` times, each try waiting ``apdu_timeout_ms``.
    """

    address: str
    port: int = DEFAULT_PORT
    device_instance: int
    device_name: str = "loadshed_ven"
    routes: Mapping[int, str] = field(default_factory=dict, hash=False)
    apdu_timeout_ms: int = 3000
    apdu_retries: int = 1

    def __post_init__(self) -> None:
        """Validate every field; raises ValueError with a readable message."""
        try:
            iface = ipaddress.IPv4Interface(self.address.strip())
        except ValueError:
            raise ValueError(
                f"local address '{self.address}' is not ip/prefix (e.g. 192.168.1.5/24)"
            ) from None
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is outside 0-65535")
        if not 0 <= self.device_instance <= MAX_DEVICE_INSTANCE:
            raise ValueError(f"device instance {self.device_instance} is outside 0-4194302")
        if not self.device_name.strip():
            raise ValueError("device name is empty")
        if not 1 <= self.apdu_timeout_ms <= 60_000 or not 0 <= self.apdu_retries <= 10:
            raise ValueError("APDU timeout must be 1-60000 ms and retries 0-10")
        routes: dict[int, str] = {}
        for network, router in self.routes.items():
            if not 1 <= network <= 65534:
                raise ValueError(f"network {network} is outside 1-65534")
            routes[network] = str(_check_ipv4(router.strip(), f"router of network {network}"))
        object.__setattr__(self, "address", str(iface))
        object.__setattr__(self, "routes", MappingProxyType(routes))

    @property
    def ip(self) -> str:
        """The local IP address."""
        return str(ipaddress.IPv4Interface(self.address).ip)

    @property
    def key(self) -> tuple[str, int]:
        """What identifies one running stack: (local IP, port)."""
        return (self.ip, self.port)

    @property
    def can_broadcast(self) -> bool:
        """True when bacpypes3 opens a broadcast socket (prefix below /32, fixed port)."""
        iface = ipaddress.IPv4Interface(self.address)
        return self.port != 0 and iface.network.broadcast_address != iface.ip

    @property
    def transaction_seconds(self) -> float:
        """How long bacpypes3 tries one request before aborting it with no-response."""
        return self.apdu_timeout_ms / 1000 * (self.apdu_retries + 1)

    def same_identity(self, other: LocalInterface) -> bool:
        """True when ``other`` describes the same stack, routes aside."""
        return (
            self.address,
            self.port,
            self.device_instance,
            self.device_name,
            self.apdu_timeout_ms,
            self.apdu_retries,
        ) == (
            other.address,
            other.port,
            other.device_instance,
            other.device_name,
            other.apdu_timeout_ms,
            other.apdu_retries,
        )


def check_port_free(ip: str, port: int) -> None:
    """Bind ``ip:port`` plainly (no SO_REUSEPORT) and release it; raise if that fails."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind((ip, port))
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"UDP port {port} on {ip} is already in use by another program"
            ) from err
        if err.errno == errno.EADDRNOTAVAIL:
            raise BacnetStackError(f"{ip} is not an address of this host") from err
        raise BacnetStackError(f"cannot bind UDP {ip}:{port}: {err.strerror}") from err
    finally:
        probe.close()


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


class StackHandle:
    """One user's share of a running stack; release it exactly once (later calls no-op)."""

    def __init__(self, registry: StackRegistry, stack: BacnetStack) -> None:
        """Bind the handle to its registry and stack."""
        self._registry = registry
        self._stack = stack
        self._released = False

    @property
    def stack(self) -> BacnetStack:
        """The shared stack."""
        return self._stack

    @property
    def released(self) -> bool:
        """True once released."""
        return self._released

    async def release(self) -> None:
        """Give the share back; the last release closes the stack."""
        await self._registry.release(self)


@dataclass
class _Entry:
    stack: BacnetStack
    users: int = 0


class StackRegistry:
    """Shares one :class:`BacnetStack` per (local IP, port) between its users.

    Keep one registry per process (for Home Assistant: one per ``hass`` instance).
    Routes requested by later users are added to the running stack and stay until it
    closes; a different device identity on the same IP and port is refused.
    """

    def __init__(self) -> None:
        """Start empty."""
        self._entries: dict[tuple[str, int], _Entry] = {}
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        """Number of running stacks."""
        return len(self._entries)

    def users(self, interface: LocalInterface) -> int:
        """How many handles share the stack of ``interface`` (0 if none runs)."""
        entry = self._entries.get(interface.key)
        return entry.users if entry is not None else 0

    def running(self, interface: LocalInterface) -> LocalInterface | None:
        """The interface of the stack running on ``interface``'s IP and port, if any."""
        entry = self._entries.get(interface.key)
        return entry.stack.interface if entry is not None else None

    async def acquire(self, interface: LocalInterface) -> StackHandle:
        """Return a handle on the running stack for ``interface``, starting it if needed."""
        async with self._lock:
            entry = self._entries.get(interface.key)
            if entry is None:
                stack = BacnetStack(interface)
                await stack.start()
                entry = self._entries[interface.key] = _Entry(stack)
            else:
                running = entry.stack.interface
                if not running.same_identity(interface):
                    raise InterfaceConflictError(
                        f"{interface.ip}:{interface.port} already runs BACnet device "
                        f"{running.device_instance} ('{running.device_name}', "
                        f"{running.address}); a second configuration must use the same "
                        "identity or another port"
                    )
                await entry.stack.add_routes(interface.routes)
            entry.users += 1
            return StackHandle(self, entry.stack)

    async def release(self, handle: StackHandle) -> None:
        """Give back ``handle``; close its stack after the last user."""
        async with self._lock:
            if handle._released:
                return
            handle._released = True
            key = handle.stack.interface.key
            entry = self._entries.get(key)
            if entry is None or entry.stack is not handle.stack:
                return
            entry.users -= 1
            if entry.users <= 0:
                del self._entries[key]
                await entry.stack.close()

    async def close_all(self) -> None:
        """Close every stack regardless of users (shutdown)."""
        async with self._lock:
            entries, self._entries = list(self._entries.values()), {}
            for entry in entries:
                await entry.stack.close()
