"""Writes, releases and reads override points through a :class:`BacnetStack`.

Every operation ends with a read of the whole priority array, so the engine learns what
the controller verifiably holds: our slot, and whether a higher priority outranks us.
Nothing here raises into the engine: every failure becomes an :class:`Outcome`.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

from bacpypes3.apdu import ErrorRejectAbortNack, ReadPropertyACK, ReadPropertyRequest
from bacpypes3.basetypes import PriorityArray, PropertyIdentifier
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier, TagClass, TagNumber

from ..engine.overrides import FailureKind, Outcome
from ..engine.points import OverridePoint, PointValue
from .stack import BacnetStack, StackClosedError
from .values import (
    ValueMismatchError,
    check_address,
    decode_priority_array,
    describe_bacnet_error,
    encode,
    matches,
    object_id,
    owner_above,
    release_value,
    routed_network,
)

_LOGGER = logging.getLogger(__name__)

MAX_OUTSTANDING: Final = 128  # bacpypes3 freezes the loop at 256 outstanding per device
ROUTE_DISCOVERY_SECONDS: Final = 2.0  # Who-Is-Router-To-Network wait in bacpypes3
PRESENT_VALUE: Final = "present-value"
PRIORITY_ARRAY: Final = "priority-array"


@dataclass(frozen=True, kw_only=True)
class BacnetLimits:
    """How much the adapter asks of the network at once.

    * ``per_device`` (2): requests in flight to one controller; small controllers
      queue or drop beyond one or two.
    * ``per_network`` (4): requests in flight to one routed network (an MS/TP trunk
      behind a router). The trunk carries one frame at a time whatever we do, but with a
      few requests queued at the router it can serve one controller while another is
      still working on its answer; one at a time made a 50-point trunk the slowest part
      of a 500-point shed (2 s at 20 ms per answer, against 0.5 s with 4).
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


class _Throttle:
    """Slots per device, per routed network and overall, taken narrowest first.

    Taking the device slot first means requests queued behind a busy device do not sit
    on overall slots that other devices could use.
    """

    def __init__(self, limits: BacnetLimits) -> None:
        self._limits = limits
        self._overall = _OverallSlots(limits.overall)
        self._devices: dict[str, asyncio.Semaphore] = {}
        self._networks: dict[int, asyncio.Semaphore] = {}

    @asynccontextmanager
    async def slot(self, address: str) -> AsyncIterator[None]:
        device = self._devices.setdefault(address, asyncio.Semaphore(self._limits.per_device))
        network_number = routed_network(address)
        async with AsyncExitStack() as held:
            await held.enter_async_context(device)
            if network_number is not None:
                network = self._networks.setdefault(
                    network_number, asyncio.Semaphore(self._limits.per_network)
                )
                await held.enter_async_context(network)
            await self._overall.acquire(routed=network_number is not None)
            held.callback(self._overall.release)
            yield


class _RequestFailedError(Exception):
    """One request failed; carries the outcome to report."""

    def __init__(self, failure: FailureKind, detail: str) -> None:
        super().__init__(detail)
        self.failure = failure
        self.detail = detail


async def _never_raise(point: OverridePoint, operation: Awaitable[Outcome]) -> Outcome:
    """Await ``operation``; an unexpected error becomes a failed Outcome (never CancelledError).

    The engine runs every point concurrently and relies on each call returning.
    """
    try:
        return await operation
    except (Exception, ErrorRejectAbortNack) as err:  # see docstring
        _LOGGER.exception("Unexpected error on BACnet point %s", point.key)
        return Outcome(ok=False, failure=FailureKind.ERROR, detail=f"unexpected error: {err!r}")


class _NullSlot:
    """A NULL priority slot, in the form :func:`decode_priority_array` reads (``.null`` set)."""

    __slots__ = ()
    null = ()


_NULL_SLOT: Final = _NullSlot()


_PRIMITIVES: Final[dict[int, Callable[[bytes], Any]]] = {
    TagNumber.real: lambda data: struct.unpack(">f", data)[0],
    TagNumber.double: lambda data: struct.unpack(">d", data)[0],
    TagNumber.unsigned: lambda data: int.from_bytes(data, "big"),
    TagNumber.enumerated: lambda data: int.from_bytes(data, "big"),
    TagNumber.integer: lambda data: int.from_bytes(data, "big", signed=True),
}


