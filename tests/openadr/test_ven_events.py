"""Event handling at the VTN boundary, against a loopback VTN that serves exact bytes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from custom_components.loadshed_ven.openadr.guard import MAX_EVENTS_PER_MESSAGE
from custom_components.loadshed_ven.openadr.ven import VenConnection, VenSettings
from tests.openadr.conftest import FAST
from tests.openadr.raw_vtn import RawVtn, distribution, event
from tests.vtn_fixtures import wait_for

pytestmark = pytest.mark.compat


class Engine:
    """Records what the VEN hands over; opts in unless told otherwise."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.id_sets: list[frozenset[str]] = []
        self.fail_on: set[str] = set()

    async def on_event(self, raw: dict[str, Any]) -> Any:
        self.events.append(raw)
        if raw["event_descriptor"]["event_id"] in self.fail_on:
            raise RuntimeError("engine failure")
        return "optIn"

    def handled(self) -> list[tuple[str, int]]:
        """(event id, modification number) of every handler call, in order."""
        return [
            (e["event_descriptor"]["event_id"], e["event_descriptor"]["modification_number"])
            for e in self.events
        ]


@pytest.fixture
async def connect(raw_vtn: RawVtn) -> AsyncIterator[Any]:
    vens: list[VenConnection] = []

    async def factory(*, wait: bool = True) -> tuple[VenConnection, Engine]:
        engine = Engine()
        ven = VenConnection(
            VenSettings(raw_vtn.url, "raw-building"),
            asyncio.to_thread,
            on_event=engine.on_event,
            on_event_ids=engine.id_sets.append,
            backoff=FAST,
        )
        vens.append(ven)
        ven.start()
        if wait:
            await wait_for(lambda: ven.connected)
        return ven, engine

    yield factory
    for ven in vens:
        await ven.stop()


async def polls(vtn: RawVtn, count: int) -> None:
    target = vtn.polls + count
    await wait_for(lambda: vtn.polls >= target)


def own_warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name.startswith("custom_components")
        and r.levelno >= logging.WARNING
        and text in r.getMessage()
    ]


