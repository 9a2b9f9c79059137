"""The override ledger: stored form, tolerant loading and the reconcile decision."""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from typing import Any

import pytest

from custom_components.loadshed_ven.engine import ledger_records as ledger
from custom_components.loadshed_ven.engine.ledger_records import Action
from custom_components.loadshed_ven.engine.overrides import (
    FailureKind,
    Outcome,
    PointState,
    PointStatus,
)
from custom_components.loadshed_ven.engine.points import OverridePoint, PointValue

from .ledger_helpers import ANALOG, BINARY, MULTI, NOW


def _held(point: OverridePoint, value: PointValue, **changes: Any) -> PointState:
    state = PointState(
        point=point,
        status=PointStatus.HELD,
        written_value=value,
        event_id="ev-1",
        written_at=NOW,
        verified=True,
    )
    return replace(state, **changes)


def _stored(*states: PointState) -> Any:
    """What the Store gives back: the dump after a JSON round trip."""
    return json.loads(json.dumps(ledger.dump(states)))


# ---- stored form ----------------------------------------------------------------------


def test_round_trip_keeps_every_field() -> None:
    states = [
        _held(ANALOG, 78.0, owner_priority=8, status=PointStatus.OWNED),
        _held(BINARY, "active", status=PointStatus.PENDING, verified=False, written_at=None),
        _held(
            MULTI,
            2,
            status=PointStatus.FAILED,
            verified=False,
            failure=FailureKind.OFFLINE,
            operator_released=True,
            event_id=None,
        ),
    ]
    assert ledger.load(_stored(*states)) == [replace(s, detail=None) for s in states]


def test_dump_leaves_out_released_points() -> None:
    released = PointState(point=MULTI)
    data = ledger.dump([_held(ANALOG, 80.0), released])
    assert [r["key"] for r in data["records"]] == [ANALOG.key]
    record = data["records"][0]
    assert record["point"]["priority"] == 10
    assert record["written_at"] == NOW.isoformat()


@pytest.mark.parametrize("data", [None, [], "x", {"records": "x"}, {"other": []}, 5])
def test_load_without_a_record_list_is_empty(data: object) -> None:
    assert ledger.load(data) == []


def test_load_skips_unusable_records_and_keeps_the_rest() -> None:
    good = ledger.state_to_dict(_held(ANALOG, 78.0))
    no_point = {**good, "point": None}
    bad_address = {**good, "point": {**good["point"], "address": "plant-room"}}
    bad_priority = {**good, "point": {**good["point"], "priority": 3}}
    bool_instance = {**good, "point": {**good["point"], "instance": True}}
    two_values = {**good, "point": {**good["point"], "values": [1, 2]}}
    no_value = {**good, "written_value": None}
    bool_value = {**good, "written_value": True}
    text_value = {**good, "written_value": "cold"}
    missing_values = {**good, "point": {"address": "127.0.0.2"}}
    data = {
        "records": [
            "junk",
            no_point,
            bad_address,
            bad_priority,
            bool_instance,
            two_values,
            no_value,
            bool_value,
            text_value,
            missing_values,
            good,
        ]
    }
    assert ledger.load(data) == [_held(ANALOG, 78.0)]


def test_load_defaults_descriptive_fields() -> None:
    record = ledger.state_to_dict(_held(ANALOG, 78.0))
    record.update(
        status="weird",
        written_at="yesterday",
        verified="yes",
        owner_priority=99,
        failure="gremlins",
        operator_released=1,
        event_id=42,
    )
    (state,) = ledger.load({"records": [record]})
    assert state.status is PointStatus.FAILED  # unknown: still tracked
    assert state.written_at is None
    assert state.verified is False
    assert state.owner_priority is None
    assert state.failure is FailureKind.ERROR
    assert state.operator_released is False
    assert state.event_id is None


def test_load_naive_timestamp_and_missing_fields() -> None:
    record = {
        "point": ledger.point_to_dict(ANALOG),
        "written_value": "78",
        "written_at": "2026-07-01T18:00:00",
    }
    (state,) = ledger.load({"records": [record]})
    assert state.written_value == 78.0
    assert state.written_at is None
    assert state.status is PointStatus.FAILED


def test_load_drops_released_records() -> None:
    record = ledger.state_to_dict(_held(ANALOG, 78.0))
    record["status"] = "released"
    assert ledger.load({"records": [record]}) == []


