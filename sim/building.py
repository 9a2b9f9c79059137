"""The whole simulated building: VTN, BACnet controllers and meter, started and stopped together."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Self

from .bacnet import SimBacnetNetwork
from .bacnet_faults import DEFAULT_DUPLICATE_WINDOW
from .meter import SimMeter
from .vtn import SimVtn
from .vtn3 import SimVtn3


@dataclass(frozen=True, kw_only=True)
class BuildingConfig:
    """What to start. The defaults are the building ``python -m sim`` runs.

    ``duplicate_window``: seconds each controller answers a repeated (client, invoke ID) from
    its cache without executing it, as real controllers do; 0 turns that off.
    ``openadr``: the VTN's protocol, "2.0b" (openleadr) or "3" (OpenADR 3.1.0, REST + OAuth2).
    """

    devices: int = 50
    routed_devices: int = 4
    base_ip: str = "127.0.0.2"
    router_ip: str = "127.1.0.1"
    network: int = 12345
    vtn_port: int = 8080
    poll_interval: timedelta = field(default=timedelta(seconds=2))
    meter_port: int = 5020
    meter_register: int = 17
    base_kw: float = 850.0
    kw_per_override: float = 1.5
    duplicate_window: float = DEFAULT_DUPLICATE_WINDOW
    # Off by default: controllers behind a BBMD, and behind a BACnet/IP-to-BACnet/IP router.
    remote_devices: int = 0
    bbmd_ip: str = "127.2.0.1"
    routed_ip_devices: int = 0
    ip_router_ip: str = "127.3.0.1"
    openadr: str = "2.0b"

    def __post_init__(self) -> None:
        """Refuse an unknown OpenADR version early, before anything binds."""
        if self.openadr not in ("2.0b", "3"):
            raise ValueError(f"openadr must be '2.0b' or '3', got {self.openadr!r}")


class SimBuilding:
    """Owns the three simulated peers; ``async with SimBuilding(cfg) as b: ...``."""

    def __init__(self, config: BuildingConfig | None = None) -> None:
        """Create the peers (nothing is bound until :meth:`start`)."""
        self.config = cfg = config or BuildingConfig()
        self.bacnet = SimBacnetNetwork(
            ip_devices=cfg.devices,
            routed_devices=cfg.routed_devices,
            base_ip=cfg.base_ip,
            router_ip=cfg.router_ip,
            network=cfg.network,
            duplicate_window=cfg.duplicate_window,
            remote_devices=cfg.remote_devices,
            bbmd_ip=cfg.bbmd_ip,
            routed_ip_devices=cfg.routed_ip_devices,
            ip_router_ip=cfg.ip_router_ip,
        )
        self.meter = SimMeter(
            port=cfg.meter_port,
            register=cfg.meter_register,
            base_kw=cfg.base_kw,
            kw_per_override=cfg.kw_per_override,
            overrides=self.bacnet.overridden_points,
        )
        self.vtn: SimVtn | SimVtn3 = (
            SimVtn3(port=cfg.vtn_port, poll_interval=cfg.poll_interval)
            if cfg.openadr == "3"
            else SimVtn(port=cfg.vtn_port, poll_interval=cfg.poll_interval)
        )

    async def start(self) -> None:
        """Start every peer; on a failure, stop what already started and re-raise."""
        started: list[SimBacnetNetwork | SimMeter | SimVtn | SimVtn3] = []
        try:
            for peer in (self.bacnet, self.meter, self.vtn):
                await peer.start()
                started.append(peer)
        except BaseException:
            for peer in reversed(started):
                with contextlib.suppress(Exception):
                    await peer.stop()
            raise

    async def stop(self) -> None:
        """Stop every peer, VTN first so no new event arrives while devices go away."""
        for peer in (self.vtn, self.meter, self.bacnet):
            await peer.stop()

    async def __aenter__(self) -> Self:
        """Start the building."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop the building."""
        await self.stop()

    def endpoints(self) -> dict[str, object]:
        """Where each peer listens, for people and for the control API."""
        ip = [d.address for d in self.bacnet.devices if ":" not in d.address]
        routed = [d.address for d in self.bacnet.devices if ":" in d.address]
        bacnet: dict[str, object] = {
            "ip_devices": ip,
            "routed_devices": routed,
            "router": self.bacnet.router_address,
            "network": self.config.network,
            "objects": ["analog-value,302", "binary-value,1", "multi-state-value,1"],
        }
        if (remote := self.bacnet.remote) is not None:
            bacnet["bbmd"] = {
                "address": remote.bbmd.address,
                "remote_devices": [d.address for d in remote.devices],
            }
        if (routed_ip := self.bacnet.routed_ip) is not None:
            bacnet["ip_router"] = {
                "address": routed_ip.router.ip,
                "network": routed_ip.network,
                "devices": routed_ip.addresses,
            }
        return {
            "vtn_url": self.vtn.url,
            "meter": {
                "host": self.meter.host,
                "port": self.meter.port,
                "unit_id": self.meter.unit_id,
                "input_register": self.meter.register,
                "data_type": "float32",
                "word_order": "big",
                "kw": self.meter.current_kw(),
                "energy_register": self.meter.energy_register,
                "kwh": self.meter.energy_kwh(),
            },
            "bacnet": bacnet,
        }
