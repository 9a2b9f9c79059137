"""Which override points a grid cell uses, on one building shared by every cell.

The building is started once with enough controllers for the largest cell; each cell takes a
prefix of the IP controllers and of the routed ones, so the routed share is the same in every
cell. A controller carrying several points has ``analog-value,302`` and the extra analog values
``303`` upward that :mod:`bench.simhost` adds.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

from custom_components.loadshed_ven.engine.points import OverridePoint

from .simclient import BuildingLayout

FIRST_INSTANCE = 302
PRIORITY = 10
LEVEL_VALUES = (78.0, 80.0, 82.0)  # what levels 1, 2, 3 write (zone cooling setpoint, °F)


@dataclass(frozen=True, kw_only=True)
class Shape:
    """A building shape: ``points`` override points, ``per_device`` on each controller."""

    points: int
    per_device: int
    routed_share: float

    @property
    def devices(self) -> int:
        """Controllers needed."""
        return math.ceil(self.points / self.per_device)

    @property
    def routed_devices(self) -> int:
        """Controllers behind the router: the routed share, at least one when the share is > 0."""
        if self.routed_share <= 0:
            return 0
        return min(self.devices, max(1, round(self.devices * self.routed_share)))

    @property
    def ip_devices(self) -> int:
        """Controllers on BACnet/IP."""
        return self.devices - self.routed_devices


def building_for(
    shapes: list[Shape], *, base_ip: str, router_ip: str, network: int
) -> BuildingLayout:
    """The smallest building every shape fits in."""
    return BuildingLayout(
        ip_devices=max(s.ip_devices for s in shapes),
        routed_devices=max(s.routed_devices for s in shapes),
        base_ip=base_ip,
        router_ip=router_ip,
        network=network,
    )


def extra_objects(
    shapes: list[Shape], ip_addresses: list[str], routed_addresses: list[str]
) -> tuple[list[str], int]:
    """Controllers that need more than the one setpoint object, and how many extra objects."""
    extra = max(s.per_device for s in shapes) - 1
    if extra <= 0:
        return [], 0
    multi = [s for s in shapes if s.per_device > 1]
    ip = max(s.ip_devices for s in multi)
    routed = max(s.routed_devices for s in multi)
    return [*ip_addresses[:ip], *routed_addresses[:routed]], extra


def points_for(
    shape: Shape, ip_addresses: list[str], routed_addresses: list[str]
) -> list[OverridePoint]:
    """The override points of ``shape``: ``per_device`` objects on each controller it uses."""
    devices = [*ip_addresses[: shape.ip_devices], *routed_addresses[: shape.routed_devices]]
    if len(devices) < shape.devices:
        raise ValueError(f"the building has too few controllers for {shape}")
    points: list[OverridePoint] = []
    for address in devices:
        for offset in range(shape.per_device):
            if len(points) == shape.points:
                break
            points.append(
                OverridePoint(
                    address=address,
                    object_type="analog-value",
                    instance=FIRST_INSTANCE + offset,
                    priority=PRIORITY,
                    values=LEVEL_VALUES,
                    name=f"Zone setpoint {address} #{offset + 1}",
                )
            )
    return points


def object_key(point: OverridePoint) -> tuple[str, str]:
    """(address, object id) as the simulated building names the point's object."""
    return point.address, f"{point.object_type},{point.instance}"


def ip_addresses(layout: BuildingLayout) -> list[str]:
    """The IP controllers' addresses, in the order the building assigns them."""
    addresses: list[str] = []
    current = ipaddress.IPv4Address(layout.base_ip)
    while len(addresses) < layout.ip_devices:
        if current.packed[3] not in (0, 255):
            addresses.append(str(current))
        current += 1
    return addresses


def routed_addresses(layout: BuildingLayout) -> list[str]:
    """The routed controllers' addresses (``network:MAC``, MAC from 2)."""
    return [f"{layout.network}:{mac}" for mac in range(2, 2 + layout.routed_devices)]
