"""The shared registry of running stacks: one :class:`BacnetStack` per (local IP, port).

Every user of the same interface gets a :class:`StackHandle` on one running stack; the stack
closes after the last handle is released.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .errors import InterfaceConflictError
from .interface import LocalInterface
from .limits import BacnetLimits
from .stack import BacnetStack


def _bbmd_text(interface: LocalInterface) -> str:
    bbmd = interface.bbmd
    return "no BBMD" if bbmd is None else f"BBMD {bbmd.text} (TTL {bbmd.ttl} s)"


class StackHandle:
    """One user's share of a running stack; release it exactly once (later calls no-op)."""

    def __init__(self, registry: StackRegistry, stack: BacnetStack) -> None:
        """Bind the handle to its registry and stack."""
        self._registry = registry
        self._stack = stack
        self._released = False

    @property
    def stack(self) -> BacnetStack:
        """The shared stack."""
        return self._stack

    @property
    def released(self) -> bool:
        """True once released."""
        return self._released

    async def release(self) -> None:
        """Give the share back; the last release closes the stack."""
        await self._registry.release(self)


@dataclass
class _Entry:
    stack: BacnetStack
    users: int = 0


class StackRegistry:
    """Shares one :class:`BacnetStack` per (local IP, port) between its users.

    Keep one registry per process (for Home Assistant: one per ``hass`` instance).
    Routes requested by later users are added to the running stack and stay until it
    closes; a different device identity on the same IP and port is refused. The users of a
    stack share its one concurrency budget (:attr:`BacnetStack.throttle`): two config entries
    on one interface never ask more of the controllers together than one would.
    """

    def __init__(self, limits: BacnetLimits | None = None) -> None:
        """Start empty; each stack started gets ``limits`` (default :class:`BacnetLimits`)."""
        self._limits = limits
        self._entries: dict[tuple[str, int], _Entry] = {}
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        """Number of running stacks."""
        return len(self._entries)

    def users(self, interface: LocalInterface) -> int:
        """How many handles share the stack of ``interface`` (0 if none runs)."""
        entry = self._entries.get(interface.key)
        return entry.users if entry is not None else 0

    def running(self, interface: LocalInterface) -> LocalInterface | None:
        """The interface of the stack running on ``interface``'s IP and port, if any."""
        entry = self._entries.get(interface.key)
        return entry.stack.interface if entry is not None else None

    async def acquire(self, interface: LocalInterface) -> StackHandle:
        """Return a handle on the running stack for ``interface``, starting it if needed."""
        async with self._lock:
            entry = self._entries.get(interface.key)
            if entry is None:
                stack = BacnetStack(interface, limits=self._limits)
                await stack.start()
                entry = self._entries[interface.key] = _Entry(stack)
            else:
                running = entry.stack.interface
                if running.bbmd != interface.bbmd:
                    raise InterfaceConflictError(
                        f"{interface.ip}:{interface.port} already runs BACnet with "
                        f"{_bbmd_text(running)}, not {_bbmd_text(interface)}; every "
                        "configuration on one IP and port must use the same BBMD"
                    )
                if not running.same_identity(interface):
                    raise InterfaceConflictError(
                        f"{interface.ip}:{interface.port} already runs BACnet device "
                        f"{running.device_instance} ('{running.device_name}', "
                        f"{running.address}); a second configuration must use the same "
                        "identity or another port"
                    )
                await entry.stack.add_routes(interface.routes)
            entry.users += 1
            return StackHandle(self, entry.stack)

    async def release(self, handle: StackHandle) -> None:
        """Give back ``handle``; close its stack after the last user."""
        async with self._lock:
            if handle._released:
                return
            handle._released = True
            key = handle.stack.interface.key
            entry = self._entries.get(key)
            if entry is None or entry.stack is not handle.stack:
                return
            entry.users -= 1
            if entry.users <= 0:
                del self._entries[key]
                await entry.stack.close()

    async def close_all(self) -> None:
        """Close every stack regardless of users (shutdown)."""
        async with self._lock:
            entries, self._entries = list(self._entries.values()), {}
            for entry in entries:
                await entry.stack.close()
