"""Generated VTN messages for the byte-boundary fuzz: a short event life, rendered as bytes.

An :class:`Example` tells the life of up to three events in 1-3 oadrDistributeEvent messages
(each event moves along the transitions a VTN may make), with absurd extras, filler events and
DTDs. :func:`render` turns it into the exact bytes to serve, and says which level the building
may hold after each message.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from sim.vtn_events import SimEvent
from sim.vtn_raw import billion_laughs, distribution_xml, draft_event, with_internal_entity

__all__ = ["JUNK", "Example", "Message", "Served", "examples", "message", "render"]

_COUNTER = itertools.count(1)
# Moves (see _step): a first listing, a re-listing, a modification, a cancellation...
ACTIVE, RELIST, MODIFY, CANCEL, FAR, COMPLETED = 2, 3, 5, 8, 6, 7


# ---- What an example is ---------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One message: a move per event of the example, absurd extras, filler, maybe a DTD."""

    moves: tuple[tuple[int, int], ...]  # per event: (move 0-9, level 1-3)
    junk: tuple[str, ...] = ()
    filler: int = 0  # completed events listed next to the others
    dtd: str | None = None  # "entity" or "laughs"


@dataclass(frozen=True)
class Example:
    """A short event life as a VTN tells it."""

    messages: tuple[Message, ...]
    digit_ids: bool = False
    digit_vtn: bool = False


JUNK = ("huge_duration", "year_9999", "many_intervals", "tiny_level", "huge_level")


def _messages(dtd: bool) -> st.SearchStrategy[Message]:
    moves = st.lists(st.tuples(st.integers(0, 9), st.integers(1, 3)), min_size=3, max_size=3)
    return st.builds(
        Message,
        moves=moves.map(tuple),
        junk=st.lists(st.sampled_from(JUNK), max_size=2).map(tuple),
        filler=st.sampled_from([0, 0, 0, 5, 50]),
        dtd=st.sampled_from([None, "entity", "laughs"]) if dtd else st.none(),
    )


def examples(dtd: bool) -> st.SearchStrategy[Example]:
    return st.builds(
        Example,
        messages=st.lists(_messages(dtd), min_size=1, max_size=3).map(tuple),
        digit_ids=st.booleans(),
        digit_vtn=st.booleans(),
    )


# ---- Rendering: the VTN's view of each event, then the bytes ---------------------------------


@dataclass
class _Life:
    """One event of the example as the VTN holds it between messages."""

    event_id: str
    state: str | None = None  # None (never listed), active, far, completed, cancelled, gone
    level: int = 1
    modification: int = 0


@dataclass
class Served:
    """A rendered message and what the building may hold once the VEN has it."""

    body: bytes
    kind: str
    allowed: set[int | None]
    good: set[str] = field(default_factory=set)
    may_be_refused: bool = False


def _step(life: _Life, move: int, level: int) -> None:
    """Advance one event by one message (a VTN's legal transitions)."""
    match life.state:
        case None:
            life.state, life.level = (
                (None, level),
                (None, level),
                ("active", level),
                ("active", level),
                ("active", level),
                ("active", level),
                ("far", level),
                ("completed", level),
                ("cancelled", level),
                ("active", level),
            )[move]
            life.modification = 1 if life.state == "cancelled" else 0
        case "active":
            if move == 0:
                life.state = "gone"
            elif move in (5, 6) and level != life.level:
                life.level, life.modification = level, life.modification + 1
            elif move >= 7:
                life.state, life.modification = "cancelled", life.modification + 1
        case "far":
            if move == 0:
                life.state = "gone"
            elif move >= 7:
                life.state, life.modification = "cancelled", life.modification + 1
        case "completed" | "cancelled":
            if move <= 2:
                life.state = "gone"


def _sim_event(life: _Life, now: datetime) -> SimEvent:
    start, length = {
        "far": (now + timedelta(hours=2), timedelta(minutes=30)),
        "completed": (now - timedelta(hours=3), timedelta(minutes=1)),
    }.get(life.state or "", (now - timedelta(seconds=1), timedelta(minutes=30)))
    event = draft_event(level=life.level, duration=length, start=start, event_id=life.event_id)
    event.modification_number = life.modification
    event.cancelled = life.state == "cancelled"
    return event


