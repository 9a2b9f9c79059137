"""The errors of the local BACnet stack, shared by the stack, its interface and its registry."""

from __future__ import annotations


class BacnetStackError(Exception):
    """The local BACnet stack could not start or be shared."""


class PortInUseError(BacnetStackError):
    """Another program holds the UDP port the stack must bind."""


class InterfaceConflictError(BacnetStackError):
    """The interface is already running with a different identity or route."""


class StackClosedError(BacnetStackError):
    """The stack was closed while a request was waiting for its answer."""
