"""BACnet/IP adapter: one shared bacpypes3 stack, verified priority-array overrides.

Nothing here imports Home Assistant. Addresses must be IPv4 literals, ``network:MAC`` or
``network:IP[:port]`` (bacpypes3 would resolve anything else with a blocking lookup in the
event loop). The names below are the adapter's interface to the integration.
"""

from .bbmd import BbmdListener, BbmdStatus, BbmdTiming
from .discovery import (
    DiscoveredDevice,
    DiscoveredObject,
    DiscoveryError,
    DiscoveryProgress,
    ObjectListResult,
    ReadFailure,
    discover_devices,
    read_objects,
)
from .errors import BacnetStackError, InterfaceConflictError, PortInUseError, StackClosedError
from .interface import BbmdRegistration, LocalInterface, check_port_free
from .limits import BacnetLimits
from .stack import BacnetStack
from .stack_registry import StackHandle, StackRegistry
from .writer import BacnetOverrideWriter

__all__ = [
    "BacnetLimits",
    "BacnetOverrideWriter",
    "BacnetStack",
    "BacnetStackError",
    "BbmdListener",
    "BbmdRegistration",
    "BbmdStatus",
    "BbmdTiming",
    "DiscoveredDevice",
    "DiscoveredObject",
    "DiscoveryError",
    "DiscoveryProgress",
    "InterfaceConflictError",
    "LocalInterface",
    "ObjectListResult",
    "PortInUseError",
    "ReadFailure",
    "StackClosedError",
    "StackHandle",
    "StackRegistry",
    "check_port_free",
    "discover_devices",
    "read_objects",
]
