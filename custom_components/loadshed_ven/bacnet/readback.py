"""Reading a point's priority array back, decoded cheaply where the slots are primitives.

Every write and release ends with this read; decoding it cheaply keeps a large shed fast.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Final

from bacpypes3.apdu import ErrorRejectAbortNack, ReadPropertyACK, ReadPropertyRequest
from bacpypes3.basetypes import PriorityArray, PropertyIdentifier
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier, TagClass, TagNumber

from ..engine.points import OverridePoint
from .values import object_id

PRIORITY_ARRAY: Final = "priority-array"


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


async def read_priority_array(app: Any, address: str, point: OverridePoint) -> Any:
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
