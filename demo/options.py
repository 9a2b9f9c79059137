"""The demo's command line options."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sim.building import BuildingConfig
from sim.control import DEFAULT_CONTROL_PORT

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG_DIR = ROOT / ".demo"
# Commissioning starts from an empty Home Assistant: its own directory, so the set-up demo's
# entry does not get in the way (and a half-commissioned building survives a restart).
COMMISSIONING_CONFIG_DIR = ROOT / ".demo-commissioning"
DEFAULT_HA_PORT = 8123
# Controllers behind the BBMD and behind the BACnet/IP router when commissioning.
COMMISSIONING_SITE_DEVICES = 3


@dataclass(frozen=True, kw_only=True)
class DemoOptions:
    """What to start, and where."""

    building_only: bool = False
    commissioning: bool = False
    ha_port: int = DEFAULT_HA_PORT
    config_dir: Path = DEFAULT_CONFIG_DIR
    fresh: bool = False
    devices: int = BuildingConfig.devices
    routed: int = BuildingConfig.routed_devices
    base_ip: str = BuildingConfig.base_ip
    router_ip: str = BuildingConfig.router_ip
    vtn_port: int = BuildingConfig.vtn_port
    meter_port: int = BuildingConfig.meter_port
    remote_devices: int = 0
    bbmd_ip: str = BuildingConfig.bbmd_ip
    routed_ip_devices: int = 0
    ip_router_ip: str = BuildingConfig.ip_router_ip
    control_port: int = DEFAULT_CONTROL_PORT
    poll: float = 2.0
    openadr: str = "2.0b"
    verbose: bool = False

    def building_config(self) -> BuildingConfig:
        """The simulated building these options describe."""
        return BuildingConfig(
            openadr=self.openadr,
            devices=self.devices,
            routed_devices=self.routed,
            base_ip=self.base_ip,
            router_ip=self.router_ip,
            vtn_port=self.vtn_port,
            meter_port=self.meter_port,
            poll_interval=timedelta(seconds=self.poll),
            remote_devices=self.remote_devices,
            bbmd_ip=self.bbmd_ip,
            routed_ip_devices=self.routed_ip_devices,
            ip_router_ip=self.ip_router_ip,
        )


def parse_args(argv: list[str] | None = None) -> DemoOptions:
    """Options from the command line; exits with a usage message on bad input."""
    parser = argparse.ArgumentParser(
        prog="scripts/demo",
        description=(
            "Start the simulated building (OpenADR VTN, BACnet controllers, Modbus meter) and "
            "a Home Assistant with loadshed_ven set up against it, on loopback only. "
            "Ctrl-C stops everything."
        ),
    )
    parser.add_argument(
        "--building-only",
        action="store_true",
        help="start only the simulated building (no Home Assistant)",
    )
    parser.add_argument(
        "--commissioning",
        action="store_true",
        help=(
            "add a BBMD site and a BACnet/IP router site to the building and leave Home "
            "Assistant without loadshed_ven: commission it in the UI from what the demo prints "
            "(in its own configuration directory)"
        ),
    )
    parser.add_argument(
        "--ha-port",
        "--port",
        type=int,
        default=DEFAULT_HA_PORT,
        help="Home Assistant's HTTP port on 127.0.0.1 (default %(default)s)",
    )
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        help=(
            "Home Assistant's configuration directory (default: .demo/ in the repository, "
            ".demo-commissioning/ with --commissioning)"
        ),
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="start from an empty configuration directory (deletes one the demo made before)",
    )
    defaults = DemoOptions()
    parser.add_argument("--devices", type=int, default=defaults.devices, help="IP controllers")
    parser.add_argument(
        "--routed", type=int, default=defaults.routed, help="controllers behind the MS/TP router"
    )
    parser.add_argument(
        "--building-base-ip",
        dest="base_ip",
        default=defaults.base_ip,
        help="first controller's address (a 127.x address; default %(default)s)",
    )
    parser.add_argument(
        "--router-ip",
        default=defaults.router_ip,
        help="MS/TP router's address (default %(default)s)",
    )
    parser.add_argument(
        "--remote-devices",
        type=int,
        help=(
            "controllers on another subnet, found only through the BBMD "
            f"(default {COMMISSIONING_SITE_DEVICES} with --commissioning, else 0)"
        ),
    )
    parser.add_argument(
        "--bbmd-ip", default=defaults.bbmd_ip, help="the BBMD's address (default %(default)s)"
    )
    parser.add_argument(
        "--routed-ip-devices",
        type=int,
        help=(
            "controllers on BACnet network 2000 behind the BACnet/IP router "
            f"(default {COMMISSIONING_SITE_DEVICES} with --commissioning, else 0)"
        ),
    )
    parser.add_argument(
        "--ip-router-ip",
        default=defaults.ip_router_ip,
        help="the BACnet/IP router's address (default %(default)s)",
    )
    parser.add_argument("--vtn-port", type=int, default=defaults.vtn_port)
    parser.add_argument("--meter-port", type=int, default=defaults.meter_port)
    parser.add_argument("--control-port", type=int, default=defaults.control_port)
    parser.add_argument(
        "--poll", type=float, default=defaults.poll, help="VTN poll interval in seconds (>= 1)"
    )
    parser.add_argument(
        "--openadr",
        choices=["2.0b", "3"],
        default=defaults.openadr,
        help="the simulated VTN's OpenADR version: 2.0b (XML) or 3 (REST + OAuth2); "
        "default %(default)s",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    if args.poll < 1:
        parser.error("--poll must be at least 1 second")
    for flag, address in (
        ("--building-base-ip", args.base_ip),
        ("--router-ip", args.router_ip),
        ("--bbmd-ip", args.bbmd_ip),
        ("--ip-router-ip", args.ip_router_ip),
    ):
        if not str(address).startswith("127."):
            parser.error(f"{flag} must be a loopback address (127.x.x.x)")
    site_default = COMMISSIONING_SITE_DEVICES if args.commissioning else 0
    remote = site_default if args.remote_devices is None else args.remote_devices
    routed_ip = site_default if args.routed_ip_devices is None else args.routed_ip_devices
    if remote < 0 or routed_ip < 0:
        parser.error("--remote-devices and --routed-ip-devices must not be negative")
    config_dir = args.config_dir or (
        COMMISSIONING_CONFIG_DIR if args.commissioning else DEFAULT_CONFIG_DIR
    )
    return DemoOptions(
        building_only=args.building_only,
        commissioning=args.commissioning,
        ha_port=args.ha_port,
        config_dir=config_dir.resolve(),
        fresh=args.fresh,
        devices=args.devices,
        routed=args.routed,
        base_ip=args.base_ip,
        router_ip=args.router_ip,
        remote_devices=remote,
        bbmd_ip=args.bbmd_ip,
        routed_ip_devices=routed_ip,
        ip_router_ip=args.ip_router_ip,
        vtn_port=args.vtn_port,
        meter_port=args.meter_port,
        control_port=args.control_port,
        poll=args.poll,
        openadr=args.openadr,
        verbose=args.verbose,
    )
