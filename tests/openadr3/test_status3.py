"""The 3.x VEN's status reports against the simulated 3.x VTN: the counterpart of 2.0b's
TELEMETRY_STATUS, sent on each active event when it starts and whenever the status changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from custom_components.loadshed_ven.engine.status import VenStatus
from custom_components.loadshed_ven.openadr.ven import Backoff
from custom_components.loadshed_ven.openadr3.ven import Ven3Connection, Ven3Settings
from sim.vtn3 import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_VEN_NAME, SimVtn3
from tests.vtn_fixtures import wait_for

FAST = Backoff(initial=0.05, maximum=0.2, jitter=0.1)
POLL = timedelta(seconds=0.1)
SHED = VenStatus(online=True, manual_override=False, level=2, curtailed=True)


class Building:
    """What the VEN's callbacks read: a status that the test changes."""

    def __init__(self) -> None:
        self.status: Any = SHED
        self.raises = False

    def read(self) -> VenStatus | None:
        if self.raises:
            raise RuntimeError("status unavailable")
        return self.status  # type: ignore[no-any-return]


@pytest.fixture
async def vtn(socket_enabled: None) -> AsyncIterator[SimVtn3]:
    server = SimVtn3()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def running(vtn: SimVtn3) -> AsyncIterator[tuple[Ven3Connection, Building]]:
    building = Building()
    async with aiohttp.ClientSession() as session:

        async def on_event(_view: Any) -> Any:
            return "optIn"

        ven = Ven3Connection(
            Ven3Settings(
                base_url=vtn.url,
                token_url=vtn.token_url,
                client_id=DEFAULT_CLIENT_ID,
                client_secret=DEFAULT_CLIENT_SECRET,
                ven_name=DEFAULT_VEN_NAME,
                poll_interval=POLL,
            ),
            session,
            on_event=on_event,
            status=building.read,
            backoff=FAST,
        )
        ven.start()
        try:
            await wait_for(lambda: ven.connected)
            yield ven, building
        finally:
            await ven.stop()


def _statuses(vtn: SimVtn3) -> list[tuple[bool, bool, int | None]]:
    return [(s.online, s.manual_override, s.level) for s in vtn.statuses]


async def test_the_status_is_sent_when_an_event_starts_and_when_it_changes(
    vtn: SimVtn3, running: tuple[Ven3Connection, Building]
) -> None:
    _ven, building = running
    assert vtn.statuses == []  # no event, no status
    vtn.add_event(level=2, duration=timedelta(minutes=30))
    await wait_for(lambda: _statuses(vtn) == [(True, False, 2)])
    status = vtn.statuses[0]
    assert (status.ven_id, status.resource_id) == (DEFAULT_VEN_NAME, "AGGREGATED_REPORT")
    body = next(b for b in vtn.received_reports if b["reportName"] == "status")
    payloads = body["resources"][0]["intervals"][0]["payloads"]
    assert payloads == [
        {"type": "OPERATING_STATE", "values": ["RUNNING_CURTAILED"]},
        {"type": "SIMPLE_LEVEL", "values": [2]},
    ]

    # Unchanged: nothing more. An operator's override: one more report.
    seen = len(vtn.statuses)
    await wait_for(lambda: len(vtn.requests) > 20)  # a few more polls
    assert len(vtn.statuses) == seen
    building.status = VenStatus(online=True, manual_override=True, level=2, curtailed=False)
    await wait_for(lambda: _statuses(vtn)[-1] == (True, True, 2))
    # A status report is not an opt: the opt reports stay the VEN's answers to the event.
    assert [o.opt_type for o in vtn.opts] == ["optIn"]


async def test_an_unknown_status_is_never_made_up(
    vtn: SimVtn3, running: tuple[Ven3Connection, Building]
) -> None:
    _ven, building = running
    building.status = None
    event_id = vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: any(o.event_id == event_id for o in vtn.opts))
    building.raises = True
    await wait_for(lambda: len(vtn.requests) > 20)
    assert vtn.statuses == []
    building.raises = False
    building.status = SHED
    await wait_for(lambda: _statuses(vtn) == [(True, False, 2)])
