"""The simulated OpenADR 3.1.0 VTN over HTTP on loopback: OAuth2, events, reports, field faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from sim.building import BuildingConfig, SimBuilding
from sim.control import build_app
from sim.vtn3 import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_VEN_NAME, SimVtn3
from sim.vtn3_events import iso_duration

OTHER = ("other-ven", "other-secret", "ven-b")
START = datetime(2030, 12, 4, 10, 0, tzinfo=UTC)


@pytest.fixture
async def vtn3(socket_enabled: None) -> AsyncIterator[SimVtn3]:
    server = SimVtn3(
        clients={
            DEFAULT_CLIENT_ID: (DEFAULT_CLIENT_SECRET, DEFAULT_VEN_NAME),
            OTHER[0]: (OTHER[1], OTHER[2]),
        }
    )
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def token(
    http: aiohttp.ClientSession,
    vtn: SimVtn3,
    client_id: str = DEFAULT_CLIENT_ID,
    secret: str = DEFAULT_CLIENT_SECRET,
) -> str:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    async with http.post(vtn.token_url, data=form) as resp:
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["access_token"])


async def get(
    http: aiohttp.ClientSession, vtn: SimVtn3, path: str, bearer: str, **query: Any
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {bearer}"}
    async with http.get(vtn.url + path, params=query, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def post_report(
    http: aiohttp.ClientSession, vtn: SimVtn3, bearer: str, body: dict[str, Any]
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {bearer}"}
    async with http.post(vtn.url + "/reports", json=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


def report(vtn: SimVtn3, event_id: str, kind: str, values: list[Any]) -> dict[str, Any]:
    return {
        "objectType": "REPORT",
        "programID": vtn.program_id,
        "eventID": event_id,
        "clientName": DEFAULT_VEN_NAME,
        "reportName": "meter",
        "payloadDescriptors": [
            {"objectType": "REPORT_PAYLOAD_DESCRIPTOR", "payloadType": kind, "units": "KW"}
        ],
        "resources": [
            {
                "resourceName": "main_meter",
                "intervalPeriod": {"start": "2030-12-04T10:00:05Z", "duration": "PT0S"},
                "intervals": [{"id": 0, "payloads": [{"type": kind, "values": values}]}],
            }
        ],
    }


def test_iso_durations_and_loopback_only() -> None:
    assert [iso_duration(timedelta(seconds=s)) for s in (0, 30, 5400, 93600)] == [
        "PT0S",
        "PT30S",
        "PT1H30M",
        "P1DT2H",
    ]
    with pytest.raises(ValueError, match="loopback"):
        SimVtn3(host="10.0.0.1")


async def test_token_by_form_and_basic_auth(vtn3: SimVtn3, http: aiohttp.ClientSession) -> None:
    bearer = await token(http, vtn3)
    basic = aiohttp.BasicAuth(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    form = {"grant_type": "client_credentials"}
    async with http.post(vtn3.token_url, data=form, auth=basic) as resp:
        body = await resp.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3600)
    assert body["access_token"] != bearer
    assert vtn3.tokens_issued == 2
    [ven] = vtn3.registered_vens()
    assert (ven.ven_id, ven.registration_id, ven.registrations) == (
        DEFAULT_VEN_NAME,
        DEFAULT_CLIENT_ID,
        2,
    )
    assert vtn3.ven_id_for("x") == "x"
    async with http.get(vtn3.url + "/auth/server") as resp:
        assert (await resp.json())["tokenURL"] == vtn3.token_url


async def test_bad_secret_and_missing_token_are_refused(
    vtn3: SimVtn3, http: aiohttp.ClientSession
) -> None:
    form = {"grant_type": "client_credentials", "client_id": DEFAULT_CLIENT_ID}
    async with http.post(vtn3.token_url, data={**form, "client_secret": "nope"}) as resp:
        assert (resp.status, await resp.json()) == (401, {"error": "invalid_client"})
    async with http.post(vtn3.token_url, data={**form, "grant_type": "password"}) as resp:
        assert resp.status == 400
    status, body = await get(http, vtn3, "/events", "not-a-token")
    assert (status, body["status"]) == (401, 401)
    assert vtn3.tokens_issued == 0
    assert ("GET", "/openadr3/3.1.0/events") in vtn3.requests


async def test_program_and_event_listing(vtn3: SimVtn3, http: aiohttp.ClientSession) -> None:
    bearer = await token(http, vtn3)
    status, [program] = await get(http, vtn3, "/programs", bearer)
    assert status == 200
    assert (program["id"], program["programName"]) == (vtn3.program_id, "loadshed-sim")
    assert program["objectType"] == "PROGRAM"
    event_id = vtn3.add_event(level=1)
    _, events = await get(http, vtn3, "/events", bearer, programID=vtn3.program_id)
    assert [e["id"] for e in events] == [event_id]
    assert await get(http, vtn3, "/events", bearer, programID="other") == (200, [])
    assert (await get(http, vtn3, "/events", bearer, skip=-1))[0] == 400
    assert vtn3.events()[0]["delivered_to"] == [DEFAULT_VEN_NAME]


async def test_pagination(vtn3: SimVtn3, http: aiohttp.ClientSession) -> None:
    bearer = await token(http, vtn3)
    ids = [vtn3.add_event(level=1, event_id=f"ev-{n}") for n in range(5)]
    pages = [
        [e["id"] for e in (await get(http, vtn3, "/events", bearer, skip=s, limit=2))[1]]
        for s in (0, 2, 4, 6)
    ]
    assert pages == [ids[:2], ids[2:4], ids[4:], []]
    vtn3.page_limit = 3  # a VTN that caps the page below what was asked
    assert len((await get(http, vtn3, "/events", bearer, limit=10))[1]) == 3


async def test_events_shown_only_to_their_ven(vtn3: SimVtn3, http: aiohttp.ClientSession) -> None:
    mine, theirs = await token(http, vtn3), await token(http, vtn3, OTHER[0], OTHER[1])
    for_all = vtn3.add_event(level=1)
    by_name = vtn3.add_event(DEFAULT_VEN_NAME, level=2)
    by_client = vtn3.add_event(OTHER[0], level=3)
    assert [e["id"] for e in (await get(http, vtn3, "/events", mine))[1]] == [for_all, by_name]
    assert [e["id"] for e in (await get(http, vtn3, "/events", theirs))[1]] == [for_all, by_client]


async def test_event_json_shape(vtn3: SimVtn3, http: aiohttp.ClientSession) -> None:
    event_id = vtn3.add_event(
        intervals=[(timedelta(hours=1), 1), (timedelta(minutes=30), 2)],
        start=START,
        start_after=timedelta(minutes=5),
        priority=2,
        targets={"resource_id": ["wing-a"], "ven_id": ["ven-1"], "party_id": ["p"]},
    )
    [event] = (await get(http, vtn3, "/events", await token(http, vtn3)))[1]
    assert event == {
        "id": event_id,
        "createdDateTime": event["createdDateTime"],
        "modificationDateTime": event["createdDateTime"],
        "objectType": "EVENT",
        "programID": vtn3.program_id,
        "eventName": f"simple {event_id[:8]}",
        "priority": 2,
        "targets": ["wing-a", "ven-1"],
        "payloadDescriptors": [{"objectType": "EVENT_PAYLOAD_DESCRIPTOR", "payloadType": "SIMPLE"}],
        "reportDescriptors": [
            {
                "payloadType": "DEMAND",
                "readingType": "DIRECT_READ",
                "units": "KW",
                "aggregate": False,
                "startInterval": 0,
                "numIntervals": -1,
                "historical": False,
                "frequency": -1,
                "repeat": 1,
            }
        ],
        "intervalPeriod": {
            "start": "2030-12-04T10:00:00Z",
            "duration": "PT1H",
            "randomizeStart": "PT5M",
        },
        "intervals": [
            {"id": 0, "payloads": [{"type": "SIMPLE", "values": [1]}]},
            {
                "id": 1,
                "intervalPeriod": {"start": "2030-12-04T11:00:00Z", "duration": "PT30M"},
                "payloads": [{"type": "SIMPLE", "values": [2]}],
            },
        ],
    }


async def test_price_events_and_301_targets(vtn3: SimVtn3, http: aiohttp.ClientSession) -> None:
    vtn3.target_format = "3.0.1"
    vtn3.add_event(level=2, signal_type="price", targets={"group_id": ["north"]})
    [event] = (await get(http, vtn3, "/events", await token(http, vtn3)))[1]
    assert event["payloadDescriptors"][0]["payloadType"] == "PRICE"
    assert event["intervals"][0]["payloads"] == [{"type": "PRICE", "values": [2]}]
    assert event["targets"] == [{"type": "GROUP", "values": ["north"]}]


async def test_modify_moves_modification_time(vtn3: SimVtn3, http: aiohttp.ClientSession) -> None:
    bearer = await token(http, vtn3)
    event_id = vtn3.add_event(level=1, start=START)
    [before] = (await get(http, vtn3, "/events", bearer))[1]
    assert vtn3.modify_event(event_id, level=3) == 1
    assert vtn3.modify_event(event_id, level=2) == 2
    [after] = (await get(http, vtn3, "/events", bearer))[1]
    assert after["modificationDateTime"] > before["modificationDateTime"]
    assert after["createdDateTime"] == before["createdDateTime"]
    assert after["intervals"][0]["payloads"][0]["values"] == [2]


async def test_cancel_deletes_or_zeroes(vtn3: SimVtn3, http: aiohttp.ClientSession) -> None:
    bearer = await token(http, vtn3)
    deleted = vtn3.add_event(level=1)
    removed = vtn3.add_event(level=1)
    assert vtn3.cancel_event(deleted) == 1
    vtn3.remove_event(removed)
    vtn3.cancel_style = "zero"
    zeroed = vtn3.add_event(intervals=[(timedelta(minutes=5), 1), (timedelta(minutes=1), 2)])
    vtn3.cancel_event(zeroed)
    [event] = (await get(http, vtn3, "/events", bearer))[1]
    assert event["id"] == zeroed
    assert event["intervalPeriod"] == {"start": "0001-01-01T00:00:00Z", "duration": "PT0S"}
    assert all("intervalPeriod" not in i for i in event["intervals"])
    assert [e["status"] for e in vtn3.events()] == ["cancelled", "removed", "cancelled"]
    with pytest.raises(ValueError, match="cancelled"):
        vtn3.modify_event(deleted, level=2)


async def test_ended_events_stay_listed_until_keep_listed(
    vtn3: SimVtn3, http: aiohttp.ClientSession
) -> None:
    bearer = await token(http, vtn3)
    vtn3.add_event(level=1, duration=timedelta(seconds=1), start=START - timedelta(days=3650))
    assert len((await get(http, vtn3, "/events", bearer))[1]) == 1  # None: forever
    vtn3.keep_listed = timedelta(minutes=5)
    assert (await get(http, vtn3, "/events", bearer))[1] == []


async def test_reports_and_opts_recorded(vtn3: SimVtn3, http: aiohttp.ClientSession) -> None:
    bearer = await token(http, vtn3)
    event_id = vtn3.add_event(level=1)
    status, stored = await post_report(
        http, vtn3, bearer, report(vtn3, event_id, "DEMAND", [812.4])
    )
    assert status == 201
    assert stored["id"]
    assert stored["objectType"] == "REPORT"
    [record] = vtn3.reports
    assert (record.ven_id, record.resource_id, record.measurement, record.unit, record.value) == (
        DEFAULT_VEN_NAME,
        "main_meter",
        "DEMAND",
        "KW",
        812.4,
    )
    assert record.dtstart == datetime(2030, 12, 4, 10, 0, 5, tzinfo=UTC)
    for state in ("RUNNING_OPTED_OUT", "RUNNING_NORMAL"):
        opt = report(vtn3, event_id, "OPERATING_STATE", [state])
        assert (await post_report(http, vtn3, bearer, opt))[0] == 201
    assert [(o.event_id, o.opt_type, o.source) for o in vtn3.opts] == [
        (event_id, "optOut", "OPERATING_STATE"),
        (event_id, "optIn", "OPERATING_STATE"),
    ]
    assert vtn3.events()[0]["opt"] == {DEFAULT_VEN_NAME: "optIn"}
    assert len(vtn3.received_reports) == 3


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (lambda b: b.pop("programID"), "programID is required"),
        (lambda b: b.pop("resources"), "resources"),
        (lambda b: b.update(eventID="nope"), "unknown eventID"),
        (lambda b: b["resources"][0].pop("intervalPeriod"), "intervalPeriod"),
        (
            lambda b: b["resources"][0]["intervals"][0]["payloads"][0].update(values=["x"]),
            "numbers",
        ),
    ],
)
async def test_bad_reports_get_a_problem(
    vtn3: SimVtn3, http: aiohttp.ClientSession, change: Any, detail: str
) -> None:
    body = report(vtn3, vtn3.add_event(level=1), "DEMAND", [1.0])
    change(body)
    status, problem = await post_report(http, vtn3, await token(http, vtn3), body)
    assert (status, problem["status"], problem["title"]) == (400, 400, "Bad Request")
    assert detail in problem["detail"]
    assert vtn3.reports == vtn3.received_reports == []


async def test_auth_modes_and_token_expiry(vtn3: SimVtn3, http: aiohttp.ClientSession) -> None:
    vtn3.token_lifetime = 1
    bearer = await token(http, vtn3)
    vtn3.auth_mode = "403"
    assert (await get(http, vtn3, "/events", bearer))[0] == 403
    vtn3.auth_mode = "401"
    assert (await get(http, vtn3, "/events", bearer))[0] == 401
    async with http.post(vtn3.token_url, data={"grant_type": "client_credentials"}) as resp:
        assert resp.status == 401
    vtn3.auth_mode = "ok"
    assert (await get(http, vtn3, "/events", bearer))[0] == 200
    await asyncio.sleep(1.05)
    assert (await get(http, vtn3, "/events", bearer))[0] == 401
    fresh = await token(http, vtn3)
    vtn3.request_reregistration(DEFAULT_VEN_NAME)  # revokes every token of that VEN
    assert (await get(http, vtn3, "/events", fresh))[0] == 401


async def test_malformed_event_answers(vtn3: SimVtn3, http: aiohttp.ClientSession) -> None:
    bearer = await token(http, vtn3)
    headers = {"Authorization": f"Bearer {bearer}"}
    vtn3.add_event(level=1)
    sizes = {}
    for mode in ("json", "object", "huge"):
        vtn3.malformed = mode
        async with http.get(vtn3.url + "/events", headers=headers) as resp:
            sizes[mode] = len(await resp.read())
            if mode == "object":
                assert isinstance(await resp.json(), dict)
    assert sizes["json"] < 100
    assert sizes["huge"] == 20 * 1024 * 1024


async def test_restart_serves_the_same_events(vtn3: SimVtn3, http: aiohttp.ClientSession) -> None:
    bearer = await token(http, vtn3)
    event_id = vtn3.add_event(level=1)
    port = vtn3.port
    await vtn3.stop()
    await vtn3.start()
    assert vtn3.port == port
    assert [e["id"] for e in (await get(http, vtn3, "/events", bearer))[1]] == [event_id]


async def test_building_with_openadr_3_and_control_api(
    socket_enabled: None, http: aiohttp.ClientSession
) -> None:
    config = BuildingConfig(
        devices=1,
        routed_devices=1,
        base_ip="127.131.0.2",
        router_ip="127.131.1.1",
        network=13100,
        vtn_port=0,
        meter_port=0,
        openadr="3",
    )
    with pytest.raises(ValueError, match="openadr"):
        BuildingConfig(openadr="3.0")
    async with SimBuilding(config) as building:
        vtn = building.vtn
        assert isinstance(vtn, SimVtn3)
        client = TestClient(TestServer(build_app(building), host="127.0.0.1"))
        await client.start_server()
        try:
            info = (await (await client.get("/status")).json())["openadr"]
            assert info["token_url"] == vtn.token_url
            assert (info["client_id"], info["client_secret"]) == (
                DEFAULT_CLIENT_ID,
                DEFAULT_CLIENT_SECRET,
            )
            assert info["program_id"] == vtn.program_id
            resp = await client.post("/events", json={"level": 2, "duration": 600})
            event_id = (await resp.json())["event_id"]
            assert resp.status == 201
            [served] = (await get(http, vtn, "/events", await token(http, vtn)))[1]
            assert served["intervals"][0]["payloads"][0]["values"] == [2]
            assert await (await client.post(f"/events/{event_id}/cancel")).json()
            assert (await client.get("/events")).status == 200
        finally:
            await client.close()
        [event] = vtn.events()
        assert (event["event_id"], event["status"]) == (event_id, "cancelled")
