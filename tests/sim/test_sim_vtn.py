"""The simulated VTN against a plain openleadr VEN on loopback (poll 1 s)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import aiohttp
import pytest
from openleadr import OpenADRClient, utils
from openleadr.service import VTNService

from sim.__main__ import _configure_vtn, _parser
from sim.pki import SimTls, fingerprint, generate_pki
from sim.vtn import SimVtn, to_json
from sim.vtn_raw import billion_laughs, distribution_xml, draft_event, with_internal_entity
from tests.tls_helpers import ignore_failed_handshakes
from tests.vtn_fixtures import wait_for

pytestmark = pytest.mark.compat

VEN_NAME = "test-building"


class Ven:
    """An openleadr VEN that records what it receives."""

    def __init__(self, url: str, name: str = VEN_NAME, **kwargs: Any) -> None:
        self.client = OpenADRClient(ven_name=name, vtn_url=url, show_fingerprint=False, **kwargs)
        self.new: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.opt = "optIn"
        self.client.add_handler("on_event", self._on_event)
        self.client.add_handler("on_update_event", self._on_update)
        self.client.add_hook("after_parse_xml", self._after_parse)

    async def _on_event(self, event: dict[str, Any]) -> str:
        self.new.append(event)
        return self.opt

    async def _on_update(self, event: dict[str, Any]) -> str:
        self.updates.append(event)
        return self.opt

    def _after_parse(self, message_type: str, payload: dict[str, Any]) -> None:
        self.messages.append((message_type, payload))

    async def run(self) -> bool:
        """Register and start polling; return whether registration succeeded."""
        await asyncio.wait_for(self.client.run(), 15)
        return self.client.registration_id is not None

    async def stop(self) -> None:
        """Stop without leaving APScheduler jobs, report workers or sessions behind."""
        client = self.client
        if client.scheduler.running:
            client.scheduler.pause()
            pending = list(client.scheduler._executors["default"]._pending_futures)
            await asyncio.gather(*pending, return_exceptions=True)
            client.scheduler.shutdown(wait=False)
        workers = [
            task
            for task in asyncio.all_tasks()
            if getattr(task.get_coro(), "__qualname__", "").endswith("_report_queue_worker")
        ]
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if client.client_session is not None:
            await client.client_session.close()


def signal(event: dict[str, Any]) -> list[tuple[datetime, timedelta, float]]:
    """The SIMPLE intervals of an openleadr event dict as (dtstart, duration, payload)."""
    [sig] = event["event_signals"]
    assert (sig["signal_name"], sig["signal_type"]) == ("SIMPLE", "level")
    return [(i["dtstart"], i["duration"], i["signal_payload"]) for i in sig["intervals"]]


VenFactory = Callable[..., Awaitable[Ven]]


@pytest.fixture
async def make_ven(vtn: SimVtn) -> AsyncIterator[VenFactory]:
    vens: list[Ven] = []

    async def factory(url: str | None = None, *, register: bool = True, **kwargs: Any) -> Ven:
        ven = Ven(url or vtn.url, **kwargs)
        vens.append(ven)
        if register:
            assert await ven.run()
        return ven

    yield factory
    for ven in vens:
        await ven.stop()


async def test_registration(vtn: SimVtn, make_ven: VenFactory) -> None:
    ven = await make_ven()
    [record] = vtn.registered_vens()
    assert record.ven_name == VEN_NAME
    assert record.ven_id == ven.client.ven_id == SimVtn.ven_id_for(VEN_NAME)
    assert ven.client.poll_frequency == timedelta(seconds=1)
    assert to_json(record)["registrations"] == 1
    # openleadr's class-wide settings are left as they were (per-instance instead).
    assert "ven_lookup" not in vars(VTNService)


async def test_restart_keeps_registrations_and_events(vtn: SimVtn, make_ven: VenFactory) -> None:
    ven = await make_ven()
    vtn.add_event(ven.client.ven_id, level=1)
    await wait_for(lambda: vtn.opts)
    port = vtn.port
    await vtn.stop()
    await vtn.start()
    assert vtn.port == port
    await wait_for(lambda: len(vtn.opts) == 2)  # served again; the VEN repeats its opt
    assert len(ven.new) == 1
    vtn.add_event(ven.client.ven_id, level=2)
    await wait_for(lambda: len(ven.new) == 2)


async def test_event_now_single_interval(vtn: SimVtn, make_ven: VenFactory) -> None:
    ven = await make_ven()
    start = datetime.now(UTC)
    event_id = vtn.add_event(ven.client.ven_id, level=1, duration=timedelta(minutes=1), start=start)
    await wait_for(lambda: ven.new)
    [event] = ven.new
    assert event["event_descriptor"]["event_id"] == event_id
    assert event["event_descriptor"]["modification_number"] == 0
    [(dtstart, duration, payload)] = signal(event)
    assert abs(dtstart - start) < timedelta(milliseconds=1)
    assert (duration, payload) == (timedelta(minutes=1), 1.0)
    await wait_for(lambda: vtn.opts)
    assert [(o.event_id, o.opt_type) for o in vtn.opts] == [(event_id, "optIn")]
    [summary] = vtn.events()
    assert summary["opt"] == {ven.client.ven_id: "optIn"}
    assert summary["status"] == "active"


async def test_event_queued_before_registration_delivered_once(
    vtn: SimVtn, make_ven: VenFactory
) -> None:
    event_id = vtn.add_event(VEN_NAME, level=2)
    ven = await make_ven()
    assert [e["event_descriptor"]["event_id"] for e in ven.new] == [event_id]
    await wait_for(lambda: vtn.opts)
    await asyncio.sleep(1.2)  # one more poll: openleadr alone would deliver it again
    assert len(ven.new) == 1
    assert len(vtn.opts) == 1


async def test_multi_interval_event_later_with_start_after(
    vtn: SimVtn, make_ven: VenFactory
) -> None:
    ven = await make_ven()
    start = datetime.now(UTC) + timedelta(minutes=5)
    vtn.add_event(
        intervals=[(timedelta(minutes=2), 1), (timedelta(minutes=3), 2)],
        start=start,
        start_after=timedelta(seconds=30),
        test_event=True,
    )
    await wait_for(lambda: ven.new)
    [event] = ven.new
    assert [(d - start, dur, p) for d, dur, p in signal(event)] == [
        (timedelta(), timedelta(minutes=2), 1.0),
        (timedelta(minutes=2), timedelta(minutes=3), 2.0),
    ]
    period = event["active_period"]
    assert period["duration"] == timedelta(minutes=5)
    assert period["tolerance"]["tolerate"]["startafter"] == timedelta(seconds=30)
    assert event["event_descriptor"]["test_event"] is True
    assert vtn.events()[0]["status"] == "far"


async def test_modify_then_cancel(vtn: SimVtn, make_ven: VenFactory) -> None:
    ven = await make_ven()
    event_id = vtn.add_event(ven.client.ven_id, level=1)
    await wait_for(lambda: ven.new)

    assert vtn.modify_event(event_id, level=2) == 1
    await wait_for(lambda: ven.updates)
    modified = ven.updates[0]
    assert modified["event_descriptor"]["modification_number"] == 1
    assert [p for _, _, p in signal(modified)] == [2.0]
    await wait_for(lambda: len(vtn.opts) == 2)
    assert vtn.opts[-1].modification_number == 1

    assert vtn.cancel_event(event_id) == 2
    await wait_for(lambda: len(ven.updates) == 2)
    cancelled = ven.updates[1]
    assert cancelled["event_descriptor"]["event_status"] == "cancelled"
    assert cancelled["event_descriptor"]["modification_number"] == 2
    await wait_for(lambda: vtn.events()[0]["status"] == "cancelled")
    with pytest.raises(ValueError, match="cancelled"):
        vtn.modify_event(event_id, level=3)


async def test_cancel_before_first_reply_is_not_an_error(vtn: SimVtn, make_ven: VenFactory) -> None:
    event_id = vtn.add_event(VEN_NAME, level=1)
    ven = await make_ven(register=False)

    def cancel_on_delivery(xml: str) -> None:
        # Cancel while the VEN is still parsing the event, before it answers optIn.
        if event_id in xml and vtn.events()[0]["status"] != "cancelled":
            vtn.cancel_event(event_id)

    ven.client.add_hook("before_parse_xml", cancel_on_delivery)
    assert await ven.run()
    await wait_for(lambda: ven.updates)
    assert ven.updates[0]["event_descriptor"]["event_status"] == "cancelled"
    codes = [p["response"]["response_code"] for t, p in ven.messages if t == "oadrResponse"]
    assert set(codes) <= {200}


async def test_remove_is_silent(vtn: SimVtn, make_ven: VenFactory) -> None:
    ven = await make_ven()
    event_id = vtn.add_event(ven.client.ven_id, level=1)
    await wait_for(lambda: ven.new)
    seen = len(ven.messages)
    vtn.remove_event(event_id)
    await wait_for(lambda: any(t == "oadrDistributeEvent" for t, _ in ven.messages[seen:]))
    [payload] = [p for t, p in ven.messages[seen:] if t == "oadrDistributeEvent"]
    assert not payload.get("events")
    assert not ven.updates
    _, answer = await ven.client.request_event()
    assert not answer.get("events")
    assert vtn.events()[0]["status"] == "removed"


async def test_report_values_reach_vtn(vtn: SimVtn, make_ven: VenFactory) -> None:
    ven = await make_ven(register=False)
    ven.client.add_report(
        callback=lambda: 42.5,
        resource_id="main_meter",
        measurement="power_real",
        sampling_rate=timedelta(seconds=2),
    )
    assert await ven.run()
    await wait_for(lambda: vtn.reports, seconds=6)
    record = vtn.reports[0]
    assert (record.ven_id, record.resource_id) == (ven.client.ven_id, "main_meter")
    assert (record.measurement, record.unit, record.value) == ("RealPower", "W", 42.5)
    assert to_json(record)["dtstart"].endswith("Z")


async def test_request_reregistration(vtn: SimVtn, make_ven: VenFactory) -> None:
    ven = await make_ven()
    first = vtn.registered_vens()[0].registration_id
    vtn.request_reregistration(ven.client.ven_id)
    await wait_for(lambda: vtn.registered_vens()[0].registrations == 2)
    assert vtn.registered_vens()[0].registration_id != first
    await wait_for(lambda: ven.client.registration_id != first)
    vtn.add_event(level=3)
    await wait_for(lambda: ven.new)


async def test_eiopt_is_recorded(vtn: SimVtn, make_ven: VenFactory) -> None:
    ven = await make_ven()
    event_id = vtn.add_event(ven.client.ven_id, level=1)
    await wait_for(lambda: ven.new)
    opt_id = await ven.client.create_opt(
        "optOut", "participating", [{"ven_id": ven.client.ven_id}], event_id=event_id
    )
    assert opt_id
    assert vtn.opts[-1].source == "oadrCreateOpt"
    assert vtn.events()[0]["opt"] == {ven.client.ven_id: "optOut"}


def tls_kwargs(tls: SimTls, *, pin: str | None = None) -> dict[str, Any]:
    return {
        "cert": str(tls.ven_cert),
        "key": str(tls.ven_key),
        "passphrase": tls.passphrase,
        "ca_file": str(tls.ca_cert),
        "vtn_fingerprint": pin or tls.vtn_fingerprint,
    }


async def test_pki_fingerprint_matches_openleadr(pki: SimTls) -> None:
    assert fingerprint(pki.vtn_cert) == utils.certificate_fingerprint(pki.vtn_cert.read_text())


async def test_mutual_tls_with_pinning(tls_vtn: SimVtn, make_ven: VenFactory, pki: SimTls) -> None:
    assert tls_vtn.url.startswith("https://127.0.0.1:")
    ven = await make_ven(tls_vtn.url, **tls_kwargs(pki))
    assert tls_vtn.registered_vens()[0].fingerprint == pki.ven_fingerprint
    vtn_event = tls_vtn.add_event(level=1)
    await wait_for(lambda: ven.new)
    await wait_for(lambda: tls_vtn.opts)
    assert tls_vtn.opts[0].event_id == vtn_event


async def test_tls_rejections(
    tls_vtn: SimVtn, make_ven: VenFactory, pki: SimTls, tmp_path: Path
) -> None:
    with ignore_failed_handshakes():
        # No client certificate: the handshake fails before any OpenADR message.
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session:
            with pytest.raises(aiohttp.ClientError):
                async with session.post(f"{tls_vtn.url}/EiRegisterParty", data=b"") as response:
                    await response.read()
        # A client certificate from another CA.
        other = generate_pki(tmp_path / "other")
        foreign = {**tls_kwargs(pki), "cert": str(other.ven_cert), "key": str(other.ven_key)}
        foreign["passphrase"] = None
        assert not await (await make_ven(tls_vtn.url, register=False, **foreign)).run()
    assert tls_vtn.registered_vens() == []
    # A VTN that is not the pinned one: the VEN drops its answers.
    wrong_pin = tls_kwargs(pki, pin=other.vtn_fingerprint)
    assert not await (await make_ven(tls_vtn.url, register=False, **wrong_pin)).run()


def test_argument_checks() -> None:
    with pytest.raises(ValueError, match="poll_interval"):
        SimVtn(poll_interval=timedelta(milliseconds=500))
    with pytest.raises(ValueError, match="loopback"):
        SimVtn(host="0.0.0.0")
    vtn = SimVtn()
    with pytest.raises(ValueError, match="0-3"):
        vtn.add_event(level=4)
    with pytest.raises(ValueError, match="exactly one"):
        vtn.add_event()
    with pytest.raises(ValueError, match="timezone-aware"):
        vtn.add_event(level=1, start=datetime(2030, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="whole number"):
        vtn.add_event(intervals=[(timedelta(seconds=1.5), 1)])
    with pytest.raises(RuntimeError):
        _ = vtn.url


# ---- Field behaviour: events kept listed, several at once, digit-only IDs, exact bytes ----------


def distributed(ven: Ven, since: int = 0) -> list[list[tuple[str, str]]]:
    """Each oadrDistributeEvent the VEN got after message ``since``: (event_id, status) pairs."""
    lists = []
    for message_type, payload in ven.messages[since:]:
        if message_type == "oadrDistributeEvent":
            lists.append(
                [
                    (
                        str(e["event_descriptor"]["event_id"]),
                        e["event_descriptor"]["event_status"],
                    )
                    for e in payload.get("events") or []
                ]
            )
    return lists


async def test_cancelled_event_stays_listed_next_to_a_new_one(
    vtn: SimVtn, make_ven: VenFactory
) -> None:
    vtn.keep_listed = timedelta(minutes=5)
    ven = await make_ven()
    old = vtn.add_event(level=1)
    await wait_for(lambda: ven.new)
    vtn.cancel_event(old)
    await wait_for(lambda: ven.updates)
    await wait_for(lambda: any(o.modification_number == 1 for o in vtn.opts))
    seen = len(ven.messages)
    new = vtn.add_event(level=2)
    await wait_for(lambda: distributed(ven, seen))
    assert sorted(distributed(ven, seen)[0]) == sorted([(old, "cancelled"), (new, "active")])
    assert vtn.events()[0]["status"] == "cancelled"


async def test_by_default_a_cancelled_event_is_dropped_once_answered(
    vtn: SimVtn, make_ven: VenFactory
) -> None:
    ven = await make_ven()
    old = vtn.add_event(level=1)
    await wait_for(lambda: ven.new)
    vtn.cancel_event(old)
    await wait_for(lambda: any(o.modification_number == 1 for o in vtn.opts))
    seen = len(ven.messages)
    new = vtn.add_event(level=2)
    await wait_for(lambda: distributed(ven, seen))
    assert distributed(ven, seen)[0] == [(new, "active")]


async def test_completed_event_listed_until_keep_listed_runs_out(
    vtn: SimVtn, make_ven: VenFactory
) -> None:
    vtn.keep_listed = timedelta(seconds=2)
    ven = await make_ven()
    short = vtn.add_event(level=1, duration=timedelta(seconds=3))
    await wait_for(lambda: ven.new)
    await wait_for(lambda: vtn.events()[0]["status"] == "completed")
    seen = len(ven.messages)
    second = vtn.add_event(level=1)
    await wait_for(lambda: distributed(ven, seen))
    assert sorted(distributed(ven, seen)[0]) == sorted([(short, "completed"), (second, "active")])
    await asyncio.sleep(2.1)  # now more than keep_listed after the end
    seen = len(ven.messages)
    third = vtn.add_event(level=1)
    await wait_for(lambda: distributed(ven, seen))
    assert sorted(distributed(ven, seen)[0]) == sorted([(second, "active"), (third, "active")])


async def test_several_events_added_together_arrive_in_one_message(
    vtn: SimVtn, make_ven: VenFactory
) -> None:
    ven = await make_ven()
    seen = len(ven.messages)
    ids = [vtn.add_event(level=level) for level in (1, 2, 3)]
    await wait_for(lambda: len(ven.new) == 3)
    [listing] = distributed(ven, seen)
    assert sorted(event_id for event_id, _ in listing) == sorted(ids)


async def test_distribute_every_poll_relists_unchanged_events(
    vtn: SimVtn, make_ven: VenFactory
) -> None:
    vtn.distribute_every_poll = True
    ven = await make_ven()
    event_id = vtn.add_event(level=1)
    await wait_for(lambda: ven.new)
    seen = len(ven.messages)
    await wait_for(lambda: len(distributed(ven, seen)) >= 2, seconds=5)
    assert distributed(ven, seen)[:2] == [[(event_id, "active")]] * 2
    assert len(ven.new) == 1  # the same modification: no new event for the VEN


@pytest.fixture
async def digit_vtn(socket_enabled: None) -> AsyncIterator[SimVtn]:
    server = SimVtn(vtn_id="12345", digit_ids=True)
    await server.start()
    yield server
    await server.stop()


async def test_digit_only_vtn_and_event_ids(digit_vtn: SimVtn, make_ven: VenFactory) -> None:
    ven = await make_ven(digit_vtn.url)
    event_id = digit_vtn.add_event(level=1)
    assert event_id.isdigit()
    assert not event_id.startswith("0")
    seen = len(ven.messages)
    await wait_for(lambda: distributed(ven, seen))
    [(_, payload)] = [m for m in ven.messages[seen:] if m[0] == "oadrDistributeEvent"]
    # On the wire both are digits only (openleadr's parser even makes them ints).
    assert str(payload["vtn_id"]) == "12345"
    assert distributed(ven, seen) == [[(event_id, "active")]]
    await wait_for(lambda: digit_vtn.opts)
    # Whatever the VEN answered (openleadr 0.5.36 opts out: int vtnID), it is filed under the
    # string ID.
    assert digit_vtn.opts[0].event_id == event_id
    assert list(digit_vtn.events()[0]["opt"]) == [ven.client.ven_id]
    assert digit_vtn.add_event(level=2, event_id="42") == "42"


async def test_serve_raw_answers_one_poll_with_exact_bytes(
    vtn: SimVtn, make_ven: VenFactory
) -> None:
    ven = await make_ven()
    body = distribution_xml(vtn.vtn_id, ven.client.ven_id, [draft_event(event_id="raw-1")])
    vtn.serve_raw(body, ven_id=ven.client.ven_id)
    assert vtn.raw_pending == 1
    await wait_for(lambda: ven.new)
    assert ven.new[0]["event_descriptor"]["event_id"] == "raw-1"
    [served] = vtn.raw_served
    assert (served.service, served.body) == ("OadrPoll", body.encode())
    assert vtn.raw_pending == 0
    vtn.add_event(level=2)  # openleadr's own replies again
    await wait_for(lambda: len(ven.new) == 2)


async def test_raw_body_for_another_ven_is_not_served(vtn: SimVtn, make_ven: VenFactory) -> None:
    await make_ven()
    vtn.serve_raw(b"<not-xml", ven_id="ven-someone-else")
    await asyncio.sleep(1.5)  # a poll or two
    assert vtn.raw_served == []
    vtn.clear_raw()
    assert vtn.raw_pending == 0


def test_hostile_bodies_keep_the_message_readable() -> None:
    plain = distribution_xml("SIMVTN", "ven-1", [draft_event(event_id="E1")])
    entity = with_internal_entity(plain, "E1")
    assert entity.count('<!DOCTYPE oadr:oadrPayload [<!ENTITY a "E1">]>') == 1
    # A plain (non-validating) parser expands the entity back to the event ID.
    root = ElementTree.fromstring(entity.encode())
    assert [el.text for el in root.iter() if el.tag.endswith("eventID")] == ["E1"]
    laughs = billion_laughs(plain, depth=3)
    assert '<!ENTITY lol2 "&lol1;&lol1;' in laughs
    assert "<ei:vtnID>&lol2;SIMVTN</ei:vtnID>" in laughs
    with pytest.raises(ValueError, match="text node"):
        with_internal_entity(plain, "nowhere")


def test_field_option_checks() -> None:
    with pytest.raises(ValueError, match="keep_listed"):
        SimVtn(keep_listed=timedelta(seconds=-1))
    vtn = SimVtn()
    vtn._server = type("Server", (), {"events": {}, "events_updated": {}})()
    vtn.add_event(level=1, event_id="7")
    with pytest.raises(ValueError, match="exists"):
        vtn.add_event(level=1, event_id="7")
    with pytest.raises(ValueError, match="times"):
        vtn.serve_raw(b"", times=0)


def test_command_line_sets_the_field_behaviour_of_the_vtn() -> None:
    args = _parser().parse_args(
        ["--vtn-id", "12345", "--keep-listed", "5m", "--distribute-every-poll", "--digit-ids"]
    )
    vtn = SimVtn()
    _configure_vtn(vtn, args)
    assert (vtn.vtn_id, vtn.keep_listed) == ("12345", timedelta(minutes=5))
    assert vtn.distribute_every_poll
    assert vtn.digit_ids
    plain = SimVtn()
    _configure_vtn(plain, _parser().parse_args(["run"]))
    assert (plain.vtn_id, plain.keep_listed) == ("SIMVTN", None)
    assert not plain.distribute_every_poll
    assert not plain.digit_ids