_EVENT = re.compile(r"<oadr:oadrEvent>.*?</oadr:oadrEvent>", re.DOTALL)
_PAYLOAD = re.compile(r"(<ei:signalPayload><ei:payloadFloat><ei:value>)[^<]*")


def _junk_fragment(kind: str, event_id: str, vtn_id: str, ven_id: str, now: datetime) -> str:
    """One absurd but schema-valid event, as the text of its oadrEvent element."""
    start, length, intervals = now - timedelta(seconds=1), timedelta(seconds=7), None
    if kind == "year_9999":
        start, length = datetime(2099, 1, 1, tzinfo=UTC), timedelta(hours=2)
    elif kind == "many_intervals":
        intervals = [(timedelta(minutes=1), 1)] * 1440
    event = draft_event(
        level=1, duration=length, start=start, event_id=event_id, intervals=intervals
    )
    [text] = _EVENT.findall(distribution_xml(vtn_id, ven_id, [event]))
    if kind == "huge_duration":
        text = text.replace("PT7S", "P99999999999Y")
    elif kind == "year_9999":
        text = text.replace("2099-01-01T00:00:00.000000Z", "9999-12-31T23:00:00Z")
    elif kind == "tiny_level":
        text = _PAYLOAD.sub(r"\g<1>4.9E-324", text)
    elif kind == "huge_level":
        text = _PAYLOAD.sub(r"\g<1>1.7976931348623157E308", text)
    return str(text)


def render(example: Example, ven_id: str, now: datetime, level: int | None) -> list[Served]:
    """Every message of ``example`` as bytes, with what the building may hold after each.

    ``level`` is what the building holds before: a refused first message leaves it.
    """
    serial = next(_COUNTER)
    base = 10**11 + serial * 10_000  # all-digit IDs, no leading zero, unique per example

    def new_id(n: int) -> str:
        return str(base + n) if example.digit_ids else f"fz{serial}-{n}"

    vtn_id = "12345" if example.digit_vtn else "SIMVTN"
    lives = [_Life(new_id(k)) for k in range(3)]
    extra = itertools.count(10)
    served: list[Served] = []
    previous: set[int | None] = {level}
    for message in example.messages:
        for life, (move, new_level) in zip(lives, message.moves, strict=True):
            _step(life, move, new_level)
        listed = [life for life in lives if life.state not in (None, "gone")]
        events: list[Any] = [_sim_event(life, now) for life in listed]
        events += [
            _sim_event(_Life(new_id(next(extra)), "completed"), now) for _ in range(message.filler)
        ]
        xml = distribution_xml(vtn_id, ven_id, events)
        if message.junk:
            fragments = "".join(
                _junk_fragment(kind, new_id(next(extra)), vtn_id, ven_id, now)
                for kind in message.junk
            )
            xml = xml.replace(
                "</oadr:oadrDistributeEvent>", fragments + "</oadr:oadrDistributeEvent>"
            )
        active = [life.level for life in listed if life.state == "active"]
        good_max = max(active, default=None)
        allowed: set[int | None] = {good_max}
        if {"huge_duration", "many_intervals"} & set(message.junk):
            allowed.add(max(good_max or 0, 1))  # honoured at its level 1 or refused alone
        kind = "plain"
        if message.filler >= 1000 or "many_intervals" in message.junk:
            kind = "1000 events" if message.filler >= 1000 else "1440 intervals"
        may_be_refused = message.filler >= 1000
        if message.dtd is not None:
            target = listed[0].event_id if listed else None
            xml = (
                with_internal_entity(xml, target)
                if message.dtd == "entity" and target
                else billion_laughs(xml, depth=6)
            )
            kind, allowed = f"DTD ({message.dtd})", set(previous)
        elif may_be_refused:
            allowed |= previous
        good = {life.event_id for life in listed if life.state in ("active", "far")}
        if message.dtd is not None:
            good = set()
        served.append(Served(xml.encode(), kind, allowed, good, may_be_refused))
        previous = allowed
    return served


def message(*moves: tuple[int, int], **kwargs: Any) -> Message:
    """A message with the given (move, level) for the first events; the rest stay unlisted."""
    return Message(moves=(*moves, *((0, 1),) * (3 - len(moves))), **kwargs)
