"""The records of the override ledger, and the rules for what to do with each.

The ledger (every point that may hold our value, kept across restarts) is kept on disk and acted
on by ``override_ledger.py`` in the integration; this module is its HA-free half. A record is a
:class:`PointState` that holds an override (anything not verified released), stored with its
full point definition so that a point removed from the configuration can still be found and
released. This module only converts records to and from plain JSON-able dicts and decides, from
a fresh read of the slot, what to do with a record left by a previous run; storing and acting
belong to the caller.

Loading is tolerant: a record that cannot be understood is skipped with a warning, a field that
only describes the record (timestamp, owner, flags) falls back to a safe default. Nothing here
raises on bad data.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from .overrides import FailureKind, Outcome, PointState, PointStatus
from .points import (
    OverridePoint,
    PointError,
    PointValue,
    at_real_precision,
    coerce_value,
    point_from_dict,
    point_to_dict,
)

_LOGGER = logging.getLogger(__name__)

RECORDS: Final = "records"


def state_to_dict(state: PointState) -> dict[str, Any]:
    """One ledger record as a plain dict; ``base_value`` only for an offset point's base."""
    record = {
        "key": state.point.key,
        "point": point_to_dict(state.point),
        "written_value": state.written_value,
        "event_id": state.event_id,
        "status": str(state.status),
        "written_at": state.written_at.isoformat() if state.written_at else None,
        "verified": state.verified,
        "owner_priority": state.owner_priority,
        "failure": None if state.failure is None else str(state.failure),
        "operator_released": state.operator_released,
    }
    if state.base_value is not None:
        record["base_value"] = state.base_value
    return record


def dump(states: Iterable[PointState]) -> dict[str, Any]:
    """The ledger's stored form: every state that may hold our value."""
    return {RECORDS: [state_to_dict(s) for s in states if s.holds_override]}


def load(data: object) -> list[PointState]:
    """The records of a stored ledger; bad or unknown data is skipped with a warning."""
    if data is None:
        return []
    raw = data.get(RECORDS) if isinstance(data, Mapping) else None
    if not isinstance(raw, list):
        _LOGGER.warning("Override ledger has no record list; ignoring %r", type(data).__name__)
        return []
    records: dict[str, PointState] = {}
    for index, item in enumerate(raw):
        state = state_from_dict(item, index)
        if state is not None:
            records[record_id(state)] = state  # a later record of the same slot wins
    return list(records.values())


def record_id(state: PointState) -> str:
    """One record per slot: the point's key and the priority written at."""
    return f"{state.point.key}@{state.point.priority}"


def state_from_dict(item: object, index: int = 0) -> PointState | None:
    """One record back into a state, or None (with a warning) when it cannot be used."""
    if not isinstance(item, Mapping):
        _LOGGER.warning("Override ledger record %d is not a mapping; skipped", index)
        return None
    try:
        point = point_from_dict(item.get("point"))
        value = _value(point, item.get("written_value"))
    except (PointError, TypeError, ValueError, KeyError, IndexError) as err:
        _LOGGER.warning("Override ledger record %d is unusable (%s); skipped", index, err)
        return None
    try:
        status = PointStatus(str(item.get("status")))
    except ValueError:
        status = PointStatus.FAILED  # unknown: keep tracking it, never drop a held value
    if status is PointStatus.RELEASED:
        return None  # verified released: nothing to track
    try:
        failure = FailureKind(item["failure"]) if item.get("failure") is not None else None
    except ValueError:
        failure = FailureKind.ERROR
    event_id = item.get("event_id")
    owner = item.get("owner_priority")
    base = item.get("base_value")
    return PointState(
        point=point,
        status=status,
        written_value=value,
        event_id=event_id if isinstance(event_id, str) else None,
        written_at=_when(item.get("written_at")),
        verified=item.get("verified") is True,
        owner_priority=owner
        if isinstance(owner, int) and _is_int(owner) and 1 <= owner <= 16
        else None,
        failure=failure,
        operator_released=item.get("operator_released") is True,
        # Unreadable: None, and an offset write then refuses rather than compound (see shed).
        base_value=_finite(base),
    )


