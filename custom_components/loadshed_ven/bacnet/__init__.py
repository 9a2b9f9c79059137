"""BACnet/IP adapter: one shared bacpypes3 stack, verified priority-array overrides.

Nothing here imports Home Assistant. Addresses must be IPv4 literals or ``network:MAC``
(bacpypes3 would resolve anything else with a blocking lookup in the event loop). The names
below are the adapter's interface to the integration.
"""

from .errors import BacnetStackError, InterfaceConflictError, PortInUseError, StackClosedError
from .interface import LocalInterface, check_port_free
from .limits import BacnetLimits
from .stack import BacnetStack
from .stack_registry import StackHandle, StackRegistry
from .writer import BacnetOverrideWriter

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
    "check_port_free",
]
