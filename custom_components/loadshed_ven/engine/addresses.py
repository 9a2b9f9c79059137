"""Device addresses of override points: validation and the one normalised text form.

Three forms are accepted; the normalised text is part of every stored point key, so the
first two stay exactly as they always were:

* ``192.168.1.20`` or ``192.168.1.20:47809``: a BACnet/IP controller (``:47808`` is dropped);
* ``12345:2`` (or ``12345:0x02``): MAC 2 on network 12345, e.g. MS/TP behind a router;
* ``2000:10.1.2.5`` or ``2000:10.1.2.5:47809``: a BACnet/IP controller on network 2000 behind
  a BACnet/IP-to-BACnet/IP router, whose MAC is its 6-byte IP and port. ``:47808`` is dropped
  as for direct IP (bacpypes3 prints such an address the same way), and the hex form
  ``2000:0x0a010205bac0`` is turned into the dotted one, so one controller has one key.

Host names are never accepted: resolving one would block the event loop.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

DEFAULT_PORT: Final = 47808
_LIMITED_BROADCAST: Final = ipaddress.IPv4Address("255.255.255.255")
_DIGITS: Final = re.compile(r"[0-9]{1,10}")
_HEX_BYTE: Final = re.compile(r"0[xX][0-9a-fA-F]{1,2}")
_HEX_IP_PORT: Final = re.compile(r"0[xX][0-9a-fA-F]{12}")
ADDRESS_HELP: Final = (
    "use an IPv4 address such as 192.168.1.20 (optionally with :port), a routed "
    "address network:MAC such as 12345:2, or network:IP[:port] such as 2000:10.1.2.5 for a "
    "controller behind a BACnet/IP router; host names are not accepted"
)


class PointError(ValueError):
    """A point definition is invalid; ``field`` names the offending input when known.

    Defined with the addresses, the first field every point checks; :mod:`.points`
    re-exports it.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        """Store the message and the field."""
        super().__init__(message)
        self.field = field


def address_error(text: str, detail: str) -> PointError:
    """The error for a bad address ``text``, with the accepted forms appended."""
    return PointError(f"address '{text}': {detail}; {ADDRESS_HELP}", "address")


def small_int(text: str) -> int | None:
    """Parse plain decimal digits (no sign, no spaces, at most 10 digits)."""
    return int(text) if _DIGITS.fullmatch(text) else None


def normalise_address(text: str) -> str:
    """Validate a device address and return its normalised form; raises PointError."""
    text = text.strip()
    network_text, sep, rest = text.partition(":")
    if "." in text:
        if sep and small_int(network_text) is not None:  # network:IP[:port]
            return f"{_network(text, network_text)}:{_ip_and_port(text, rest)}"
        return _ip_and_port(text, text)
    if not sep:
        raise address_error(text, "this is neither an IPv4 address nor network:MAC")
    network = _network(text, network_text)
    if _HEX_IP_PORT.fullmatch(rest):
        packed = bytes.fromhex(rest[2:])
        ip, port = ipaddress.IPv4Address(packed[:4]), int.from_bytes(packed[4:])
        return f"{network}:{_ip_and_port(text, f'{ip}:{port}')}"
    mac = int(rest, 16) if _HEX_BYTE.fullmatch(rest) else small_int(rest)
    if mac is None or not 0 <= mac <= 254:
        raise address_error(
            text,
            f"MAC '{rest}' is not a number 0-254 (or 0x00-0xFE), nor an IPv4 address "
            "with optional port (or 6 bytes in hex, 0x0a010205bac0)",
        )
    return f"{network}:{mac}"


def _network(text: str, network_text: str) -> int:
    network = small_int(network_text)
    if network is None or not 1 <= network <= 65534:
        raise address_error(text, f"network '{network_text}' is not a number 1-65534")
    return network


def _ip_and_port(text: str, ip_port: str) -> str:
    """``ip`` or ``ip:port`` validated; the default port is dropped."""
    host, sep, port_text = ip_port.partition(":")
    try:
        ip = ipaddress.IPv4Address(host)
    except ValueError:
        raise address_error(text, f"'{host}' is not an IPv4 address") from None
    if ip.is_unspecified or ip.is_multicast or ip == _LIMITED_BROADCAST:
        raise address_error(text, f"{ip} is not a device address")
    if not sep:
        return str(ip)
    port = small_int(port_text)
    if port is None or not 1 <= port <= 65535:
        raise address_error(text, f"port '{port_text}' is not a number 1-65535")
    return str(ip) if port == DEFAULT_PORT else f"{ip}:{port}"


def routed_network(address: str) -> int | None:
    """The network number of a normalised routed address, None for a direct BACnet/IP one."""
    network_text, sep, _ = address.partition(":")
    if not sep or "." in network_text:
        return None
    return small_int(network_text)
