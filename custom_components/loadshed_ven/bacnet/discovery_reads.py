"""Bounded reads from one device for discovery, with every failure turned into :class:`ReadError`.

bacpypes3 raises errors, rejects and aborts as ``BaseException`` (and sometimes returns them);
here each becomes a ReadError that says whether the property is merely absent, the device did
not answer, or the device refused the service. ReadPropertyMultiple is used until the device
refuses it, then single reads.

Reading a large device means hundreds of requests to one controller, more than there are
invoke IDs. A controller that detects duplicates answers a request repeating a recent
(client, invoke ID) with its kept answer to the earlier request, which would put one object's
name on another. So requests are paced (:data:`PACE_REQUESTS` per :data:`PACE_WINDOW`) and
every answer must echo the object, property and index asked for.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any, Final

from bacpypes3.apdu import ErrorRejectAbortNack, ReadPropertyACK, ReadPropertyRequest, RejectPDU
from bacpypes3.basetypes import ErrorType, PropertyIdentifier
from bacpypes3.constructeddata import Array
from bacpypes3.primitivedata import Atomic, ObjectIdentifier, Unsigned
from bacpypes3.vendor import get_vendor_info

from ..engine.overrides import FailureKind
from .errors import StackClosedError
from .stack import BacnetStack
from .values import describe_bacnet_error, to_address

_LOGGER = logging.getLogger(__name__)

GUARD_MARGIN: Final = 1.0  # after bacpypes3's own retries, so its abort comes first
# Unanswered requests in a row after which a device counts as gone: the rest of a walk then
# fails at once instead of each request waiting out its timeout.
SILENT_LIMIT: Final = 3
# At most this many requests to one device start in any window: fewer than the 256 invoke IDs
# within longer than the duplicate windows controllers keep (5-6 s seen), so no ID repeats
# while the controller still remembers it. 20 requests/s is more than an MS/TP trunk carries.
PACE_REQUESTS: Final = 200
PACE_WINDOW: Final = 10.0
MISMATCH: Final = "the answer was for another request (a repeated invoke ID?)"
_STANDARD: Final = get_vendor_info(0)  # discovery reads standard objects and properties only
_ABSENT_CODES: Final = frozenset({"unknown-property"})
# Answers meaning "I do not do ReadPropertyMultiple": stop asking this device for it.
_NO_RPM_REASONS: Final = frozenset({"unrecognized-service"})

type PropertyKey = tuple[str, int | None]
"""A property and its array index, e.g. ``("priority-array", 0)``."""


class ReadError(Exception):
    """One read failed; ``absent`` when the object simply lacks the property."""

    def __init__(
        self, reason: str, *, absent: bool = False, no_answer: bool = False, no_rpm: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.absent = absent
        self.no_answer = no_answer
        self.no_rpm = no_rpm


def failure_of(err: Any) -> ReadError:
    """Turn a bacpypes3 error, reject or abort (or an RPM ErrorType) into a ReadError."""
    kind, text = describe_bacnet_error(err)
    code = str(getattr(err, "errorCode", "") or "")
    reason = str(getattr(err, "apduAbortRejectReason", "") or "")
    return ReadError(
        text,
        absent=code in _ABSENT_CODES,
        no_answer=kind is FailureKind.OFFLINE,
        no_rpm=isinstance(err, RejectPDU) and reason in _NO_RPM_REASONS,
    )


def property_text(prop: str, index: int | None) -> str:
    """``priority-array[0]`` for an indexed property, else the name."""
    return prop if index is None else f"{prop}[{index}]"


def _decode(oid: Any, prop: Any, index: int | None, value: Any) -> Any:
    """Decode a ReadProperty answer as bacpypes3's read_property does, for standard objects."""
    object_class = _STANDARD.get_object_class(oid[0])
    datatype = object_class.get_property_type(prop) if object_class else None
    if datatype is None:
        raise ReadError(f"no standard type for {oid[0]} {prop}")
    if index is not None and issubclass(datatype, Array):
        datatype = Unsigned if index == 0 else datatype._subtype
    # Some devices answer NULL for an optional property they lack (bacpypes3 allows it too).
    return value.cast_out(datatype, null=issubclass(datatype, Atomic))


async def read_property_checked(
    app: Any, target: Any, object_id: str, prop: str, index: int | None
) -> Any:
    """One ReadProperty whose answer must echo what was asked (ReadError if not)."""
    oid, pid = ObjectIdentifier(object_id), PropertyIdentifier(prop)
    request = ReadPropertyRequest(objectIdentifier=oid, propertyIdentifier=pid, destination=target)
    if index is not None:
        request.propertyArrayIndex = index
    response = await app.request(request)
    if isinstance(response, ErrorRejectAbortNack):
        return response  # handed back instead of raised: the caller raises it
    if not isinstance(response, ReadPropertyACK):
        raise ReadError(MISMATCH)  # e.g. a remembered answer to a ReadPropertyMultiple
    echo = (response.objectIdentifier, response.propertyIdentifier, response.propertyArrayIndex)
    if echo != (oid, pid, index):
        raise ReadError(MISMATCH)
    return _decode(oid, pid, index, response.propertyValue)


