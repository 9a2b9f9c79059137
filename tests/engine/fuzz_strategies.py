"""Hypothesis strategies for event payloads, shared by the engine's and the VEN's fuzz tests.

Openleadr-shaped event dicts (every field sometimes missing, of the wrong type or out of range;
extra signals; open-ended, overlapping and shifted intervals) and arbitrary JSON-like junk,
with times around a ``base`` the caller chooses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

T0 = datetime(2026, 7, 1, 18, 0, tzinfo=UTC)
MISSING = object()  # a field left out of the dict

# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------

# Keys of openleadr's event dict, so that junk dictionaries look a little like events.
VOCABULARY = ["event_descriptor", "event_id", "active_period", "dtstart", "duration", "SIMPLE"]
VOCABULARY += ["event_signals", "signal_name", "intervals", "signal_payload", "tolerance"]
ZONES = [
    UTC,
    timezone(timedelta(hours=-4)),
    timezone(timedelta(hours=14)),
    timezone(timedelta(hours=23, minutes=59)),
    timezone(-timedelta(hours=23, minutes=59)),
]
# Odd leaves, picked from lists: hypothesis' own datetime, timedelta and text strategies cost
# about a millisecond a draw, and the budget is a thousand examples in a few seconds.
# (Integers beyond 4300 digits break hypothesis' own reporting; test_schedule_rejections.py
# covers them.)
ODD_NUMBERS = [math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324, 2**63, 10**400, -(10**400)]
ODD_TEXTS = ["", " ", "\x1f", "line\nbreak", "x" * 500, "2026-07-01T18:00:00", "PT1H", "∞"]
ODD_TIMES = [
    datetime(2026, 7, 1, 18, 0),  # noqa: DTZ001 - deliberately naive
    datetime.min.replace(tzinfo=UTC),
    datetime.max.replace(tzinfo=UTC),
    datetime.min.replace(tzinfo=ZONES[2]),  # both overflow when converted to UTC
    datetime.max.replace(tzinfo=ZONES[1]),
]
ODD_SPANS = [timedelta(0), -timedelta(microseconds=1), timedelta.max, timedelta.min]
ODD_VALUES = [*ODD_NUMBERS, *ODD_TEXTS, *ODD_TIMES, *ODD_SPANS, b"\x00", object(), *VOCABULARY]
seconds = st.integers(-4 * 3600, 4 * 3600)
junk_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.sampled_from(ODD_VALUES),
    st.text(max_size=8),
    st.builds(
        lambda s, z: (T0 + timedelta(seconds=s)).astimezone(z), seconds, st.sampled_from(ZONES)
    ),
    st.builds(lambda s: timedelta(seconds=s), seconds),
)
junk: st.SearchStrategy[object] = st.recursive(
    junk_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.sampled_from(VOCABULARY), inner, max_size=3),
    ),
    max_leaves=5,
)


def _offsets() -> st.SearchStrategy[timedelta]:
    near = st.sampled_from([0, 0, -1, -60, -60, -600, 1, 2, 3600, -3600])
    return st.one_of(
        near.map(lambda s: timedelta(seconds=s)),
        near.map(lambda s: timedelta(seconds=s)),
        near.map(lambda s: timedelta(seconds=s)),
        st.builds(lambda s: timedelta(seconds=s), seconds),
        st.builds(lambda us: timedelta(microseconds=us), st.integers(-(10**6), 10**6)),
    )


def _weighted(common: list[object], rare: list[object]) -> st.SearchStrategy[Any]:
    """The rare values together about one draw in ten (one draw; shrinks to ``common[0]``)."""
    repeat = -(-9 * len(rare) // len(common))
    return st.sampled_from(common * repeat + rare)


OFFSETS = _offsets()
ZONE = st.sampled_from(ZONES)
_DURATION_SECONDS = st.sampled_from([0, 1, 2, 1800, 3600, 3600, 7200, 7200])
VALID_DURATIONS = st.one_of(
    _DURATION_SECONDS.map(lambda s: timedelta(seconds=s)),
    _DURATION_SECONDS.map(lambda s: timedelta(seconds=s)),
    st.builds(lambda s: timedelta(seconds=abs(s)), seconds),
    st.builds(lambda m: timedelta(microseconds=1) if m else timedelta.max, st.integers(0, 19)),
)
INVALID_DURATIONS = st.one_of(
    st.sampled_from([-timedelta(minutes=1), timedelta.min, "PT1H", "P", 3600, 3600.0, None]),
    junk_leaves,
)
VALID_LEVELS = _weighted([1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 0.0, 1, 2, 3], [0, -0.0])
INVALID_LEVELS = st.one_of(
    st.sampled_from(
        [-1.0, 4.0, 5, 3.5, 0.5, 2.9999999999, 3.0000000001, True, False, "1", "2.0", "high"]
    ),
    junk_leaves,
)
VALID_TOLERANCES = st.one_of(
    st.sampled_from([0, 0, 1, 300, 600]).map(
        lambda s: {"tolerate": {"startafter": timedelta(seconds=s)}}
    ),
    st.builds(lambda w: {"tolerate": {"startafter": w}}, VALID_DURATIONS),
    st.builds(lambda w: {"startafter": w}, VALID_DURATIONS),  # openleadr's own object form
    st.sampled_from([None, {}, {"tolerate": None}, {"tolerate": {}}]),
)
INVALID_TOLERANCES = st.one_of(
    st.builds(lambda w: {"tolerate": {"startafter": w}}, INVALID_DURATIONS),
    st.sampled_from([{"tolerate": "PT5M"}, ["PT5M"]]),
    junk_leaves,
)
VALID_STATUSES = _weighted(
    ["far", "near", "active", "none"], ["completed", "cancelled", " CANCELLED "]
)
TEST_FLAGS = _weighted([False, False, "false", "False"], [True, "true", None, "yes"])
INVALID_FIELD = st.one_of(junk_leaves, junk_leaves, junk, st.just(MISSING))
_TARGET_IDS = st.sampled_from(["ven1", "ven2", "A", "B", "g", "7", 7, " A "])
_TARGET_KINDS = st.sampled_from(["ven_id", "resource_id", "group_id", "party_id", "end_device"])
TARGET_LISTS = st.one_of(
    st.just([{"ven_id": "ven1"}]),
    st.just([{"ven_id": "ven1"}]),
    st.none(),
    st.lists(
        st.dictionaries(
            _TARGET_KINDS, _TARGET_IDS | st.lists(_TARGET_IDS, max_size=3) | junk_leaves
        ),
        max_size=4,
    ),
    st.just([{"resource_id": [str(n) for n in range(1001)]}]),
    junk_leaves,
)
"""openleadr's ``targets``: this VEN, nothing, a mix of kinds, too many, or junk."""
CORRUPTIBLE = {
    # field -> what a wrong value for it looks like (anything else gets INVALID_FIELD)
    "signal_payload": INVALID_LEVELS,
    "duration": INVALID_DURATIONS,
    "tolerance": INVALID_TOLERANCES,
    "event_id": st.sampled_from(["", " ", math.nan, True, None, [], 7.5]),
    "modification_number": st.sampled_from([-1, 1.0, "1", True, None, 2**32, 2**64]),
    "priority": st.sampled_from([-1, 1.5, "high", True, 2**32, 2**64]),
    "event_status": st.sampled_from([5, None, b"far"]),
}


