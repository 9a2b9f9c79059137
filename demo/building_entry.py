"""What the demo answers at each step of loadshed_ven's config flow for the simulated building."""

from __future__ import annotations

from typing import Any, Final

from sim.building import SimBuilding
from sim.vtn3 import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SimVtn3

VEN_NAME: Final = "Demo building"
# Each zone's cooling setpoint goes up 6, 8 or 10 °F at SIMPLE levels 1, 2 and 3.
ZONE_SETPOINT: Final = "analog-value, 302, 10, 78, 80, 82, Zone cooling setpoint"
# The rooftop units behind the MS/TP router also stop their economizer from pre-cooling.
RTU_POINTS: Final = (
    "analog-value, 302, 10, 78, 80, 82, Supply air setpoint",
    "binary-value, 1, 12, active, Economizer shed enable",
)


def point_lines(building: SimBuilding) -> str:
    """The override points, one line each, as typed into the "A list of points" step."""
    addresses = [device.address for device in building.bacnet.devices]
    lines = ["# address, type, instance, priority, level 1, level 2, level 3, name"]
    for address in addresses:
        if ":" in address:  # network:MAC, behind the router
            lines += [f"{address}, {point}" for point in RTU_POINTS]
        else:
            lines.append(f"{address}, {ZONE_SETPOINT}")
    return "\n".join(lines)


def vtn_answers(building: SimBuilding) -> dict[str, dict[str, Any]]:
    """The VTN steps: the version menu, then the simulated VTN's 2.0b or 3.x settings."""
    vtn = building.vtn
    if isinstance(vtn, SimVtn3):
        return {
            "user": {"next_step_id": "openadr3"},
            "openadr3": {
                "vtn_url": vtn.url,
                "ven_name": VEN_NAME,
                "client_id": DEFAULT_CLIENT_ID,
                "client_secret": DEFAULT_CLIENT_SECRET,
                "token_url": vtn.token_url,
                "poll_interval": 2,
            },
        }
    return {
        "user": {"next_step_id": "openadr2"},
        "openadr2": {"vtn_url": vtn.url, "ven_name": VEN_NAME},
    }


def flow_answers(building: SimBuilding, meter_interval: int = 2) -> dict[str, dict[str, Any]]:
    """The fields to fill at each config flow step; the rest keep their defaults."""
    config = building.config
    return {
        **vtn_answers(building),
        "bacnet": {
            "interface": "127.0.0.1/32",
            # Port 0 (ephemeral): on loopback, a client on 47808 would answer its own requests
            # and collide with the simulated controllers.
            "port": 0,
            "routers": f"{config.network}={config.router_ip}",
            "point_mode": "bulk",
            "check_reachable": False,
        },
        "points_bulk": {"bulk": point_lines(building)},
        "meter": {"meter_source": "modbus"},
        "meter_modbus": {
            "host": building.meter.host,
            "modbus_port": building.meter.port,
            "unit_id": building.meter.unit_id,
            "register": building.meter.register,
            "register_type": "input",
            "data_type": "float32",
            "word_order": "big",
            "meter_interval": meter_interval,
        },
        "policy": {"shed_level": 1, "normal_level": 0, "act_on_test_events": False},
    }
