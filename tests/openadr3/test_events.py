"""The pure translation of one 3.x event into the engine's event dict."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from custom_components.loadshed_ven.engine.event_parse import MAX_INTERVALS, parse_event
from custom_components.loadshed_ven.engine.targets import EventTargets
from custom_components.loadshed_ven.openadr3.events import (
    REFUSED_KEY,
    UINT32_MAX,
    refusal,
    to_engine_event,
)
from custom_components.loadshed_ven.openadr3.http import decode_json

VEN = "ven-1"
MODIFIED = "2026-12-04T09:00:00Z"
MODIFIED_S = int(datetime(2026, 12, 4, 9, tzinfo=UTC).timestamp())
START = datetime(2026, 12, 4, 10, tzinfo=UTC)


def event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "ev-1",
        "createdDateTime": "2026-12-04T08:00:00Z",
        "modificationDateTime": MODIFIED,
        "objectType": "EVENT",
        "programID": "prog-1",
        "eventName": "shed",
        "priority": None,
        "targets": None,
        "intervalPeriod": {"start": "2026-12-04T10:00:00Z", "duration": "PT1H"},
        "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [2]}]}],
    }
    base.update(overrides)
    return base


def plan_of(raw: object, previous: int | None = None) -> Any:
    result = parse_event(to_engine_event(raw, VEN, previous), random_offset=0.0)
    assert result.plan is not None, result.error
    return result.plan


def refused(raw: object) -> str:
    reason = refusal(to_engine_event(raw, VEN, None))
    assert reason is not None
    return reason


def test_simple_event_shape_and_plan() -> None:
    out = to_engine_event(event(), VEN, None)
    assert out["event_descriptor"] == {
        "event_id": "ev-1",
        "modification_number": MODIFIED_S,
        "event_status": "none",
        "priority": 0,
        "test_event": False,
    }
    assert out["active_period"] == {
        "dtstart": START,
        "duration": timedelta(hours=1),
        "tolerance": {"tolerate": {"startafter": None}},
    }
    assert out["event_signals"] == [
        {
            "signal_name": "SIMPLE",
            "signal_type": "level",
            "intervals": [{"dtstart": START, "duration": timedelta(hours=1), "signal_payload": 2}],
        }
    ]
    assert out["targets"] == []
    plan = plan_of(event())
    assert (plan.start, plan.end, plan.segments[0].level, plan.targets) == (
        START,
        START + timedelta(hours=1),
        2,
        None,
    )


def test_intervals_follow_each_other_and_own_periods() -> None:
    raw = event(
        intervalPeriod={
            "start": "2026-12-04T10:00:00Z",
            "duration": "PT30M",
            "randomizeStart": "PT5M",
        },
        intervals=[
            {"id": 0, "payloads": [{"type": "SIMPLE", "values": [1]}]},
            {"id": 1, "payloads": [{"type": "SIMPLE", "values": [2]}]},
            {
                "id": 2,
                "intervalPeriod": {"start": "2026-12-04T12:00:00+01:00", "duration": "PT15M"},
                "payloads": [{"type": "SIMPLE", "values": [3.0]}],
            },
            {"id": 3, "payloads": [{"type": "SIMPLE", "values": [0]}]},
        ],
    )
    out = to_engine_event(raw, VEN, None)
    starts = [i["dtstart"] for i in out["event_signals"][0]["intervals"]]
    assert starts == [
        START,
        START + timedelta(minutes=30),
        START + timedelta(hours=1),
        START + timedelta(hours=1, minutes=15),
    ]
    assert out["active_period"]["duration"] == timedelta(hours=1, minutes=45)
    assert out["active_period"]["tolerance"]["tolerate"]["startafter"] == timedelta(minutes=5)
    plan = plan_of(raw)
    assert [s.level for s in plan.segments] == [1, 2, 3, 0]


def test_open_ended_last_interval() -> None:
    raw = event(intervalPeriod={"start": "2026-12-04T10:00:00Z", "duration": "P9999Y"})
    out = to_engine_event(raw, VEN, None)
    assert out["active_period"]["duration"] == timedelta(0)
    assert out["event_signals"][0]["intervals"][0]["duration"] == timedelta(0)
    assert plan_of(raw).end is None
    two = event(
        intervalPeriod={"start": "2026-12-04T10:00:00Z", "duration": "P9999Y"},
        intervals=[event()["intervals"][0]] * 2,
    )
    assert "not the last" in refused(two)


def test_modification_number_rules() -> None:
    assert to_engine_event(event(), VEN, None)["event_descriptor"]["modification_number"] == (
        MODIFIED_S
    )
    # Content changed, time did not (or went back): previous + 1.
    bumped = to_engine_event(event(), VEN, MODIFIED_S)
    assert bumped["event_descriptor"]["modification_number"] == MODIFIED_S + 1
    later = to_engine_event(event(modificationDateTime="2026-12-04T09:00:07.9Z"), VEN, MODIFIED_S)
    assert later["event_descriptor"]["modification_number"] == MODIFIED_S + 7
    early = event(modificationDateTime="1960-01-01T00:00:00Z")
    assert to_engine_event(early, VEN, None)["event_descriptor"]["modification_number"] == 0
    late = event(modificationDateTime="2200-01-01T00:00:00Z")
    assert to_engine_event(late, VEN, None)["event_descriptor"]["modification_number"] == (
        UINT32_MAX
    )
    assert to_engine_event(late, VEN, UINT32_MAX)["event_descriptor"]["modification_number"] == (
        UINT32_MAX
    )
    garbage = event(modificationDateTime=[1], createdDateTime="1970-01-01T00:01:00Z")
    assert to_engine_event(garbage, VEN, None)["event_descriptor"]["modification_number"] == 60


def test_priority_maps_to_2_0b_order() -> None:
    assert plan_of(event(priority=0)).priority == 1
    assert plan_of(event(priority=4)).priority == 5
    assert plan_of(event(priority=None)).priority == 0
    assert "priority" in refused(event(priority=-1))
    assert "priority" in refused(event(priority="1"))
    assert to_engine_event(event(priority=2**40), VEN, None)["event_descriptor"]["priority"] == (
        UINT32_MAX
    )


def test_zero_period_is_a_cancel() -> None:
    raw = event(intervalPeriod={"start": "0001-01-01T00:00:00Z", "duration": "PT0S"})
    out = to_engine_event(raw, VEN, None)
    assert out["event_descriptor"]["event_status"] == "cancelled"
    plan = plan_of(raw)
    assert plan.cancelled
    # Even a cancel with absurd intervals is recognised.
    assert plan_of({**raw, "intervals": "junk"}).cancelled


def test_targets_3_1_strings() -> None:
    raw = event(targets=["wing-a", "ven-9"])
    out = to_engine_event(raw, VEN, None)
    assert {"resource_id": "wing-a"} in out["targets"]
    assert {"group_id": "wing-a"} in out["targets"]
    assert {"ven_id": "ven-9"} in out["targets"]
    targets = plan_of(raw).targets
    assert targets == EventTargets(
        ven_ids=frozenset({"wing-a", "ven-9"}),
        resource_ids=frozenset({"wing-a", "ven-9"}),
        group_ids=frozenset({"wing-a", "ven-9"}),
    )
    mine = to_engine_event(event(targets=["wing-a", VEN]), VEN, None)
    assert mine["targets"] == [{"ven_id": VEN}]
    assert to_engine_event(event(targets=[]), VEN, None)["targets"] == []


def test_targets_3_0_1_values_maps() -> None:
    raw = event(
        targets=[
            {"type": "VEN_NAME", "values": ["ven-9"]},
            {"type": "RESOURCE_NAME", "values": ["ahu-1", "ahu-2"]},
            {"type": "GROUP", "values": ["g"]},
            {"type": "POWER_SERVICE_LOCATION", "values": [[1, 2]]},
        ]
    )
    assert plan_of(raw).targets == EventTargets(
        ven_ids=frozenset({"ven-9"}),
        resource_ids=frozenset({"ahu-1", "ahu-2"}),
        group_ids=frozenset({"g"}),
    )
    only_location = event(targets=[{"type": "POWER_SERVICE_LOCATION", "values": ["x"]}])
    assert plan_of(only_location).targets is None
    assert plan_of(event(targets=[{"type": "VEN_NAME", "values": [VEN]}])).targets == (
        EventTargets(ven_ids=frozenset({VEN}))
    )


def test_non_simple_payloads_reach_the_engine_as_other_signals() -> None:
    raw = event(intervals=[{"id": 0, "payloads": [{"type": "PRICE", "values": [0.31]}]}])
    out = to_engine_event(raw, VEN, None)
    assert out["event_signals"][0]["signal_name"] == "PRICE"
    assert out["event_signals"][0]["intervals"][0]["signal_payload"] == 0.31
    result = parse_event(out, random_offset=0.0)
    assert result.plan is None
    assert "no SIMPLE signal" in (result.error or "")
    mixed = event(
        intervals=[
            {
                "id": 0,
                "payloads": [
                    {"type": "PRICE", "values": ["x"]},
                    {"type": "simple", "values": [1]},
                ],
            }
        ]
    )
    assert plan_of(mixed).segments[0].level == 1


def test_too_many_intervals_refused() -> None:
    interval = {"id": 0, "payloads": [{"type": "SIMPLE", "values": [1]}]}
    raw = event(
        intervalPeriod={"start": "2026-12-04T10:00:00Z", "duration": "PT1M"},
        intervals=[interval] * 10_000,
    )
    assert f"at most {MAX_INTERVALS:,}" in refused(raw)
    ok = event(
        intervalPeriod={"start": "2026-12-04T10:00:00Z", "duration": "PT1M"},
        intervals=[interval] * MAX_INTERVALS,
    )
    assert len(plan_of(ok).segments) == MAX_INTERVALS


def test_ids_bounded() -> None:
    assert "id" in refused(event(id="x" * 129))
    assert "id" in refused(event(id=""))
    assert "id" in refused(event(id=7))
    assert plan_of(event(id="y" * 128)).event_id == "y" * 128
    assert "target" in refused(event(targets=["t" * 129]))
    out = to_engine_event(event(id="x" * 129), VEN, None)
    assert out == {REFUSED_KEY: out[REFUSED_KEY], "event_descriptor": {"event_id": None}}


HOSTILE: list[Any] = [
    None,
    [],
    "event",
    42,
    {"id": "ev-1"},
    event(objectType="PROGRAM"),
    event(intervalPeriod="PT1H"),
    event(intervalPeriod={"start": 1, "duration": "PT1H"}),
    event(intervalPeriod={"start": "2026-12-04T10:00:00", "duration": "PT1H"}),
    event(intervalPeriod={"start": "2026-12-04T10:00:00Z", "duration": "1 hour"}),
    event(intervalPeriod={"start": "2026-12-04T10:00:00Z", "duration": "P1M"}),
    event(intervalPeriod={"start": "2026-12-04T10:00:00Z", "duration": "PT"}),
    event(intervalPeriod={"start": "2026-12-04T10:00:00Z", "duration": "P999999999D"}),
    event(intervalPeriod={"start": "9999-12-31T23:00:00Z", "duration": "PT2H"}),
    event(intervalPeriod={"start": "2026-12-04T10:00:00Z", "duration": "-PT1H"}),
    event(
        intervalPeriod={"start": "2026-12-04T10:00:00Z", "duration": "PT1H", "randomizeStart": 5}
    ),
    event(intervalPeriod={"duration": "PT1H"}),
    event(intervals=None),
    event(intervals={"0": {}}),
    event(intervals=[None]),
    event(intervals=[{"payloads": "SIMPLE"}]),
    event(intervals=[{"payloads": [None]}]),
    event(intervals=[{"payloads": [{"type": 3, "values": [1]}]}]),
    event(intervals=[{"payloads": [{"type": "SIMPLE", "values": 1}]}]),
    event(intervals=[{"payloads": [{"type": "SIMPLE", "values": [1, 2]}]}]),
    event(intervals=[{"payloads": [{"type": "SIMPLE", "values": ["2"]}]}]),
    event(intervals=[{"payloads": [{"type": "SIMPLE", "values": [[[[2]]]]}]}]),
    event(intervals=[{"payloads": [{"type": "SIMPLE", "values": [True]}]}]),
    event(intervals=[{"intervalPeriod": [], "payloads": []}]),
    event(targets="wing-a"),
    event(targets=[None]),
    event(targets=[{"type": "GROUP", "values": "g"}]),
    event(targets=[{"type": ["GROUP"], "values": ["g"]}]),
    event(targets=["t"] * 2000),
]


@pytest.mark.parametrize("raw", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_input_is_refused_with_a_reason(raw: Any) -> None:
    out = to_engine_event(copy.deepcopy(raw), VEN, None)
    reason = refusal(out)
    assert reason is not None, out
    assert 0 < len(reason) < 300
    assert reason.isprintable()


def test_values_the_engine_rejects_pass_through_unharmed() -> None:
    for value in (math.nan, math.inf, 7, -1, 1.5, 10**5000):
        raw = event(intervals=[{"payloads": [{"type": "SIMPLE", "values": [value]}]}])
        out = to_engine_event(raw, VEN, None)
        assert refusal(out) is None
        assert parse_event(out, random_offset=0.0).plan is None


def test_deep_nesting_and_huge_numbers_never_raise() -> None:
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    for raw in (
        event(intervals=deep),
        event(targets=[deep]),
        event(id=deep),
        event(intervalPeriod={"start": deep, "duration": deep}),
        deep,
    ):
        assert refusal(to_engine_event(raw, VEN, None)) is not None
    huge = to_engine_event(event(priority=10**5000), VEN, None)
    assert huge["event_descriptor"]["priority"] == UINT32_MAX


def test_decoded_json_with_nan_and_huge_ints_translates() -> None:
    body = (
        b'{"id": "ev-1", "modificationDateTime": "2026-12-04T09:00:00Z", '
        b'"intervalPeriod": {"start": "2026-12-04T10:00:00Z", "duration": "PT1H"}, "priority": '
        + b"9" * 5000
        + b', "intervals": [{"payloads": [{"type": "SIMPLE", "values": [NaN]}]}]}'
    )
    raw = decode_json(body)
    assert raw == decode_json(body)  # NaN and huge ints compare equal: no endless "changed"
    assert "priority" in refused(raw)