def test_load_keeps_one_record_per_slot() -> None:
    first = _held(ANALOG, 78.0)
    later = _held(ANALOG, 82.0)
    other_priority = _held(replace_priority(ANALOG, 9), 80.0)
    loaded = ledger.load(_stored(first, later, other_priority))
    assert [(s.point.priority, s.written_value) for s in loaded] == [(10, 82.0), (9, 80.0)]


def replace_priority(point: OverridePoint, priority: int) -> OverridePoint:
    return OverridePoint(
        address=point.address,
        object_type=point.object_type,
        instance=point.instance,
        priority=priority,
        values=point.values,
        name=point.name,
    )


# ---- the reconcile decision -------------------------------------------------------------


def _read(value: PointValue | None, owner: int | None = None) -> Outcome:
    return Outcome(ok=True, slot_value=value, owner_priority=owner)


OFFLINE = Outcome(ok=False, failure=FailureKind.OFFLINE, detail="no answer")


@pytest.mark.parametrize(
    ("reading", "configured", "active", "action"),
    [
        (OFFLINE, True, True, Action.RETRY),
        (OFFLINE, False, False, Action.RETRY),
        (_read(None), True, True, Action.FORGET),
        (_read(None), False, False, Action.FORGET),
        (_read(75.0), True, True, Action.LEAVE),
        (_read(75.0), False, False, Action.LEAVE),
        (_read(78.0), True, True, Action.KEEP),
        (_read(78.0), True, False, Action.RELEASE),
        (_read(78.0), False, True, Action.RELEASE),  # never kept without a configuration
        (_read(78.0), False, False, Action.RELEASE),
    ],
)
def test_decide(reading: Outcome, configured: bool, active: bool, action: Action) -> None:
    decision = ledger.decide(
        _held(ANALOG, 78.0),
        reading,
        configured=ANALOG if configured else None,
        event_active=active,
    )
    assert decision.action is action
    assert decision.reason


def test_decide_compares_analog_at_real_precision() -> None:
    real = struct.unpack("<f", struct.pack("<f", 80.1))[0]
    assert real != 80.1
    decision = ledger.decide(_held(ANALOG, 80.1), _read(real), configured=None, event_active=False)
    assert decision.action is Action.RELEASE


@pytest.mark.parametrize(
    ("point", "ours", "held", "same"),
    [
        (ANALOG, 78.0, 78, True),
        (ANALOG, 78.0, "78", False),
        (ANALOG, 78.0, float("nan"), False),
        (ANALOG, 1e39, 1e39, True),  # beyond Real range: compared as is
        (BINARY, "active", "active", True),
        (BINARY, "active", "inactive", False),
        (MULTI, 2, 2, True),
        (MULTI, 2, 3, False),
        (MULTI, 2, True, False),
    ],
)
def test_same_value(point: OverridePoint, ours: PointValue, held: Any, same: bool) -> None:
    assert ledger.same_value(point, ours, held) is same


def test_decide_adopts_the_configured_point() -> None:
    renamed = OverridePoint(
        address=ANALOG.address,
        object_type=ANALOG.object_type,
        instance=ANALOG.instance,
        values=(76.0, 77.0, 79.0),
        name="Zone",
    )
    decision = ledger.decide(
        _held(ANALOG, 78.0), _read(78.0), configured=renamed, event_active=True
    )
    assert decision.action is Action.KEEP
    assert decision.state.point is renamed
    assert decision.state.written_value == 78.0  # what the slot holds, not the new value


def test_operator_released_record_is_not_kept() -> None:
    state = _held(ANALOG, 78.0, operator_released=True)
    decision = ledger.decide(state, _read(78.0), configured=ANALOG, event_active=True)
    assert decision.action is Action.RELEASE


def test_configured_match_needs_the_same_priority() -> None:
    configured = {ANALOG.key: ANALOG}
    assert ledger.configured_match(_held(ANALOG, 78.0), configured) is ANALOG
    moved = _held(replace_priority(ANALOG, 9), 78.0)
    assert ledger.configured_match(moved, configured) is None
    assert ledger.configured_match(_held(MULTI, 2), configured) is None


@pytest.mark.parametrize(("owner", "status"), [(None, PointStatus.HELD), (8, PointStatus.OWNED)])
def test_adopted_is_verified(owner: int | None, status: PointStatus) -> None:
    state = _held(ANALOG, 78.0, status=PointStatus.FAILED, verified=False, written_at=None)
    adopted = ledger.adopted(state, _read(78.0, owner), NOW)
    assert (adopted.status, adopted.verified, adopted.owner_priority) == (status, True, owner)
    assert adopted.written_at == NOW
