"""The running VEN against the simulated VTN on loopback (poll 1 s)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from openleadr.errors import SendEmptyHTTPResponse

from custom_components.loadshed_ven.openadr.ven import (
    Backoff,
    VenConnection,
    VenSettings,
    VtnCannotConnect,
)
from sim.vtn import SimVtn
from tests.vtn_fixtures import wait_for

pytestmark = pytest.mark.compat

VEN_NAME = "test-building"
FAST = Backoff(initial=0.05, maximum=0.2, jitter=0.1)


class Recorder:
    """The engine's side of a :class:`VenConnection`: records what the VEN hands over."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.id_sets: list[frozenset[str]] = []
        self.connected: list[bool] = []
        self.opt = "optIn"
        self.power: float | None = 1234.5

    async def on_event(self, event: dict[str, Any]) -> Any:
        self.events.append(event)
        return self.opt


VenFactory = Callable[..., Awaitable[tuple[VenConnection, Recorder]]]


@pytest.fixture
async def make_ven(socket_enabled: None) -> AsyncIterator[VenFactory]:
    vens: list[VenConnection] = []

    async def factory(
        url: str, *, wait: bool = True, meter: bool = False, **kwargs: Any
    ) -> tuple[VenConnection, Recorder]:
        rec = Recorder()
        ven = VenConnection(
            VenSettings(url, VEN_NAME),
            asyncio.to_thread,
            on_event=rec.on_event,
            on_event_ids=rec.id_sets.append,
            on_connected=rec.connected.append,
            meter_power=(lambda: rec.power) if meter else None,
            backoff=kwargs.pop("backoff", FAST),
            **kwargs,
        )
        vens.append(ven)
        ven.start()
        if wait:
            await wait_for(lambda: ven.connected)
        return ven, rec

    yield factory
    for ven in vens:
        await ven.stop()


def ven_id(ven: VenConnection) -> str:
    assert ven.registration is not None
    return ven.registration.ven_id


async def test_event_reaches_callback_and_vtn_gets_opt_in(
    vtn: SimVtn, make_ven: VenFactory
) -> None:
    ven, rec = await make_ven(vtn.url)
    assert rec.connected == [True]
    assert ven.registration is not None
    assert ven.registration.poll_interval == timedelta(seconds=1)
    event_id = vtn.add_event(ven_id(ven), level=2)
    await wait_for(lambda: rec.events)
    [event] = rec.events
    assert event["event_descriptor"]["event_id"] == event_id
    [signal] = event["event_signals"]
    assert signal["intervals"][0]["signal_payload"] == 2.0
    assert rec.id_sets[-1] == frozenset({event_id})
    await wait_for(lambda: vtn.opts)
    assert [(o.event_id, o.opt_type) for o in vtn.opts] == [(event_id, "optIn")]


async def test_modify_and_cancel_reach_the_update_path(vtn: SimVtn, make_ven: VenFactory) -> None:
    ven, rec = await make_ven(vtn.url)
    event_id = vtn.add_event(ven_id(ven), level=1)
    await wait_for(lambda: vtn.opts)
    vtn.modify_event(event_id, level=3)
    await wait_for(lambda: len(rec.events) == 2)
    assert rec.events[1]["event_descriptor"]["modification_number"] == 1
    assert rec.events[1]["event_signals"][0]["intervals"][0]["signal_payload"] == 3.0
    await wait_for(lambda: len(vtn.opts) == 2)
    vtn.cancel_event(event_id)
    await wait_for(lambda: len(rec.events) == 3)
    assert rec.events[2]["event_descriptor"]["event_status"] == "cancelled"
    await wait_for(lambda: len(vtn.opts) == 3)
    assert [o.modification_number for o in vtn.opts] == [0, 1, 2]


