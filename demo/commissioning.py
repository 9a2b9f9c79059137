"""What a person types to commission the demo building in the Home Assistant UI.

With ``--commissioning`` the demo leaves Home Assistant without a loadshed_ven entry and prints
these answers instead: the entry, its controllers and their points are all made in the UI.
"""

from __future__ import annotations

from typing import Final

from sim.bacnet_device import SimBacnetDevice
from sim.bbmd import SIM_BBMD_PORT
from sim.building import SimBuilding

from .building_entry import VEN_NAME
from .options import ROOT

EDE_FILE: Final = ROOT / "demo" / "building.ede.csv"
# Where the commissioning starts: Settings > Devices & services.
INTEGRATIONS_PATH: Final = "/config/integrations/dashboard"


def routes(building: SimBuilding) -> str:
    """The BACnet step's routers: the MS/TP network and the BACnet/IP router's far network."""
    lines = []
    if building.bacnet.router_address is not None:
        lines.append(f"{building.config.network}={building.bacnet.router_address}")
    if (site := building.bacnet.routed_ip) is not None:
        lines.append(f"{site.network}={site.router.ip}")
    return "\n".join(lines)


def instructions(building: SimBuilding) -> list[str]:
    """The lines to print: each form's answers, then where the controllers are."""
    config, bacnet, meter = building.config, building.bacnet, building.meter
    lines = [
        "Commission the building: Settings > Devices & services > Add integration > "
        "Loadshed VEN, then answer:",
        f"  VTN URL         {building.vtn.url}",
        f"  VEN name        {VEN_NAME}",
        "  Local address   127.0.0.1/32, UDP port 0 (loopback: 47808 belongs to the controllers)",
    ]
    if text := routes(building):
        lines.append(f"  Routers         {text.replace(chr(10), ' and ')} (one per line)")
    if bacnet.remote is not None:
        lines.append(f"  BBMD            {config.bbmd_ip}, UDP port {SIM_BBMD_PORT}, TTL 900 s")
    lines += [
        f"  Meter           Modbus TCP {meter.host} port {meter.port}, unit {meter.unit_id}, "
        f"input register {meter.register}, float32, big word order",
        "Then, on the integration's page, menu of the building > Add BACnet controller, for each:",
    ]
    if bacnet.remote is not None:
        remote = ", ".join(d.address for d in bacnet.remote.devices)
        lines.append(f"  Discover (leave both fields empty): behind the BBMD {remote}")
    if (site := bacnet.routed_ip) is not None:
        lines.append(
            f"  Discover on network {site.network}: behind the BACnet/IP router "
            f"{', '.join(site.addresses)}"
        )
    ranges = [_span(group) for group in (bacnet.ip_devices, bacnet.routed_devices) if group]
    if ranges:
        lines.append(f"  Import file {EDE_FILE.relative_to(ROOT)}: devices {', '.join(ranges)}")
    return lines


def _span(devices: list[SimBacnetDevice]) -> str:
    """``1001-1050 are 127.0.0.2-127.0.0.51``: consecutive instances at consecutive addresses."""
    first, last = devices[0], devices[-1]
    if first is last:
        return f"{first.instance} is {first.address}"
    return f"{first.instance}-{last.instance} are {first.address}-{last.address}"
