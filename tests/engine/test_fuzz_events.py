"""Property-based fuzzing of event handling in the engine (schedule + shed controller).

Generated payloads are openleadr-shaped event dicts (every field sometimes missing, of the
wrong type or out of range; extra signals; open-ended, overlapping and shifted intervals) and
arbitrary JSON-like junk. They go through ``parse_event`` -> ``Schedule`` -> ``ShedController``
as the runtime drives them, against a recording :class:`OverrideWriter` (the engine's own port).

Example budget (fixed seed, no example database, so every CI run checks the same cases):
``test_fuzzed_events_drive_only_configured_writes`` 700 examples of 1-4 payloads each, and
``test_parse_never_raises_on_junk`` 400 single payloads: 1,100 examples, about 2,150 payloads.

The strategies live in tests/engine/fuzz_strategies.py; tests/integration/test_fuzz_ven.py
reuses them against a real Home Assistant.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from custom_components.loadshed_ven.engine.overrides import FailureKind, Outcome
from custom_components.loadshed_ven.engine.points import OverridePoint, PointValue
from custom_components.loadshed_ven.engine.schedule import (
    MAX_LEVEL,
    EventPlan,
    ParseResult,
    Schedule,
    StableOffset,
    normalise_event_id,
    parse_event,
)
from custom_components.loadshed_ven.engine.shed import ShedController, ShedPolicy
from custom_components.loadshed_ven.engine.targets import MAX_TARGETS, PointTargets

from .fuzz_strategies import MISSING, T0, event_payloads, junk, openleadr_events, seconds
from .shed_helpers import OperationWriter

ERROR_MAX_CHARS = 300  # rejection reasons are shown to people and logged per poll
UINT32_MAX = 2**32 - 1


# ---------------------------------------------------------------------------------------------
# Oracles
# ---------------------------------------------------------------------------------------------


def valid_level(payload: object) -> int | None:
    """The SIMPLE level a payload stands for, or None when it is not a whole number 0-3."""
    if isinstance(payload, bool) or not isinstance(payload, int | float):
        return None
    if isinstance(payload, float) and not (math.isfinite(payload) and payload.is_integer()):
        return None
    return int(payload) if 0 <= payload <= MAX_LEVEL else None


# Targets the fuzzed events may name (see fuzz_strategies.TARGET_LISTS).
TARGETING = PointTargets({"a": ("A", "g"), "b": ("B", None), "n": (None, None)}, ven_id="ven1")


def simple_payloads(raw: object) -> list[object]:
    """Every ``signal_payload`` of every SIMPLE ``level`` signal in ``raw`` (best effort)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("event_signals"), list | tuple):
        return []
    found = []
    for signal in raw["event_signals"]:
        name = signal.get("signal_name") if isinstance(signal, Mapping) else None
        if not isinstance(name, str) or name.strip().upper() != "SIMPLE":
            continue
        kind = signal.get("signal_type")
        if kind is not None and (not isinstance(kind, str) or kind.strip().lower() != "level"):
            continue
        intervals = signal.get("intervals")
        if isinstance(intervals, list | tuple):
            found += [i.get("signal_payload", MISSING) for i in intervals if isinstance(i, Mapping)]
    return found


def check_parse_result(raw: object, result: ParseResult) -> None:
    """A plan or a readable reason, never both; a plan's levels come from valid payloads."""
    assert (result.plan is None) != (result.error is None), result
    if result.error is not None:
        assert isinstance(result.error, str)
        assert result.error
        assert len(result.error) <= ERROR_MAX_CHARS, result.error
        assert result.error.isprintable(), result.error
        return
    plan = result.plan
    assert plan is not None
    descriptor = raw["event_descriptor"]  # type: ignore[index]
    assert plan.event_id == result.event_id == normalise_event_id(descriptor["event_id"])
    check_plan(plan)
    if plan.targets is not None:
        named = [
            plan.targets.ven_ids,
            plan.targets.resource_ids,
            plan.targets.group_ids,
            plan.targets.party_ids,
        ]
        assert all(type(i) is str for ids in named for i in ids)
        assert 0 < sum(map(len, named)) <= MAX_TARGETS
    if not plan.cancelled:
        payloads = simple_payloads(raw)
        levels = [valid_level(p) for p in payloads]
        assert None not in levels, f"accepted an invalid SIMPLE payload among {payloads!r}"
        assert {seg.level for seg in plan.segments} <= set(levels)