def _value(point: OverridePoint, raw: object) -> PointValue:
    if raw is None or isinstance(raw, bool):
        raise ValueError("no written value")
    return coerce_value(point.object_type, raw)


def _when(raw: object) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def same_value(point: OverridePoint, ours: PointValue, held: PointValue | None) -> bool:
    """True when the slot holds ``ours``; analog compared at BACnet Real (float32) precision."""
    if held is None or isinstance(held, bool):
        return False
    if point.kind == "analog":
        if isinstance(ours, str) or isinstance(held, str):
            return False
        a, b = float(ours), float(held)
        if not (math.isfinite(a) and math.isfinite(b)):
            return False
        return at_real_precision(a) == at_real_precision(b)
    return held == ours


class Action(StrEnum):
    """What to do with a ledger record after reading its slot."""

    RELEASE = "release"  # our value is there and nothing needs it: write NULL
    KEEP = "keep"  # our value is there and its event is still active: adopt it
    FORGET = "forget"  # the slot is NULL: nothing of ours is left
    LEAVE = "leave"  # the slot holds a value we did not write: not ours to touch
    RETRY = "retry"  # the slot could not be read: keep the record and try again later


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The action for one record, the record itself (point possibly updated) and why."""

    action: Action
    state: PointState
    reason: str


def decide(
    state: PointState,
    reading: Outcome,
    *,
    configured: OverridePoint | None,
    event_active: bool,
) -> Decision:
    """Decide what to do with ``state`` given a fresh read of its slot.

    ``configured`` is the point as configured now, or None when the configuration no longer
    has it (at the recorded priority). An unconfigured point is never kept: only released,
    and only when our value is there. Only NULL is ever written by a reconcile.
    """
    if configured is not None:
        # An offset point keeps the base it was shed from; for any other it means nothing.
        base = state.base_value if configured.offset else None
        state = replace(state, point=configured, base_value=base)
    if not reading.ok:
        why = reading.failure or FailureKind.ERROR
        return Decision(action=Action.RETRY, state=state, reason=f"slot unreadable ({why})")
    if reading.slot_value is None:
        return Decision(action=Action.FORGET, state=state, reason="slot already NULL")
    if state.written_value is None or not same_value(
        state.point, state.written_value, reading.slot_value
    ):
        return Decision(
            action=Action.LEAVE,
            state=state,
            reason=f"slot holds {reading.slot_value!r}, not our {state.written_value!r}",
        )
    if configured is not None and event_active and not state.operator_released:
        return Decision(action=Action.KEEP, state=state, reason="event still active")
    if configured is None:
        return Decision(action=Action.RELEASE, state=state, reason="point no longer configured")
    return Decision(action=Action.RELEASE, state=state, reason="event over or unknown")


def adopted(state: PointState, reading: Outcome, at: datetime) -> PointState:
    """The state to restore for a kept record: verified, as the slot was just read."""
    status = PointStatus.OWNED if reading.owner_priority is not None else PointStatus.HELD
    return replace(
        state,
        status=status,
        verified=True,
        written_at=state.written_at or at,
        owner_priority=reading.owner_priority,
        failure=None,
        detail=None,
    )


def configured_match(
    state: PointState, configured: Mapping[str, OverridePoint]
) -> OverridePoint | None:
    """The configured point for a record: same object and same priority, else None."""
    point = configured.get(state.point.key)
    if point is None or point.priority != state.point.priority:
        return None
    return point


def retry_delay(attempt: int, *, initial: float, cap: float) -> float:
    """Capped exponential backoff: ``initial`` doubling per attempt (0-based), at most ``cap``."""
    if attempt <= 0:
        return min(initial, cap)
    if attempt >= 62:
        return cap
    return min(cap, initial * float(2**attempt))