async def test_removed_event_leaves_the_id_set(vtn: SimVtn, make_ven: VenFactory) -> None:
    ven, rec = await make_ven(vtn.url)
    keep = vtn.add_event(ven_id(ven), level=1)
    gone = vtn.add_event(ven_id(ven), level=2)
    await wait_for(lambda: rec.id_sets and rec.id_sets[-1] == {keep, gone})
    vtn.remove_event(gone)
    await wait_for(lambda: rec.id_sets[-1] == {keep})
    vtn.remove_event(keep)
    await wait_for(lambda: rec.id_sets[-1] == frozenset())
    assert len(rec.events) == 2  # a silent removal is not an update


async def test_handler_failure_or_bad_answer_opts_out(vtn: SimVtn, make_ven: VenFactory) -> None:
    ven, rec = await make_ven(vtn.url)
    rec.opt = "maybe"
    vtn.add_event(ven_id(ven), level=1)
    await wait_for(lambda: vtn.opts)
    assert vtn.opts[-1].opt_type == "optOut"

    async def broken(event: dict[str, Any]) -> Any:
        raise RuntimeError("engine failure")

    ven._on_event = broken
    second = vtn.add_event(ven_id(ven), level=2)
    await wait_for(lambda: any(o.event_id == second for o in vtn.opts))
    assert {o.opt_type for o in vtn.opts} == {"optOut"}
    assert ven.connected


async def test_operator_opt_out(vtn: SimVtn, make_ven: VenFactory) -> None:
    ven, rec = await make_ven(vtn.url)
    event_id = vtn.add_event(ven_id(ven), level=1)
    await wait_for(lambda: vtn.opts)
    await ven.opt_out(event_id)
    assert [(o.event_id, o.opt_type) for o in vtn.opts] == [
        (event_id, "optIn"),
        (event_id, "optOut"),
    ]
    assert vtn.events()[0]["opt"] == {ven_id(ven): "optOut"}
    with pytest.raises(KeyError):
        await ven.opt_out("no-such-event")
    # A VTN restart re-serves the event: the VEN repeats its latest opt, not the first one.
    await vtn.stop()
    await asyncio.sleep(1.5)  # at least one poll finds the VTN down
    await vtn.start()
    await wait_for(lambda: len(vtn.opts) == 3)
    assert vtn.opts[-1].opt_type == "optOut"
    assert len(rec.events) == 1