async def test_relisted_cancelled_event_does_not_affect_other_events(
    raw_vtn: RawVtn, connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _, engine = await connect()
    running = event("RUN", level=2)
    cancelled = event("OLD", modification_number=1, status="cancelled")
    raw_vtn.queue(distribution([event("OLD"), running]))
    await wait_for(lambda: len(engine.events) == 2)
    # The VTN keeps listing the cancelled event (same modification) on every poll.
    raw_vtn.repeat = distribution([cancelled, running])
    await polls(raw_vtn, 3)
    raw_vtn.repeat = distribution([cancelled, running, event("NEW", level=1)])
    await wait_for(lambda: ("NEW", 0) in engine.handled())
    raw_vtn.repeat = distribution(
        [cancelled, event("RUN", modification_number=1, status="cancelled"), event("NEW")]
    )
    await wait_for(lambda: ("RUN", 1) in engine.handled())
    await polls(raw_vtn, 2)
    assert engine.handled() == [("OLD", 0), ("RUN", 0), ("OLD", 1), ("NEW", 0), ("RUN", 1)]
    answered = raw_vtn.responses()
    assert ("NEW", 0, "optIn", 200) in answered
    assert ("RUN", 1, "optIn", 200) in answered
    assert not [r for r in answered if r[2] == "optOut"]
    # Each modification is answered once although it was listed on many polls.
    assert len(answered) == len(set(answered)) == 5
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_failing_handler_opts_out_of_that_event_only(raw_vtn: RawVtn, connect: Any) -> None:
    _, engine = await connect()
    engine.fail_on = {"BAD"}
    raw_vtn.queue(distribution([event("BAD"), event("GOOD")]))
    await wait_for(lambda: len(raw_vtn.responses()) == 2)
    assert sorted(raw_vtn.responses()) == [("BAD", 0, "optOut", 200), ("GOOD", 0, "optIn", 200)]


async def test_digit_only_vtn_id_events_are_handled(raw_vtn: RawVtn, connect: Any) -> None:
    ven, engine = await connect()
    raw_vtn.queue(distribution([event("007")], vtn_id="12345", request_id="0042"))
    await wait_for(lambda: raw_vtn.created_bodies)
    [handled] = engine.events
    assert handled["event_descriptor"]["event_id"] == "007"
    assert engine.id_sets[-1] == frozenset({"007"})
    [body] = raw_vtn.created_bodies
    assert b"<ei:eventID>007</ei:eventID>" in body
    assert b">0042</requestID>" in body
    assert b"<ei:optType>optIn</ei:optType>" in body
    assert ven.connected


def with_duration(body: bytes, old: str, new: str) -> bytes:
    text = body.decode()
    assert f"<duration>{old}</duration>" in text
    return text.replace(f"<duration>{old}</duration>", f"<duration>{new}</duration>").encode()


async def test_overflowing_duration_refuses_only_that_event(
    raw_vtn: RawVtn, connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Already listed when the VEN starts: registration and the first sync must survive it.
    bad = event("HUGE", interval=timedelta(minutes=7))
    body = with_duration(distribution([bad, event("OK")]), "PT7M", "P99999999999Y")
    raw_vtn.repeat = body
    ven, engine = await connect()
    await wait_for(lambda: [e for e in engine.events if e["event_descriptor"]["event_id"] == "OK"])
    # Next to a cancel, the cancel still gets through.
    cancel = event("OK", modification_number=1, status="cancelled")
    raw_vtn.repeat = with_duration(distribution([bad, cancel]), "PT7M", "P99999999999Y")
    await wait_for(lambda: ("OK", 1) in engine.handled())
    await polls(raw_vtn, 3)
    assert [e for e in engine.handled() if e[0] == "HUGE"] == []
    assert ("HUGE", 0, "optOut", 454) in raw_vtn.responses()
    assert len(own_warnings(caplog, "Refused event 'HUGE'")) == 1
    assert ven.connected


async def test_far_future_event_end_does_not_fail_the_poll(
    raw_vtn: RawVtn, connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _, engine = await connect()
    late = event("LATE", start=datetime(2030, 1, 1, tzinfo=UTC), interval=timedelta(hours=2))
    body = distribution([late, event("NOW")]).decode()
    raw_vtn.repeat = body.replace("2030-01-01T00:00:00", "9999-12-31T23:00:00").encode()
    await wait_for(lambda: len(raw_vtn.responses()) == 2)
    await polls(raw_vtn, 3)
    assert {e[0] for e in engine.handled()} == {"LATE", "NOW"}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not own_warnings(caplog, "")


async def test_unchanged_event_list_is_passed_on_once(raw_vtn: RawVtn, connect: Any) -> None:
    _, engine = await connect()
    raw_vtn.repeat = distribution([event("A"), event("B")])
    await wait_for(lambda: len(engine.events) == 2)
    await polls(raw_vtn, 3)
    assert engine.id_sets == [frozenset({"A", "B"})]
    assert len(raw_vtn.created_events) == 1  # one oadrCreatedEvent for both events
    raw_vtn.repeat = distribution([event("A")])
    await wait_for(lambda: engine.id_sets[-1] == frozenset({"A"}))
    assert len(engine.events) == 2


async def test_message_over_event_limit_is_refused_whole_and_keeps_schedule(
    raw_vtn: RawVtn, connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _, engine = await connect()
    raw_vtn.queue(distribution([event("KEEP")]))
    await wait_for(lambda: engine.events)
    one = distribution([event("X")]).decode()
    start = one.index("<oadr:oadrEvent>")
    end = one.index("</oadr:oadrEvent>") + len("</oadr:oadrEvent>")
    many = one[start:end] * (MAX_EVENTS_PER_MESSAGE + 1)
    raw_vtn.repeat = (one[:start] + many + one[end:]).encode()
    await polls(raw_vtn, 4)
    assert engine.id_sets[-1] == frozenset({"KEEP"})
    assert len(engine.events) == 1
    refused = own_warnings(caplog, "Refused a message from the VTN at")
    assert len(refused) == 1
    assert raw_vtn.url in refused[0].getMessage()
    assert "events" in refused[0].getMessage()


async def test_body_with_dtd_is_refused_with_one_warning_and_polling_goes_on(
    raw_vtn: RawVtn, connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ven, engine = await connect()
    text = distribution([event("E1")]).decode()
    end = text.index("?>") + 2
    # No entity: harmless even if it reached libxml2 (the crashing bodies are only ever
    # handled in a child process, see test_guard.py), but refused all the same.
    raw_vtn.repeat = (text[:end] + "<!DOCTYPE oadr:oadrPayload>" + text[end:]).encode()
    await polls(raw_vtn, 4)
    assert engine.events == []
    assert len(own_warnings(caplog, "Refused a message from the VTN")) == 1
    raw_vtn.repeat = None
    raw_vtn.queue(distribution([event("E2")]))
    await wait_for(lambda: engine.events)
    await wait_for(lambda: ven.connected)
