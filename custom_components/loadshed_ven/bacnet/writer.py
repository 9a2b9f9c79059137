"""Writes, releases and reads override points through a :class:`BacnetStack`.

Every operation ends with a read of the whole priority array, so the engine learns what
the controller verifiably holds: our slot, and whether a higher priority outranks us.
Offset points read the present value first, in the same throttle slot (one extra request
when a shed starts; plain ReadProperty, which every device supports).
Nothing here raises into the engine: every failure becomes an :class:`Outcome`.
How much is asked at once is :mod:`.limits` (one budget per stack, shared by every writer on
it); building the requests and decoding the read-back is :mod:`.readback`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from typing import Any, Final

from bacpypes3.apdu import ErrorRejectAbortNack

from ..engine.overrides import FailureKind, Outcome
from ..engine.points import OverridePoint, PointValue
from .errors import StackClosedError
from .limits import BacnetLimits, Throttle
from .readback import (
    PRESENT_VALUE,
    PRIORITY_ARRAY,
    Target,
    read_present_value,
    read_priority_array,
    write_present_value,
)
from .stack import BacnetStack
from .values import (
    ValueMismatchError,
    decode_priority_array,
    describe_bacnet_error,
    encode,
    matches,
    owner_above,
    release_value,
    routed_network,
)

_LOGGER = logging.getLogger(__name__)

ROUTE_DISCOVERY_SECONDS: Final = 2.0  # Who-Is-Router-To-Network wait in bacpypes3


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


class BacnetOverrideWriter:
    """The engine's :class:`~..engine.overrides.OverrideWriter` over BACnet.

    Writes exactly the point and value it is given, at the point's priority, and
    verifies by reading the priority array back.
    """

    def __init__(self, stack: BacnetStack, limits: BacnetLimits | None = None) -> None:
        """Use ``stack`` (shared, owned by the caller) within its budget.

        Without ``limits`` the writer shares the stack's one budget with every other writer
        on it (what the integration does). Given ``limits``, it gets a budget of its own, for
        measurements that compare limits on one stack.
        """
        self._stack = stack
        self._throttle = stack.throttle if limits is None else Throttle(limits)
        self._limits = self._throttle.limits
        self._targets: dict[tuple[str, str, int], Target] = {}

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

    async def read_present_value(self, point: OverridePoint) -> Outcome:
        """Read the present value (the value in force), then our slot and its owner."""
        return await _never_raise(point, self._read_in_force(point))

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

    async def _read_in_force(self, point: OverridePoint) -> Outcome:
        try:
            async with self._throttle.slot(point.address):
                present = await self._request(point, "read", PRESENT_VALUE)
                slots = await self._read_slots(point)
        except _RequestFailedError as err:
            return Outcome(ok=False, failure=err.failure, detail=err.detail)
        is_number = isinstance(present, int | float) and not isinstance(present, bool)
        return Outcome(
            ok=True,
            slot_value=slots[point.priority - 1],
            owner_priority=owner_above(slots, point.priority),
            # Real subclasses float; anything else is kept readable for the failure's detail.
            present_value=float(present) if is_number else str(present),
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

    def _target(self, point: OverridePoint) -> Target:
        """The point's parsed address and object (ValueError for an address not allowed)."""
        key = (point.address, point.object_type, point.instance)
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = Target(point)
        return target

    async def _request(self, point: OverridePoint, kind: str, payload: Any) -> Any:
        """One bounded round trip returning a read's value; failures raise _RequestFailedError."""
        address = point.address
        try:
            target = self._target(point)
            self._check_route(address)
            app = self._stack.app
            async with asyncio.timeout(self.request_timeout(address)):
                if kind == "write":
                    result = await write_present_value(app, target, payload, point.priority)
                elif payload == PRIORITY_ARRAY:
                    result = await read_priority_array(app, target)
                else:
                    result = await read_present_value(app, target)
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
