"""BACnet/IP adapter: one shared bacpypes3 stack, verified priority-array overrides.

Nothing here imports Home Assistant. Addresses must be IPv4 literals or ``network:MAC``
(bacpypes3 would resolve anything else with a blocking lookup in the event loop).
"""

from .stack import (
    BacnetStack,
    BacnetStackError,
    InterfaceConflictError,
    LocalInterface,
    PortInUseError,
    StackClosedError,
    StackHandle,
    StackRegistry,
)
from .writer import BacnetLimits, BacnetOverrideWriter

__all__ = [
    "BacnetLimits",
    "BacnetOverrideWriter",
    "BacnetStack",
    "BacnetStackError",
    "InterfaceConflictError",
    "LocalInterface",
    "PortInUseError",
    "StackClosedError",
    "StackHandle",
    "StackRegistry",
]
