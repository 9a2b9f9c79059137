"""What the building holds for each override point, and the interface to the BACnet side.

The engine never talks BACnet itself: it asks an :class:`OverrideWriter` to write or release one
point and gets back what the controller's priority array *verifiably* holds afterwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from .points import OverridePoint, PointValue


class FailureKind(StrEnum):
    """Why a write, release or read did not verify. Values are stable (used in translations)."""

    OFFLINE = "offline"  # no answer within the timeout
    ACCESS_DENIED = "access_denied"  # the controller refused the write
    UNKNOWN_OBJECT = "unknown_object"  # no such object on that controller
    NOT_VERIFIED = "not_verified"  # the write was accepted but the slot does not hold it
    ERROR = "error"  # any other BACnet error, reject or abort
    OUT_OF_RANGE = "out_of_range"  # an offset target beyond the point's min/max: not written


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """The result of one operation on one point, as read back from the controller."""

    ok: bool
    # What our priority slot holds after the operation (None: NULL, or unknown when not ok).
    slot_value: PointValue | None = None
    # The highest-priority slot held by someone else above ours, if any ("owned by priority N").
    owner_priority: int | None = None
    failure: FailureKind | None = None
    detail: str | None = None
    # The object's present value, when the operation read it (see read_present_value).
    present_value: PointValue | None = None


class OverrideWriter(Protocol):
    """Writes, releases and reads one point; implemented by the BACnet adapter."""

    async def write(self, point: OverridePoint, value: PointValue) -> Outcome:
        """Write ``value`` at the point's priority, then read that slot back."""

    async def release(self, point: OverridePoint) -> Outcome:
        """Write NULL at the point's priority, then read that slot back."""

    async def read(self, point: OverridePoint) -> Outcome:
        """Read the point's slot (and who owns the point) without writing."""

    async def read_present_value(self, point: OverridePoint) -> Outcome:
        """Like :meth:`read`, and the object's present value too (the base of offsets)."""


class PointStatus(StrEnum):
    """Where a point stands. Stable values (used in translations and attributes)."""

    RELEASED = "released"  # our slot is verified NULL
    HELD = "held"  # our value is verified in our slot and wins
    OWNED = "owned"  # our value is in our slot, but a higher-priority slot wins
    FAILED = "failed"  # the last operation did not verify; the slot may hold our value
    PENDING = "pending"  # a write was sent (or is about to be) and not yet verified


@dataclass(frozen=True, kw_only=True)
class PointState:
    """The engine's record of one point. Immutable: every change makes a new one."""

    point: OverridePoint
    status: PointStatus = PointStatus.RELEASED
    written_value: PointValue | None = None  # the value we last asked for (None after a release)
    event_id: str | None = None  # the event (or manual shed) it was written for
    written_at: datetime | None = None
    verified: bool = True
    owner_priority: int | None = None
    failure: FailureKind | None = None
    detail: str | None = None
    operator_released: bool = False  # released by a person; stays released for this event
    # Offset points: the value in force when the shed started, which the level's delta is
    # added to. Recorded before the first write and kept until a verified release.
    base_value: float | None = None

    @property
    def holds_override(self) -> bool:
        """True while our slot may hold a value: anything not verified released."""
        return self.status is not PointStatus.RELEASED

    def before_write(
        self, value: PointValue, event_id: str | None, base_value: float | None = None
    ) -> PointState:
        """The state recorded *before* a write is sent: from here on the slot may hold it.

        If the write is never confirmed (cancelled, crashed), the point stays tracked and the
        next release still sends NULL to it. ``base_value`` is what an offset was added to.
        """
        return replace(
            self,
            status=PointStatus.PENDING,
            written_value=value,
            event_id=event_id,
            verified=False,
            base_value=base_value,
        )

    def not_sent(self, outcome: Outcome) -> PointState:
        """The state once a write was refused before sending: the slot is as it was."""
        status = PointStatus.FAILED if self.holds_override else PointStatus.RELEASED
        return replace(
            self, status=status, verified=False, failure=outcome.failure, detail=outcome.detail
        )

    def after_write(
        self, value: PointValue, outcome: Outcome, event_id: str | None, at: datetime
    ) -> PointState:
        """The state once a write of ``value`` returned ``outcome``."""
        if outcome.ok:
            status = PointStatus.OWNED if outcome.owner_priority is not None else PointStatus.HELD
        else:
            status = PointStatus.FAILED
        return replace(
            self,
            status=status,
            written_value=value,
            event_id=event_id,
            written_at=at,
            verified=outcome.ok,
            owner_priority=outcome.owner_priority,
            failure=outcome.failure,
            detail=outcome.detail,
        )

    def after_release(self, outcome: Outcome, at: datetime) -> PointState:
        """The state once a release returned ``outcome``; a failed release keeps the value."""
        if not outcome.ok:
            return replace(
                self,
                status=PointStatus.FAILED,
                verified=False,
                failure=outcome.failure,
                detail=outcome.detail,
            )
        return replace(
            self,
            status=PointStatus.RELEASED,
            written_value=None,
            base_value=None,
            written_at=at,
            verified=True,
            owner_priority=outcome.owner_priority,
            failure=None,
            detail=None,
        )


def value_in_force(state: PointState, reading: Outcome) -> float | Outcome:
    """The base of an offset point from a :meth:`OverrideWriter.read_present_value` reading.

    Returns the present value, or a failed Outcome saying why it cannot be the base. When our
    slot may hold an earlier value of ours and nothing above it wins, the present value is that
    value: adding the offset to it would compound, so the write is refused instead.
    """
    if not reading.ok:
        return Outcome(
            ok=False,
            failure=reading.failure or FailureKind.ERROR,
            detail=f"the value in force could not be read: {reading.detail}",
        )
    if state.holds_override and reading.slot_value is not None and reading.owner_priority is None:
        return Outcome(
            ok=False,
            failure=FailureKind.ERROR,
            detail=(
                f"priority {state.point.priority} holds {reading.slot_value!r}, written before "
                "the value in force was recorded; release the point, then shed it again"
            ),
        )
    present = reading.present_value
    if (
        isinstance(present, bool)
        or not isinstance(present, int | float)
        or not math.isfinite(present)
    ):
        return Outcome(
            ok=False,
            failure=FailureKind.ERROR,
            detail=f"the present value {present!r} is not a number to offset",
        )
    return float(present)
