"""How much the override writer asks of the network at once: :class:`BacnetLimits`.

:class:`Throttle` holds the slots those limits allow, per controller, per routed network
and overall, and hands a freed overall slot to a routed request first.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Final

from .values import routed_network

MAX_OUTSTANDING: Final = 128  # bacpypes3 freezes the loop at 256 outstanding per device


@dataclass(frozen=True, kw_only=True)
class BacnetLimits:
    """How much the adapter asks of the network at once.

    * ``per_device`` (2): requests in flight to one controller; small controllers
      queue or drop beyond one or two.
    * ``per_network`` (4): requests in flight to one routed network (an MS/TP trunk
      behind a router; devices behind a BACnet/IP-to-IP router, addressed
      ``network:IP[:port]``, sit on a fast IP network and count as direct). The trunk
      carries one frame at a time whatever we do, but with a few requests queued at the
      router it can serve one controller while another is still working on its answer;
      one at a time made a 50-point trunk the slowest part of a 500-point shed (2 s at
      20 ms per answer, against 0.5 s with 4).
    * ``overall`` (64): requests in flight in total, so 500 points at 20 ms per answer
      need 8 waves of write + read-back instead of 16; at most 128, far below the 255
      outstanding requests per controller at which bacpypes3 runs out of invoke ids.
    * ``guard_margin`` (1.0 s): each request is cancelled this long after bacpypes3's
      own retries (apdu timeout x (retries + 1)) should have given up, so the stack's
      abort always comes first and the guard only catches a stuck request.

    Waiting for a free slot is not timed separately: every request ahead is bounded, so
    the wait is too. A caller wanting an overall deadline cancels the call; cancellation
    is passed through, never turned into an Outcome.
    """

    per_device: int = 2
    per_network: int = 4
    overall: int = 64
    guard_margin: float = 1.0

    def __post_init__(self) -> None:
        """Refuse limits that cannot work."""
        if not 1 <= self.overall <= MAX_OUTSTANDING:
            raise ValueError(f"overall must be 1-{MAX_OUTSTANDING}, got {self.overall}")
        if self.per_device < 1 or self.per_network < 1:
            raise ValueError("per_device and per_network must be at least 1")
        if not self.guard_margin > 0:
            raise ValueError("guard_margin must be positive")


def trunk_network(address: str) -> int | None:
    """The routed network of ``address`` when it is a slow trunk (a short MAC), else None.

    A 6-byte MAC (``2000:10.1.2.5[:port]``) is a device behind a BACnet/IP-to-IP router:
    an IP network as fast as the direct one, so neither trunk limit nor priority applies.
    Addresses are normalised: only IP ones contain dots.
    """
    return None if "." in address else routed_network(address)


class _OverallSlots:
    """The overall limit: a semaphore that hands a freed slot to a routed request first.

    A routed request waiting here already holds one of its trunk's few slots. Queued behind
    hundreds of IP requests it would leave the trunk idle until they were all done, and the
    trunk (the slowest part of a building) would only start at the end of a shed.
    """

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._routed: deque[asyncio.Future[None]] = deque()
        self._others: deque[asyncio.Future[None]] = deque()

    async def acquire(self, *, routed: bool) -> None:
        if self._free > 0 and not self._routed and not self._others:
            self._free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        (self._routed if routed else self._others).append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as the caller was cancelled
            raise

    def release(self) -> None:
        for queue in (self._routed, self._others):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():  # cancelled waiters are skipped
                    waiter.set_result(None)
                    return
        self._free += 1


class Throttle:
    """Slots per device, per routed network and overall, taken narrowest first.

    Taking the device slot first means requests queued behind a busy device do not sit
    on overall slots that other devices could use.
    """

    def __init__(self, limits: BacnetLimits) -> None:
        self._limits = limits
        self._overall = _OverallSlots(limits.overall)
        self._devices: dict[str, asyncio.Semaphore] = {}
        self._networks: dict[int, asyncio.Semaphore] = {}

    @property
    def limits(self) -> BacnetLimits:
        """The limits this budget enforces."""
        return self._limits

    def slot(self, address: str) -> _Slot:
        """Hold a slot of every limit that applies to ``address`` for the ``async with`` body."""
        device = self._devices.get(address)
        if device is None:
            device = self._devices[address] = asyncio.Semaphore(self._limits.per_device)
        network: asyncio.Semaphore | None = None
        network_number = trunk_network(address)
        if network_number is not None:
            network = self._networks.get(network_number)
            if network is None:
                network = asyncio.Semaphore(self._limits.per_network)
                self._networks[network_number] = network
        return _Slot(self._overall, device, network)


class _Slot:
    """One request's hold on its device, network and overall slots (a plain context manager).

    Written out rather than built from ``asynccontextmanager`` and ``AsyncExitStack``: taken
    twice per point, their generator and exit stack were a visible share of a shed's CPU.
    """

    __slots__ = ("_device", "_network", "_overall")

    def __init__(
        self, overall: _OverallSlots, device: asyncio.Semaphore, network: asyncio.Semaphore | None
    ) -> None:
        self._overall = overall
        self._device = device
        self._network = network

    async def __aenter__(self) -> None:
        await self._device.acquire()
        try:
            if self._network is not None:
                await self._network.acquire()
            try:
                await self._overall.acquire(routed=self._network is not None)
            except BaseException:
                if self._network is not None:
                    self._network.release()
                raise
        except BaseException:
            self._device.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._overall.release()
        if self._network is not None:
            self._network.release()
        self._device.release()
