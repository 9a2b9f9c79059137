"""The two requests of every write and release, encoded and decoded without bacpypes3's Sequences.

Every write and release is a WriteProperty of the present value followed by a ReadProperty of
the priority array. A large shed sends two of them per point, and bacpypes3's convenience calls
redo everything each time: parse the address and object identifier, look up the vendor's object
classes, build and encode a Sequence, and decode the answer into a Sequence of many-field
Choices. Here each point's address and request templates are built once (by bacpypes3 itself,
in a :class:`Target`); a request then only appends the value and priority, and the ACK's few
tags are read straight from its bytes (:class:`~.stack.RawReplyRequest`).

The whole array is read (one ReadProperty, no array index): the owner of the point is the
highest non-NULL slot above ours, and 16 primitive tags parse in microseconds. One slot read
with an array index would not tell who owns the point, and the request's fixed costs (the
stack's transaction, the socket) are most of what is left.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any, Final

from bacpypes3.apdu import (
    APCISequence,
    ComplexAckPDU,
    ErrorRejectAbortNack,
    ReadPropertyACK,
    ReadPropertyRequest,
    SimpleAckPDU,
    WritePropertyRequest,
)
from bacpypes3.basetypes import PriorityArray, PropertyIdentifier
from bacpypes3.constructeddata import TagList
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import Null, ObjectIdentifier, Real

from ..engine.points import OverridePoint
from .stack import RawReplyRequest
from .values import check_address, object_id

PRIORITY_ARRAY: Final = "priority-array"
PRESENT_VALUE: Final = "present-value"
_PRIORITY_ARRAY_ID: Final = PropertyIdentifier(PRIORITY_ARRAY)
_PRESENT_VALUE_ID: Final = PropertyIdentifier(PRESENT_VALUE)
_OPEN_VALUE: Final = b"\x3e"  # context tag 3 (the property value), opening
_CLOSE_VALUE: Final = b"\x3f"
_PRIORITY_TAG: Final = 0x49  # context tag 4, one byte: the priority
_NULL_TAG: Final = b"\x00"
_REAL_TAG: Final = b"\x44"  # application tag 4 (real), four bytes


class _NullSlot:
    """A NULL priority slot, in the form :func:`decode_priority_array` reads (``.null`` set)."""

    __slots__ = ()
    null = ()


_NULL_SLOT: Final = _NullSlot()

# Application tag number -> decoder of its content octets (null and boolean have none).
_PRIMITIVES: Final[dict[int, Callable[[bytes], Any]]] = {
    2: lambda data: int.from_bytes(data, "big"),  # unsigned
    3: lambda data: int.from_bytes(data, "big", signed=True),  # integer
    4: lambda data: struct.unpack(">f", data)[0],  # real
    5: lambda data: struct.unpack(">d", data)[0],  # double
    9: lambda data: int.from_bytes(data, "big"),  # enumerated
}


class Target:
    """A point's destination and request templates, built once by bacpypes3.

    Parsing an address costs tens of microseconds and encoding a request a hundred; a shed asks
    for both twice per point. bacpypes3 never changes an Address or a template it is given.
    """

    __slots__ = ("_read", "_write", "_write_prefix", "address", "object_id")

    def __init__(self, point: OverridePoint) -> None:
        """Check and parse the point's address (ValueError for one bacpypes3 would resolve)."""
        check_address(point.address)
        self.address = Address(point.address)
        self.object_id = ObjectIdentifier(object_id(point))
        self._read = ReadPropertyRequest(
            objectIdentifier=self.object_id,
            propertyIdentifier=_PRIORITY_ARRAY_ID,
            destination=self.address,
        ).encode()
        write = WritePropertyRequest(
            objectIdentifier=self.object_id,
            propertyIdentifier=_PRESENT_VALUE_ID,
            propertyValue=Null(()),
            destination=self.address,
        )
        write.priority = point.priority
        self._write = write.encode()
        # ...objectIdentifier, propertyIdentifier | 3E 00 3F | 49 priority
        tail = _OPEN_VALUE + _NULL_TAG + _CLOSE_VALUE + bytes((_PRIORITY_TAG, point.priority))
        data = bytes(self._write.pduData)
        if not data.endswith(tail):
            raise ValueError(f"unexpected WriteProperty encoding: {data.hex()}")
        self._write_prefix = data[: -len(tail)]

    def write_request(self, value: Any, priority: int) -> RawReplyRequest:
        """The WriteProperty of ``value`` (a primitive of the property's type, or Null)."""
        if not 1 <= priority <= 16:
            raise ValueError(f"priority {priority} is outside 1-16")
        data = b"".join(
            (
                self._write_prefix,
                _OPEN_VALUE,
                encode_value(value),
                _CLOSE_VALUE,
                bytes((_PRIORITY_TAG, priority)),
            )
        )
        return self._request(self._write, data)

    def read_request(self) -> RawReplyRequest:
        """The ReadProperty of the whole priority array."""
        return self._request(self._read, self._read.pduData)

    @staticmethod
    def _request(template: Any, data: bytes | bytearray) -> RawReplyRequest:
        request = RawReplyRequest()
        request.update(template)  # addresses and the request's APCI fields
        request.put_data(data)
        return request


