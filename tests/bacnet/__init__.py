"""Tests of the BACnet adapter against the simulated building on loopback."""

from __future__ import annotations

from custom_components.loadshed_ven.bacnet import LocalInterface
from custom_components.loadshed_ven.engine.points import OverridePoint, PointValue

AV = "analog-value,302"
BV = "binary-value,1"
MSV = "multi-state-value,1"


def make_point(
    address: str,
    object_type: str = "analog-value",
    instance: int = 302,
    *,
    priority: int = 10,
    value: PointValue = 80.0,
) -> OverridePoint:
    """An override point with the same value at every level."""
    return OverridePoint(
        address=address,
        object_type=object_type,
        instance=instance,
        priority=priority,
        values=(value, value, value),
    )


def client_interface(
    routes: dict[int, str] | None = None,
    *,
    apdu_timeout_ms: int = 1000,
    apdu_retries: int = 0,
    device_instance: int = 599,
) -> LocalInterface:
    """The adapter's interface on an ephemeral loopback port.

    Port 47808 would not do: bacpypes3 answers any 127.x.x.x on its own port itself.
    """
    return LocalInterface(
        address="127.0.0.1/32",
        port=0,
        device_instance=device_instance,
        routes=routes or {},
        apdu_timeout_ms=apdu_timeout_ms,
        apdu_retries=apdu_retries,
    )