def _tag_value(tag: Any) -> Any:
    """The value of one application-tagged primitive, or None for any other kind of tag."""
    if tag.tag_class != TagClass.application:
        return None
    if tag.tag_number == TagNumber.null:
        return _NULL_SLOT
    if tag.tag_number == TagNumber.boolean:
        return int(tag.tag_lvt)  # an application boolean keeps its value in the length field
    decode = _PRIMITIVES.get(tag.tag_number)
    try:
        return None if decode is None else decode(tag.tag_data)
    except struct.error:  # a real or double of the wrong length
        return None


def _quick_slots(value: Any) -> list[Any] | None:
    """The slots of an encoded priority array, or None when it needs bacpypes3's own decoder.

    bacpypes3 builds a many-field Choice object for every slot, which costs milliseconds of CPU
    per array and made decoding the read-back the largest cost of a shed. The primitives a
    commandable point holds are read straight from their tags instead.
    """
    tags = list(value.tagList or ())
    if getattr(value, "_context", None) is not None:
        if len(tags) < 2 or (tags[0].tag_class, tags[-1].tag_class) != (
            TagClass.opening,
            TagClass.closing,
        ):
            return None
        tags = tags[1:-1]
    slots = [_tag_value(tag) for tag in tags]
    return None if any(slot is None for slot in slots) else slots


async def _read_priority_array(app: Any, address: str, point: OverridePoint) -> Any:
    """Read the point's priority array as ``app.read_property`` does, decoding it cheaply.

    Returns a list of slots :func:`decode_priority_array` reads; anything but an ACK is
    returned as it came (an error or None) for the caller to report.
    """
    request = ReadPropertyRequest(
        objectIdentifier=ObjectIdentifier(object_id(point)),
        propertyIdentifier=PropertyIdentifier(PRIORITY_ARRAY),
        destination=Address(address),
    )
    response = await app.request(request)
    if not isinstance(response, ReadPropertyACK) or response.propertyValue is None:
        return response if isinstance(response, ErrorRejectAbortNack) else None
    slots = _quick_slots(response.propertyValue)
    if slots is None:  # a constructed or date-time slot: let bacpypes3 decode it all
        return response.propertyValue.cast_out(PriorityArray)
    return slots