async def test_report_values_reach_vtn_and_none_sends_nothing(
    socket_enabled: None, make_ven: VenFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = SimVtn(report_sampling=timedelta(seconds=1))
    await server.start()
    ven, rec = await make_ven(server.url, meter=True)
    try:
        await wait_for(lambda: len(server.reports) >= 2)
        record = server.reports[0]
        assert (record.ven_id, record.resource_id) == (ven_id(ven), "main_meter")
        assert (record.measurement, record.unit, record.value) == ("RealPower", "W", 1234.5)
        rec.power = None
        await asyncio.sleep(1.2)  # a sample in flight may still arrive
        count = len(server.reports)
        await asyncio.sleep(2.5)
        assert len(server.reports) == count
        rec.power = 50.0
        await wait_for(lambda: len(server.reports) > count)
        assert server.reports[-1].value == 50.0
    finally:
        await ven.stop()
        await server.stop()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


async def test_vtn_down_at_start_retries_until_registered(
    socket_enabled: None, make_ven: VenFactory
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = SimVtn(port=port)
    url = f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b"
    ven, rec = await make_ven(url, wait=False)
    try:
        await wait_for(lambda: ven.attempts >= 4)
        assert not ven.connected
        assert isinstance(ven.last_error, VtnCannotConnect)
        with pytest.raises(VtnCannotConnect):
            await ven.opt_out("x")
        await server.start()
        await wait_for(lambda: ven.connected)
        [record] = server.registered_vens()
        assert record.registrations == 1
        assert rec.connected == [True]
    finally:
        await ven.stop()
        await server.stop()


def report_senders() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "openadr report sender"]


async def test_reregistration_does_not_leak(vtn: SimVtn, make_ven: VenFactory) -> None:
    ven, rec = await make_ven(vtn.url, meter=True)
    client = ven._client
    assert client is not None
    await wait_for(lambda: vtn.reports)
    jobs_before = len(client.scheduler.get_jobs())
    first = ven.registration
    vtn.request_reregistration(ven_id(ven))
    await wait_for(lambda: vtn.registered_vens()[0].registrations == 2)
    await wait_for(lambda: ven.registration != first)
    assert ven._client is client  # re-registered in place
    count = len(vtn.reports)
    await wait_for(lambda: len(vtn.reports) > count)
    assert len(report_senders()) == 1
    assert len(client.scheduler.get_jobs()) == jobs_before
    vtn.add_event(level=1)
    await wait_for(lambda: rec.events)
    assert ven.connected


async def test_rejected_reregistration_rebuilds_the_client(
    vtn: SimVtn, make_ven: VenFactory
) -> None:
    ven, rec = await make_ven(vtn.url, meter=True)
    first_client = ven._client
    registrations = vtn._server.services["registration_service"]
    accept = registrations.on_create_party_registration
    registrations.on_create_party_registration = lambda payload: False
    vtn.request_reregistration(ven_id(ven))
    await wait_for(lambda: not ven.connected)
    attempts = ven.attempts
    await wait_for(lambda: ven.attempts >= attempts + 2)  # retrying with backoff
    registrations.on_create_party_registration = accept
    await wait_for(lambda: ven.connected)
    assert ven._client is not first_client
    assert rec.connected == [True, False, True]
    count = len(vtn.reports)
    await wait_for(lambda: len(vtn.reports) > count)
    assert len(report_senders()) == 1


async def test_connected_follows_the_vtn(vtn: SimVtn, make_ven: VenFactory) -> None:
    ven, rec = await make_ven(vtn.url)
    await vtn.stop()
    await wait_for(lambda: not ven.connected, seconds=6)
    assert isinstance(ven.last_error, VtnCannotConnect)
    await vtn.start()
    await wait_for(lambda: ven.connected, seconds=6)
    assert rec.connected == [True, False, True]
    assert ven.last_contact is not None


async def test_malformed_vtn_input_is_contained(
    vtn: SimVtn, make_ven: VenFactory, caplog: pytest.LogCaptureFixture
) -> None:
    ven, rec = await make_ven(vtn.url)
    client = ven._client
    assert client is not None

    def local_time(message_type: str, payload: dict[str, Any]) -> None:
        # A VTN that sends dtstart without 'Z': openleadr leaves it a str.
        for event in payload.get("events") or []:
            event["active_period"]["dtstart"] = "2030-01-01T12:00:00"

    client.add_hook("after_parse_xml", local_time)
    vtn.add_event(ven_id(ven), level=1)
    await wait_for(lambda: rec.events)
    assert rec.events[0]["active_period"]["dtstart"] == "2030-01-01T12:00:00"

    poll = vtn._server.services["poll_service"]
    original = poll.handlers["oadrPoll"]

    async def empty_body(payload: dict[str, Any]) -> Any:
        raise SendEmptyHTTPResponse

    poll.handlers["oadrPoll"] = empty_body
    await asyncio.sleep(2.5)
    assert ven.connected  # an empty 200 is still contact
    poll.handlers["oadrPoll"] = original
    vtn.add_event(ven_id(ven), level=2)
    await wait_for(lambda: len(rec.events) == 2)
    # A local dtstart reaches the engine (which refuses it); the adapter neither fails nor logs.
    assert not [
        r for r in caplog.records if r.name.startswith("custom_components") and r.levelno >= 30
    ]


async def test_stop_is_safe_in_any_state(vtn: SimVtn) -> None:
    rec = Recorder()
    ven = VenConnection(VenSettings(vtn.url, VEN_NAME), asyncio.to_thread, on_event=rec.on_event)
    await ven.stop()  # never started
    task = ven.start()
    with pytest.raises(RuntimeError):
        ven.start()
    await asyncio.sleep(0)  # stop while the first registration is in flight
    await ven.stop()
    assert task.done()
    ven.start()
    await wait_for(lambda: ven.connected)
    await ven.stop()
    await ven.stop()
    assert not ven.connected
    assert report_senders() == []