class DeviceReader:
    """Reads from one device, never more than ``concurrency`` requests in flight."""

    def __init__(
        self, stack: BacnetStack, address: str, *, concurrency: int, timeout: float | None = None
    ) -> None:
        """``timeout`` per request; by default the stack's own retries plus a margin.

        Raises ValueError for an address the product does not accept.
        """
        self._stack = stack
        self.address = address
        self._target = to_address(address)
        self._slots = asyncio.Semaphore(concurrency)
        self.timeout = timeout or stack.interface.transaction_seconds + GUARD_MARGIN
        self.rpm = True  # until the device refuses it
        self._silent = 0  # unanswered requests in a row
        self._gone: str | None = None  # why every further read fails at once
        self._started: deque[float] = deque()  # when the recent requests started

    async def _request(self, service: str, *args: Any) -> Any:
        async with self._slots:
            if self._gone is not None:
                raise ReadError(self._gone, no_answer=True)
            await self._pace()
            try:
                result = await self._call(service, *args)
            except ReadError as err:
                self._silent = self._silent + 1 if err.no_answer else 0
                if self._silent >= SILENT_LIMIT and self._gone is None:
                    self._gone = f"the device stopped answering ({SILENT_LIMIT} requests in a row)"
                raise
            self._silent = 0
        if isinstance(result, ErrorRejectAbortNack):  # some paths return it instead
            raise failure_of(result)
        # bacpypes3 answers plain "-no property type-" strings for what it cannot decode.
        if result is None or type(result) is str:
            raise ReadError(f"unreadable answer: {result!r}")
        return result

    async def _pace(self) -> None:
        """Wait until fewer than PACE_REQUESTS requests started within PACE_WINDOW."""
        loop = asyncio.get_running_loop()
        while len(self._started) >= PACE_REQUESTS:
            wait = self._started[0] + PACE_WINDOW - loop.time()
            if wait <= 0:
                self._started.popleft()
            else:
                await asyncio.sleep(wait)
        self._started.append(loop.time())

    async def _call(self, service: str, *args: Any) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                if service == "read_property":
                    return await read_property_checked(self._stack.app, self._target, *args)
                return await getattr(self._stack.app, service)(self._target, *args)
        except ErrorRejectAbortNack as err:  # a BaseException: `except Exception` misses it
            raise failure_of(err) from None
        except TimeoutError:
            raise ReadError(f"no answer within {self.timeout:.1f} s", no_answer=True) from None
        except StackClosedError as err:
            self._gone = str(err)
            raise ReadError(self._gone, no_answer=True) from None
        except ReadError:
            raise
        except Exception as err:
            # An answer bacpypes3 cannot decode (it raises its reject exceptions for that),
            # routing-cache and socket errors: this read failed, the walk goes on.
            _LOGGER.debug("BACnet read from %s failed", self.address, exc_info=True)
            raise ReadError(f"read failed: {err!r}") from None

    async def read(self, object_id: str, prop: str, index: int | None = None) -> Any:
        """One ReadProperty; raises ReadError."""
        return await self._request("read_property", object_id, prop, index)

    async def read_many(
        self, object_id: str, props: Sequence[PropertyKey]
    ) -> dict[PropertyKey, Any | ReadError]:
        """Read ``props`` of one object: one ReadPropertyMultiple, else one read each.

        Each value is what was read or the ReadError of that property. Without an answer
        at all the rest of the object is not asked for (each would wait as long).
        """
        if self.rpm:
            try:
                return await self._read_multiple(object_id, props)
            except ReadError as err:
                if err.no_answer:
                    return dict.fromkeys(props, err)
                if err.no_rpm:
                    self.rpm = False
                # Any other refusal (a property the device chokes on, a too-long answer):
                # ask for this object's properties one by one.
        values: dict[PropertyKey, Any | ReadError] = {}
        for prop, index in props:
            try:
                values[prop, index] = await self.read(object_id, prop, index)
            except ReadError as err:
                values[prop, index] = err
                if err.no_answer:
                    return {key: values.get(key, err) for key in props}
        return values

    async def _read_multiple(
        self, object_id: str, props: Sequence[PropertyKey]
    ) -> dict[PropertyKey, Any | ReadError]:
        wanted = [property_text(prop, index) for prop, index in props]
        results = await self._request("read_property_multiple", [object_id, wanted])
        values: dict[PropertyKey, Any | ReadError] = {}
        asked = ObjectIdentifier(object_id)
        for oid, prop, index, value in results:
            key = (str(prop), None if index is None else int(index))
            if oid != asked or key not in props:
                raise ReadError(MISMATCH)  # read_many then asks property by property
            if value is None:
                values[key] = ReadError("unreadable answer")
            elif isinstance(value, ErrorType):
                values[key] = failure_of(value)
            else:
                values[key] = value
        missing = ReadError("missing from the answer")
        return {key: values.get(key, missing) for key in props}