def encode_value(value: Any) -> bytes:
    """The application-tagged encoding of one primitive (Real and Null written out directly)."""
    if isinstance(value, Null):
        return _NULL_TAG
    if isinstance(value, Real):
        return _REAL_TAG + struct.pack(">f", value)
    return bytes(TagList([value.encode()]).encode().pduData)


def _tags(data: bytes) -> Iterator[tuple[int, bool, int, bytes]]:
    """(tag number, is context, length/value/type field, content) of each tag in ``data``.

    Opening and closing tags have field 6 and 7 and no content; an application boolean keeps
    its value in the field. Raises ValueError when the data ends inside a tag.
    """
    at, end = 0, len(data)
    while at < end:
        first = data[at]
        at += 1
        number, context, lvt = first >> 4, bool(first & 0x08), first & 0x07
        if number == 15:  # extended tag number
            number = data[at]
            at += 1
        if (context and lvt in (6, 7)) or (not context and number == 1):
            yield number, context, lvt, b""
            continue
        length = lvt
        if lvt == 5:  # extended length
            length = data[at]
            at += 1
            if length in (254, 255):
                size = 2 if length == 254 else 4
                length = int.from_bytes(data[at : at + size], "big")
                at += size
        content = data[at : at + length]
        if len(content) != length:
            raise ValueError("the answer ends inside a tag")
        at += length
        yield number, context, lvt, content


def _slot(number: int, context: bool, lvt: int, content: bytes) -> Any:
    """One priority slot from its tag, or None for anything but an application primitive."""
    if context:
        return None  # a constructed value or a date-time: left to bacpypes3
    if number == 0:
        return _NULL_SLOT
    if number == 1:
        return int(lvt)
    decode = _PRIMITIVES.get(number)
    try:
        return None if decode is None else decode(content)
    except struct.error:  # a real or double of the wrong length
        return None


def parse_priority_array(data: bytes) -> list[Any] | None:
    """The slots of a ReadProperty ACK of a priority array, or None when bacpypes3 must decode.

    ValueError for an answer that is not a ReadProperty ACK with a value.
    """
    slots: list[Any] = []
    depth = 0
    seen_value = False
    for number, context, lvt, content in _tags(data):
        if depth == 0:
            if context and number == 3 and lvt == 6:
                depth, seen_value = 1, True
            elif seen_value:
                break
            continue
        if context and lvt == 6:
            return None  # a constructed slot (or an array of them)
        if context and lvt == 7:
            if number != 3:
                return None
            depth = 0
            continue
        slot = _slot(number, context, lvt, content)
        if slot is None:
            return None
        slots.append(slot)
    if not seen_value or depth:
        raise ValueError("the answer holds no complete property value")
    return slots


async def write_present_value(app: Any, target: Target, value: Any, priority: int) -> Any:
    """Write ``value`` (already of the property's type, or Null) at ``priority``.

    What ``app.write_property`` sends, without its per-call lookups: None once acknowledged,
    anything else (an error handed back, an unexpected answer) as it came.
    """
    response = await app.request(target.write_request(value, priority))
    return None if isinstance(response, SimpleAckPDU) else response


async def read_priority_array(app: Any, target: Target) -> Any:
    """Read the point's priority array as ``app.read_property`` would, decoding it cheaply.

    Returns a list of slots :func:`decode_priority_array` reads; anything but an ACK is
    returned as it came (an error or None) for the caller to report.
    """
    response = await app.request(target.read_request())
    if not isinstance(response, ComplexAckPDU):
        return response if isinstance(response, ErrorRejectAbortNack) else None
    if not isinstance(response, ReadPropertyACK):  # undecoded, as the stack hands it back
        slots = parse_priority_array(bytes(response.pduData))
        if slots is not None:
            return slots
        # A constructed or date-time slot: let bacpypes3 decode it all.
        response = APCISequence.decode(response)
    value = getattr(response, "propertyValue", None)
    return None if value is None else value.cast_out(PriorityArray)


async def read_present_value(app: Any, target: Target) -> Any:
    """Read the present value (bacpypes3 decodes it by the object's type)."""
    return await app.read_property(target.address, target.object_id, _PRESENT_VALUE_ID)