def _times(base: Callable[[], datetime]) -> st.SearchStrategy[object]:
    """A time that is not what openleadr should deliver (it leaves one without a Z as text)."""
    naive = st.builds(lambda offset: (base() + offset).replace(tzinfo=None), OFFSETS)
    as_text = st.builds(
        lambda offset, suffix: (base() + offset).replace(tzinfo=None).isoformat() + suffix,
        OFFSETS,
        st.sampled_from(["", "+00:00", " Z", "z"]),
    )
    return st.one_of(naive, as_text, junk_leaves)


def _spoiler(noise: int, bad_time: st.SearchStrategy[object]) -> Callable[..., dict[str, Any]]:
    """Corrupt each field of a record with probability ``noise``/1000 (and add stray keys)."""
    roll = st.integers(0, 999)
    extra_key = st.sampled_from(["0", "x-extra", "dtstart", "SIMPLE"])
    wrong = {key: st.one_of(bad, INVALID_FIELD) for key, bad in CORRUPTIBLE.items()}
    wrong["dtstart"] = st.one_of(bad_time, INVALID_FIELD)

    def spoil(draw: st.DrawFn, record: dict[str, Any]) -> dict[str, Any]:
        if not noise:
            return record
        keys = list(record)
        slots = len(keys) + 1  # the last slot stands for a stray extra key
        if noise * slots <= 1000:
            # One draw decides which slot, if any, goes wrong: a few draws per event keep a
            # thousand examples within seconds. It shrinks to 999: nothing wrong.
            hit = 999 - draw(roll)
            chosen = [hit // noise] if hit < noise * slots else []
        else:
            chosen = [i for i in range(slots) if draw(roll) >= 1000 - noise]
        for index in chosen:
            if index == len(keys):
                record[draw(extra_key)] = draw(junk_leaves)
                continue
            value = draw(wrong.get(keys[index], INVALID_FIELD))
            if value is MISSING:
                del record[keys[index]]
            else:
                record[keys[index]] = value
        return record

    return spoil


def openleadr_events(base: Callable[[], datetime], noise: int) -> st.SearchStrategy[dict[str, Any]]:
    """Event dicts shaped like openleadr's ``on_event`` argument.

    Each field is wrong (junk, missing, out of range) with probability ``noise``/1000; with
    noise 0 every field is well-formed, though the event may still be unusable (overlapping
    intervals, nothing inside the active period, two SIMPLE signals).
    """
    spoil = _spoiler(noise, _times(base))
    roll = st.integers(0, 999)
    gap = st.sampled_from([0, 0, 0, 1, 60, -1])
    simple_names = st.sampled_from(["SIMPLE", "simple", " Simple "])
    other_names = st.sampled_from(["ELECTRICITY_PRICE", "x-custom"])
    signal_types = st.sampled_from(["level", "price", "x-loadControlLevel"])
    event_ids = st.sampled_from(["ev1", "ev2", "ev3", " ev1 ", "007", 7, 8.0])

    def aware(draw: st.DrawFn, offset: timedelta) -> datetime:
        return (base() + offset).astimezone(draw(ZONE))

    def intervals(draw: st.DrawFn, start: timedelta) -> list[Any]:
        # VTNs may or may not send each interval's start; most follow the active period's.
        timed = draw(st.integers(0, 3)) == 0
        cursor = start if draw(st.integers(0, 3)) else draw(OFFSETS)
        out = []
        for uid in range(draw(st.integers(1, 3))):
            length = draw(VALID_DURATIONS)
            interval = {"duration": length, "signal_payload": draw(VALID_LEVELS), "uid": uid}
            if timed:
                cursor += timedelta(seconds=draw(gap))
                interval["dtstart"] = aware(draw, cursor)
                cursor += min(length, timedelta(days=1))
            out.append(spoil(draw, interval))
        return out

    def signal(draw: st.DrawFn, simple: bool, start: timedelta) -> dict[str, Any]:
        record = {
            "signal_name": draw(simple_names if simple else other_names),
            "signal_type": draw(signal_types),
            "signal_id": "s1",
            "current_value": 0.0,
            "intervals": intervals(draw, start),
        }
        return spoil(draw, record)

    @st.composite
    def event(draw: st.DrawFn) -> dict[str, Any]:
        start = draw(OFFSETS)
        simple_count = 1 if draw(roll) < 1000 - noise else draw(st.sampled_from([0, 2]))
        signals = [signal(draw, True, start) for _ in range(simple_count)]
        signals += [signal(draw, False, start) for _ in range(draw(st.integers(0, 3)) // 3)]
        descriptor = {
            "event_id": draw(event_ids),
            "modification_number": draw(st.integers(0, 4)),
            "event_status": draw(VALID_STATUSES),
            "priority": draw(st.integers(0, 4)),
            "test_event": draw(TEST_FLAGS),
            "market_context": "http://mc",
        }
        period = {"dtstart": aware(draw, start), "duration": draw(VALID_DURATIONS)}
        if draw(st.integers(0, 3)) == 0:
            period["tolerance"] = draw(VALID_TOLERANCES)
        return spoil(
            draw,
            {
                "event_descriptor": spoil(draw, descriptor),
                "active_period": spoil(draw, period),
                "event_signals": list(draw(st.permutations(signals))),
                "targets": draw(TARGET_LISTS),
                "targets_by_type": {"ven_id": ["ven1"]},
                "response_required": "always",
            },
        )

    return event()


def event_payloads(base: Callable[[], datetime]) -> st.SearchStrategy[object]:
    """Well-formed events, events with a few or many broken fields, and arbitrary junk."""
    return st.one_of(
        openleadr_events(base, 0),
        openleadr_events(base, 20),
        openleadr_events(base, 80),
        openleadr_events(base, 400),
        junk,
    )
