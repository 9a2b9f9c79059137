"""Loopback address plans and port probes shared by the simulated networks."""

from __future__ import annotations

import ipaddress
import socket

from sim.bacnet_objects import check_loopback


def ip_range(base_ip: str, count: int) -> list[str]:
    """``count`` consecutive loopback addresses from ``base_ip``, skipping .0 and .255 hosts."""
    addresses: list[str] = []
    current = ipaddress.IPv4Address(base_ip)
    while len(addresses) < count:
        if current.packed[3] not in (0, 255):
            check_loopback(str(current))
            addresses.append(str(current))
        current += 1
    return addresses


def port_is_free(ip: str, port: int) -> bool:
    """True when a plain bind of ``ip:port`` succeeds (bacpypes3 would retry silently)."""
    check_loopback(ip)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((ip, port))
        except OSError:
            return False
    return True