def check_plan(plan: EventPlan) -> None:
    """Structural invariants of a plan: aware UTC, ordered, non-overlapping, levels 0-3."""
    # Whole numbers within OpenADR's xs:unsignedInt, so they always fit JSON.
    assert type(plan.modification_number) is int
    assert 0 <= plan.modification_number <= UINT32_MAX
    assert type(plan.priority) is int
    assert 0 <= plan.priority <= UINT32_MAX
    assert plan.offset >= timedelta(0)
    if plan.cancelled:
        assert plan.level_at(T0) == 0
        assert plan.boundaries() == []
    previous_end: datetime | None = None
    for seg in plan.segments:
        assert type(seg.level) is int
        assert 0 <= seg.level <= MAX_LEVEL
        assert seg.start.utcoffset() == timedelta(0)
        if seg.end is not None:
            assert seg.start < seg.end
        if previous_end is not None:
            assert previous_end <= seg.start
        previous_end = seg.end
    if plan.segments and not plan.cancelled:
        assert plan.start is not None
        assert plan.start <= plan.segments[0].start
        assert plan.end == plan.segments[-1].end


@pytest.fixture(autouse=True)
def enable_event_loop_debug(event_loop: asyncio.AbstractEventLoop) -> None:
    """Run without asyncio debug mode (the test harness turns it on for every test).

    Debug mode records a stack for every task and callback; over a thousand examples of
    small shed passes that is most of the run time, and it checks nothing these tests assert.
    """
    event_loop.set_debug(False)


# ---------------------------------------------------------------------------------------------
# The engine driven as the runtime drives it
# ---------------------------------------------------------------------------------------------

POINTS = [
    OverridePoint(address="127.0.0.2", object_type="AV", instance=302, values=(78, 80, 82)),
    OverridePoint(
        address="127.0.0.3",
        object_type="analog-value",
        instance=302,
        priority=16,
        values=(-3, 0, 1e6),
    ),
    OverridePoint(
        address="12345:2",
        object_type="binary-value",
        instance=1,
        priority=12,
        values=("active", "inactive", "active"),
    ),
    OverridePoint(address="127.0.0.4", object_type="MSV", instance=1, values=(2, 2, 4)),
]
CONFIGURED = {p.key: p for p in POINTS}


class RecordingWriter(OperationWriter):
    """The engine's port as a slot table that records every operation and can misbehave."""

    def __init__(self, misbehaving: Mapping[str, str]) -> None:
        self.misbehaving = dict(misbehaving)  # key -> "fail" | "raise"
        self.slots: dict[str, PointValue | None] = {}
        self.ops: list[tuple[str, OverridePoint, PointValue | None]] = []

    async def _op(self, op: str, point: OverridePoint, value: PointValue | None) -> Outcome:
        self.ops.append((op, point, value))
        mode = self.misbehaving.get(point.key)
        if mode == "raise":
            raise RuntimeError("the controller went away")
        if mode == "fail":
            return Outcome(ok=False, failure=FailureKind.OFFLINE, detail="no answer")
        if op != "read":
            self.slots[point.key] = value
        return Outcome(ok=True, slot_value=self.slots.get(point.key))


def check_ops(ops: Iterable[tuple[str, OverridePoint, PointValue | None]]) -> None:
    """Every operation is on a configured point, with one of that point's configured values."""
    for op, point, value in ops:
        assert CONFIGURED.get(point.key) == point, point
        if op == "write":
            assert value in point.values, (point.key, value)
        else:
            assert value is None


def _constant_offset(drawn: timedelta) -> Callable[[str, timedelta], timedelta]:
    return lambda _event_id, _window: drawn


