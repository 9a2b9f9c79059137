"""What the VEN tells the VTN about itself: the resource's status, whatever the OpenADR version.

OpenADR 2.0b carries it in a ``TELEMETRY_STATUS`` report (``oadrPayloadResourceStatus``:
online, manual override, load control state); OpenADR 3.x in ``OPERATING_STATE`` and
``SIMPLE_LEVEL`` report payloads. Both are built from one :class:`VenStatus`, derived from the
points' states by :func:`ven_status`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .overrides import PointState, PointStatus


@dataclass(frozen=True, slots=True)
class VenStatus:
    """The building as one OpenADR resource.

    ``online``: at least one override point answers (or there are none to answer): the
    building can follow a signal. ``manual_override``: a person overrode the VTN's signal (an
    operator released points, or this VEN opted out of the event in force). ``level``: the
    SIMPLE level the building follows now (0 when none). ``curtailed``: some point holds a
    shed value now.
    """

    online: bool
    manual_override: bool
    level: int
    curtailed: bool

    @property
    def operating_state(self) -> str:
        """The OpenADR 3.x ``OPERATING_STATE`` value (CTA-2045 names) for this status."""
        if not self.online:
            return "SGD_ERROR_CONDITION"
        if self.manual_override:
            return "RUNNING_OPTED_OUT"
        return "RUNNING_CURTAILED" if self.curtailed else "RUNNING_NORMAL"


def ven_status(states: Iterable[PointState], *, level: int, opted_out: bool) -> VenStatus:
    """The status of the building whose points are in ``states``.

    ``level`` is the level applied last; ``opted_out`` whether this VEN opted out of the event
    in force. A point counts as answering unless its last operation failed.
    """
    answered = curtailed = released_by_operator = False
    count = 0
    for state in states:
        count += 1
        if state.status is not PointStatus.FAILED:
            answered = True
        if state.status in (PointStatus.HELD, PointStatus.OWNED):
            curtailed = True
        released_by_operator |= state.operator_released
    online = answered or count == 0
    return VenStatus(
        online=online,
        manual_override=opted_out or released_by_operator,
        level=max(0, int(level)),
        curtailed=curtailed,
    )
