"""Where the local BACnet stack listens: :class:`LocalInterface` and the plain port check.

Parsing and validating the configured address, port, identity and routes happens here, before
anything binds; :func:`check_port_free` tells a port held by another program apart from
bacpypes3's own bind, which retries silently forever.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from .errors import BacnetStackError, PortInUseError

DEFAULT_PORT: Final = 47808
MAX_DEVICE_INSTANCE: Final = 4194302
DEFAULT_BBMD_PORT: Final = 47808
DEFAULT_TTL: Final = 900
MIN_TTL: Final = 30  # a BBMD keeps an entry TTL + 30 s; shorter TTLs only add traffic
MAX_TTL: Final = 65535  # the BVLL field is 16 bits
_LIMITED_BROADCAST: Final = ipaddress.IPv4Address("255.255.255.255")


def _check_ipv4(text: str, what: str) -> ipaddress.IPv4Address:
    """Parse an IPv4 literal; host names are refused because resolving them blocks."""
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise ValueError(f"{what} '{text}' is not an IPv4 address") from None


@dataclass(frozen=True, kw_only=True)
class BbmdRegistration:
    """The BBMD to register with as a foreign device: its IPv4 ``address``, ``port`` and ``ttl``.

    ``ttl`` (seconds, 30-65535) is how long the BBMD keeps the registration without renewal.
    """

    address: str
    port: int = DEFAULT_BBMD_PORT
    ttl: int = DEFAULT_TTL

    def __post_init__(self) -> None:
        """Validate; raises ValueError with a readable message."""
        text = self.address.strip()
        try:
            ip = ipaddress.IPv4Address(text)
        except ValueError:
            raise ValueError(f"BBMD address '{self.address}' is not an IPv4 address") from None
        if ip.is_unspecified or ip.is_multicast or ip == _LIMITED_BROADCAST:
            raise ValueError(f"BBMD address {ip} is not a device address")
        if isinstance(self.port, bool) or not 1 <= self.port <= 65535:
            raise ValueError(f"BBMD port {self.port} is outside 1-65535")
        if isinstance(self.ttl, bool) or not MIN_TTL <= self.ttl <= MAX_TTL:
            raise ValueError(f"BBMD time-to-live {self.ttl} s is outside {MIN_TTL}-{MAX_TTL}")
        object.__setattr__(self, "address", str(ip))

    @property
    def text(self) -> str:
        """``ip:port``, as people and logs see it."""
        return f"{self.address}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class LocalInterface:
    """Where the local stack listens and how it identifies itself.

    ``address`` is ``ip/prefix`` (``192.168.1.5/24``); the prefix gives the broadcast
    address used for router discovery, ``/32`` means unicast only. ``port`` 0 binds an
    ephemeral port (devices answer the source port; no broadcasts are received).
    ``routes`` maps a remote network number to the IP of the router that reaches it.
    A request is retried ``apdu_retries`` times, each try waiting ``apdu_timeout_ms``.
    ``bbmd`` makes the stack a foreign device registered with that BBMD: its broadcasts
    (Who-Is, router discovery) then go through the BBMD instead of the local subnet.
    """

    address: str
    port: int = DEFAULT_PORT
    device_instance: int
    device_name: str = "loadshed_ven"
    routes: Mapping[int, str] = field(default_factory=dict, hash=False)
    apdu_timeout_ms: int = 3000
    apdu_retries: int = 1
    bbmd: BbmdRegistration | None = None

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
        if self.bbmd is not None and not isinstance(self.bbmd, BbmdRegistration):
            raise ValueError("bbmd must be a BbmdRegistration")
        if self.bbmd is not None and (self.bbmd.address, self.bbmd.port) == (
            str(iface.ip),
            self.port,
        ):
            raise ValueError("the BBMD cannot be this stack's own address and port")
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
        """True when broadcasts reach anyone: through the BBMD, or on the local subnet."""
        return self.bbmd is not None or self.listens_for_broadcasts

    @property
    def listens_for_broadcasts(self) -> bool:
        """True when bacpypes3 opens a local broadcast socket: no BBMD, prefix below /32."""
        iface = ipaddress.IPv4Interface(self.address)
        return self.bbmd is None and self.port != 0 and iface.network.broadcast_address != iface.ip

    @property
    def transaction_seconds(self) -> float:
        """How long bacpypes3 tries one request before aborting it with no-response."""
        return self.apdu_timeout_ms / 1000 * (self.apdu_retries + 1)

    def same_identity(self, other: LocalInterface) -> bool:
        """True when ``other`` describes the same stack, routes aside (BBMD included)."""
        return self.bbmd == other.bbmd and (
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