offset_sources = st.one_of(
    st.sampled_from([0.0, 0.5, 1.0, -1.0, 2.0, math.nan, math.inf]),
    st.builds(StableOffset, st.sampled_from(["", "entry-1", "entry-2"])),
    st.builds(
        _constant_offset,
        st.sampled_from(
            [timedelta(0), -timedelta(seconds=1), timedelta(seconds=90), timedelta.max]
        ),
    ),
)
policies = st.sampled_from([(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]).map(
    lambda p: ShedPolicy(shed_level=p[0], normal_level=p[1])
)
misbehaviour = st.dictionaries(
    st.sampled_from(list(CONFIGURED)), st.sampled_from(["fail", "raise"]), max_size=2
)
FUZZ = settings(
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


async def _apply(
    controller: ShedController, writer: RecordingWriter, schedule: Schedule, at: datetime
) -> None:
    """One evaluation of the runtime: prune, resolve the level and make the points follow."""
    schedule.prune(at)
    plan = schedule.active_event_at(at)
    level = schedule.level_at(at)
    assert type(level) is int
    assert 0 <= level <= MAX_LEVEL
    if plan is None:
        assert level == 0
    else:
        assert not plan.cancelled
        assert schedule.act_on_test or not plan.test_event
        assert level == plan.level_at(at)
    before = len(writer.ops)
    await controller.apply_level(level, None if plan is None else plan.event_id)
    check_ops(writer.ops[before:])
    writes = [(p, v) for op, p, v in writer.ops[before:] if op == "write"]
    if not writes:
        return
    event("a pass wrote overrides")
    # A level at or below the normal level releases; a level between the normal and the shed
    # level keeps the level in force (and may retry its unverified writes); only a shedding
    # level is ever written, with each point's value for that level.
    acting = controller.acting
    assert level > controller.policy.normal_level, (level, writes)
    assert controller.policy.sheds(acting), (level, acting, writes)
    assert acting == level or not controller.policy.sheds(level), (level, acting)
    assert all(v == p.values[acting - 1] for p, v in writes), (acting, writes)


@settings(FUZZ, max_examples=700)
@given(
    payloads=st.lists(event_payloads(lambda: T0), min_size=1, max_size=4),
    probes=st.lists(st.builds(lambda s: timedelta(seconds=s), seconds), max_size=4),
    policy=policies,
    act_on_test=st.booleans(),
    offset_source=offset_sources,
    misbehaving=misbehaviour,
    forget=st.lists(st.sampled_from(["ev1", "ev2", "ev3", "7"]), max_size=2),
    bad_level=st.integers(max_value=-1) | st.integers(min_value=MAX_LEVEL + 1),
)
async def test_fuzzed_events_drive_only_configured_writes(
    *,
    payloads: list[object],
    probes: list[timedelta],
    policy: ShedPolicy,
    act_on_test: bool,
    offset_source: Any,
    misbehaving: dict[str, str],
    forget: list[str],
    bad_level: int,
) -> None:
    writer = RecordingWriter(misbehaving)
    controller = ShedController(POINTS, writer, policy=policy, clock=lambda: T0)
    schedule = Schedule(act_on_test=act_on_test)
    now = T0
    for raw in payloads:
        result = parse_event(raw, random_offset=offset_source)
        check_parse_result(raw, result)
        event("a payload was planned" if result.plan is not None else "a payload was rejected")
        if result.plan is not None:
            schedule.upsert(result.plan)
        await _apply(controller, writer, schedule, now)
    # Follow the level changes as the runtime's timer does, and look in at random instants.
    for _ in range(8):
        when = schedule.next_change_after(now)
        if when is None:
            break
        assert when > now
        now = when
        await _apply(controller, writer, schedule, now)
    for probe in probes:
        await _apply(controller, writer, schedule, T0 + probe)
    schedule.retain_only(p.event_id for p in schedule.plans if p.event_id not in forget)
    await _apply(controller, writer, schedule, now)

    # A level outside 0-3 is refused before anything is sent.
    before = len(writer.ops)
    with pytest.raises(ValueError, match="outside 0-3"):
        await controller.apply_level(bad_level, "ev1")
    assert writer.ops[before:] == []

    # Releasing everything (the controllers reachable again) leaves every slot NULL.
    writer.misbehaving.clear()
    await controller.release_all()
    check_ops(writer.ops)
    assert all(writer.slots.get(key) is None for key in CONFIGURED)
    assert not any(state.holds_override for state in controller.states())


@settings(FUZZ, max_examples=400)
@given(raw=junk | openleadr_events(lambda: T0, 400), offset_source=offset_sources)
def test_parse_never_raises_on_junk(raw: object, offset_source: Any) -> None:
    result = parse_event(raw, random_offset=offset_source)
    check_parse_result(raw, result)
    schedule = Schedule(act_on_test=True)
    schedule.targeting = TARGETING
    if result.plan is not None:
        assert schedule.upsert(result.plan)
        level = schedule.level_at(T0)
        assert 0 <= level <= MAX_LEVEL
        scoped = TARGETING.scope_levels(schedule.active_levels_at(T0))
        if scoped is not None:
            assert all(0 <= v <= level for v in TARGETING.point_levels(scoped).values())
        when = schedule.next_change_after(T0)
        assert when is None or when > T0
