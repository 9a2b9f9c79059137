"""Field behaviour of the simulated VTN: events kept listed, several at once, digit-only IDs,
exact bytes, hostile bodies and the command-line options that set them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from xml.etree import ElementTree

import pytest

from sim.__main__ import _configure_vtn, _parser
from sim.vtn import SimVtn
from sim.vtn_raw import billion_laughs, distribution_xml, draft_event, with_internal_entity
from tests.sim.openleadr_ven import Ven, VenFactory
from tests.vtn_fixtures import wait_for

pytestmark = pytest.mark.compat


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