class BacnetOverrideWriter:
    """The engine's :class:`~..engine.overrides.OverrideWriter` over BACnet.

    Writes exactly the point and value it is given, at the point's priority, and
    verifies by reading the priority array back.
    """

    def __init__(self, stack: BacnetStack, limits: BacnetLimits | None = None) -> None:
        """Use ``stack`` (shared, owned by the caller) within ``limits``."""
        self._stack = stack
        self._limits = limits or BacnetLimits()
        self._throttle = _Throttle(self._limits)

    @property
    def limits(self) -> BacnetLimits:
        """The concurrency and timeout limits in force."""
        return self._limits

    def request_timeout(self, address: str) -> float:
        """Seconds one request to ``address`` may take before the guard cancels it."""
        interface = self._stack.interface
        seconds = interface.transaction_seconds + self._limits.guard_margin
        network = routed_network(address)
        if network is not None and network not in self._stack.routes:
            seconds += ROUTE_DISCOVERY_SECONDS
        return seconds

    async def write(self, point: OverridePoint, value: PointValue) -> Outcome:
        """Write ``value`` at the point's priority, then verify our slot holds it."""
        try:
            primitive = encode(point, value)
        except ValueMismatchError as err:
            return Outcome(ok=False, failure=FailureKind.ERROR, detail=f"not sent: {err}")
        return await _never_raise(point, self._command(point, primitive, value))

    async def release(self, point: OverridePoint) -> Outcome:
        """Write NULL at the point's priority, then verify our slot is empty."""
        return await _never_raise(point, self._command(point, release_value(), None))

    async def read(self, point: OverridePoint) -> Outcome:
        """Read our slot and any higher-priority owner, without writing."""
        return await _never_raise(point, self._read(point))

    async def check_points(
        self, points: Iterable[OverridePoint]
    ) -> list[tuple[OverridePoint, Outcome]]:
        """Read each point's present value; return the points that did not answer, and why.

        Runs within the same limits as writes, so checking a large building stays polite.
        """
        todo = list(points)
        results = await asyncio.gather(*(self._probe(point) for point in todo))
        return [(point, outcome) for point, outcome in zip(todo, results, strict=True) if outcome]

    async def _probe(self, point: OverridePoint) -> Outcome | None:
        outcome = await _never_raise(point, self._read(point, PRESENT_VALUE))
        return None if outcome.ok else outcome

    async def _read(self, point: OverridePoint, prop: str = PRIORITY_ARRAY) -> Outcome:
        try:
            async with self._throttle.slot(point.address):
                if prop == PRESENT_VALUE:
                    await self._request(point, "read", PRESENT_VALUE)
                    return Outcome(ok=True)
                slots = await self._read_slots(point)
        except _RequestFailedError as err:
            return Outcome(ok=False, failure=err.failure, detail=err.detail)
        return Outcome(
            ok=True,
            slot_value=slots[point.priority - 1],
            owner_priority=owner_above(slots, point.priority),
        )

    async def _command(
        self, point: OverridePoint, primitive: Any, wanted: PointValue | None
    ) -> Outcome:
        """Write ``primitive`` (a value, or Null to release), then read the array back."""
        action = "write" if wanted is not None else "release"
        try:
            async with self._throttle.slot(point.address):
                await self._request(point, "write", primitive)
                slots = await self._read_slots(point, after=action)
        except _RequestFailedError as err:
            return Outcome(ok=False, failure=err.failure, detail=err.detail)
        held = slots[point.priority - 1]
        owner = owner_above(slots, point.priority)
        verified = held is None if wanted is None else matches(point, wanted, held)
        if not verified:
            expected = "NULL" if wanted is None else repr(wanted)
            found = "NULL" if held is None else repr(held)
            return Outcome(
                ok=False,
                slot_value=held,
                owner_priority=owner,
                failure=FailureKind.NOT_VERIFIED,
                detail=(
                    f"{action} accepted, but priority {point.priority} holds {found} "
                    f"instead of {expected}"
                ),
            )
        # Report what we asked for: the device's Real can differ in the last float32 bits.
        return Outcome(ok=True, slot_value=wanted, owner_priority=owner)

    async def _read_slots(
        self, point: OverridePoint, after: str | None = None
    ) -> list[PointValue | None]:
        try:
            array = await self._request(point, "read", PRIORITY_ARRAY)
            return decode_priority_array(point, array)
        except _RequestFailedError as err:
            if after is None:
                raise
            raise _RequestFailedError(
                err.failure, f"{after} accepted, but reading it back failed: {err.detail}"
            ) from None
        except ValueError as err:
            prefix = f"{after} accepted, but " if after else ""
            raise _RequestFailedError(
                FailureKind.NOT_VERIFIED if after else FailureKind.ERROR,
                f"{prefix}the priority array could not be read: {err}",
            ) from None

    async def _request(self, point: OverridePoint, kind: str, payload: Any) -> Any:
        """One bounded round trip returning a read's value; failures raise _RequestFailedError."""
        address = point.address
        try:
            check_address(address)
            self._check_route(address)
            app = self._stack.app
            async with asyncio.timeout(self.request_timeout(address)):
                if kind == "write":
                    result = await app.write_property(
                        address, object_id(point), PRESENT_VALUE, payload, priority=point.priority
                    )
                elif payload == PRIORITY_ARRAY:
                    result = await _read_priority_array(app, address, point)
                else:
                    result = await app.read_property(address, object_id(point), payload)
        except ErrorRejectAbortNack as err:  # a BaseException: `except Exception` misses it
            raise _RequestFailedError(*describe_bacnet_error(err)) from None
        except TimeoutError:
            raise _RequestFailedError(
                FailureKind.OFFLINE,
                f"no answer within {self.request_timeout(address):.1f} s",
            ) from None
        except StackClosedError as err:
            raise _RequestFailedError(FailureKind.ERROR, str(err)) from None
        except (ValueError, TypeError, RuntimeError, OSError) as err:
            # Encoding problems, bacpypes3 routing-cache errors, socket errors.
            _LOGGER.debug("BACnet %s to %s failed", kind, address, exc_info=True)
            raise _RequestFailedError(FailureKind.ERROR, f"{kind} failed: {err}") from None
        # Some stacks hand back an error instead of raising it; strings mean "cannot decode".
        if isinstance(result, ErrorRejectAbortNack):
            raise _RequestFailedError(*describe_bacnet_error(result))
        if kind == "write" and result is not None:
            raise _RequestFailedError(FailureKind.ERROR, f"write not sent: {result}")
        if kind == "read" and (result is None or isinstance(result, str)):
            raise _RequestFailedError(FailureKind.ERROR, f"unreadable answer: {result!r}")
        return result

    def _check_route(self, address: str) -> None:
        """Fail fast for a routed network that can be reached neither statically nor found.

        Without a broadcast socket bacpypes3 cannot ask for a router; it would fail the
        send in a background task and leave the request to time out.
        """
        network = routed_network(address)
        if network is None or network in self._stack.routes:
            return
        if not self._stack.interface.can_broadcast:
            raise ValueError(
                f"no router is configured for network {network} and this interface "
                "cannot broadcast to discover one"
            )
