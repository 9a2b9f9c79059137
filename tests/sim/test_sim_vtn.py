"""The simulated VTN against a plain openleadr VEN on loopback: registration, events, reports."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from openleadr.service import VTNService

from sim.vtn import SimVtn, to_json
from tests.sim.openleadr_ven import VEN_NAME, VenFactory
from tests.vtn_fixtures import wait_for

pytestmark = pytest.mark.compat


def signal(event: dict[str, Any]) -> list[tuple[datetime, timedelta, float]]:
    """The SIMPLE intervals of an openleadr event dict as (dtstart, duration, payload)."""
    [sig] = event["event_signals"]
    assert (sig["signal_name"], sig["signal_type"]) == ("SIMPLE", "level")
    return [(i["dtstart"], i["duration"], i["signal_payload"]) for i in sig["intervals"]]


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
