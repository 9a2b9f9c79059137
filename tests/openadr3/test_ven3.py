"""The running 3.x VEN against a loopback VTN: auth, boundaries, events, opts and meter reports."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from custom_components.loadshed_ven.openadr.errors import (
    VtnCannotConnect,
    VtnMessageRefused,
    VtnUnknownError,
)
from custom_components.loadshed_ven.openadr.ven import Backoff
from custom_components.loadshed_ven.openadr3.errors import (
    VtnCredentialsRefused,
    VtnForbidden,
    VtnProgramNotFound,
)
from custom_components.loadshed_ven.openadr3.ven import Ven3Connection, Ven3Settings, validate
from sim.vtn3 import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_VEN_NAME, SimVtn3
from tests.openadr3.fake_vtn import CLIENT_ID, CLIENT_SECRET, PROGRAM_ID, FakeVtn3
from tests.vtn_fixtures import wait_for

VEN_NAME = "ven-1"
FAST = Backoff(initial=0.05, maximum=0.2, jitter=0.1)
POLL = timedelta(seconds=0.1)


def iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def fake_event(
    event_id: str, *, level: int = 1, modified: str = "2026-12-04T09:00:00Z", **extra: Any
) -> dict[str, Any]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    return {
        "id": event_id,
        "objectType": "EVENT",
        "programID": PROGRAM_ID,
        "modificationDateTime": modified,
        "intervalPeriod": {"start": iso(start), "duration": "PT1H"},
        "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [level]}]}],
        **extra,
    }


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.id_sets: list[frozenset[str]] = []
        self.connected: list[bool] = []
        self.refused: list[VtnCredentialsRefused] = []
        self.power: float | None = 812_400.0

    async def on_event(self, view: Any) -> Any:
        self.events.append(dict(view))
        return "optIn"

    def ids(self) -> list[str]:
        return [e["event_descriptor"]["event_id"] for e in self.events]


@pytest.fixture
async def fake(socket_enabled: None) -> AsyncIterator[FakeVtn3]:
    server = FakeVtn3()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def session(socket_enabled: None) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def settings_for(fake: FakeVtn3, **overrides: Any) -> Ven3Settings:
    values: dict[str, Any] = {
        "base_url": fake.url,
        "token_url": fake.token_url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "ven_name": VEN_NAME,
        "program": "shed",
        "poll_interval": POLL,
    }
    values.update(overrides)
    return Ven3Settings(**values)


VenFactory = Callable[..., Awaitable[tuple[Ven3Connection, Recorder]]]


@pytest.fixture
async def make_ven(fake: FakeVtn3, session: aiohttp.ClientSession) -> AsyncIterator[VenFactory]:
    vens: list[Ven3Connection] = []

    async def factory(
        settings: Ven3Settings | None = None, *, meter: bool = True, wait: bool = True, **kw: Any
    ) -> tuple[Ven3Connection, Recorder]:
        rec = Recorder()
        ven = Ven3Connection(
            settings or settings_for(fake),
            session,
            on_event=rec.on_event,
            on_event_ids=rec.id_sets.append,
            on_connected=rec.connected.append,
            on_auth_refused=rec.refused.append,
            meter_power=(lambda: rec.power) if meter else None,
            backoff=FAST,
            **kw,
        )
        vens.append(ven)
        ven.start()
        if wait:
            await wait_for(lambda: ven.connected)
        return ven, rec

    yield factory
    for ven in vens:
        await ven.stop()
        assert ven._task is None


# ------------------------------------------------------------------ validate / auth


async def test_validate_finds_program_and_accepts_token_quirks(
    fake: FakeVtn3, session: aiohttp.ClientSession
) -> None:
    fake.token_field = "token"
    fake.token_lifetime = None
    info = await validate(settings_for(fake, scope="ven"), session)
    assert (info.ven_id, info.registration_id) == (VEN_NAME, PROGRAM_ID)
    assert fake.token_forms[0] == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scope": "ven",
    }
    every = await validate(settings_for(fake, program=None), session)
    assert every.registration_id == f"{PROGRAM_ID},prog-2"


async def test_validate_errors(fake: FakeVtn3, session: aiohttp.ClientSession) -> None:
    with pytest.raises(VtnCredentialsRefused, match="client id"):
        await validate(settings_for(fake, client_secret="wrong"), session)
    fake.token_status = 400  # invalid_client as a 400
    with pytest.raises(VtnCredentialsRefused):
        await validate(settings_for(fake), session)
    fake.token_status = 200
    with pytest.raises(VtnProgramNotFound, match="'nope'"):
        await validate(settings_for(fake, program="nope"), session)
    fake.resource_status = 403
    with pytest.raises(VtnForbidden, match="403"):
        await validate(settings_for(fake), session)
    fake.resource_status = None
    with pytest.raises(VtnCannotConnect):
        await validate(settings_for(fake, base_url=fake.url + "/wrong"), session)


async def test_token_refreshed_ahead_of_expiry(fake: FakeVtn3, make_ven: VenFactory) -> None:
    fake.token_lifetime = 1
    ven, _ = await make_ven()
    await wait_for(lambda: fake.tokens_issued >= 3, 5)
    assert ven.connected
    assert ven.last_error is None


async def test_token_renewed_once_on_401(fake: FakeVtn3, make_ven: VenFactory) -> None:
    ven, rec = await make_ven()
    issued = fake.tokens_issued
    fake.expire_tokens()
    await wait_for(lambda: fake.tokens_issued > issued)
    polls = len(fake.requests)
    await wait_for(lambda: len(fake.requests) > polls + 3)
    assert ven.connected
    assert ven.last_error is None
    assert rec.refused == []


async def test_refused_credentials_reported_and_retried(
    fake: FakeVtn3, make_ven: VenFactory
) -> None:
    ven, rec = await make_ven(settings_for(fake, client_secret="wrong"), wait=False)
    await wait_for(lambda: len(rec.refused) >= 2)
    assert not ven.connected
    assert ven.registration is None
    assert isinstance(ven.last_error, VtnCredentialsRefused)
    assert ven.attempts >= 2


async def test_persistent_401_refuses_credentials(fake: FakeVtn3, make_ven: VenFactory) -> None:
    ven, rec = await make_ven()
    fake.reject_tokens = True
    await wait_for(lambda: rec.refused)
    assert "even with a new access token" in str(rec.refused[0])
    await wait_for(lambda: not ven.connected)
    fake.reject_tokens = False
    await wait_for(lambda: ven.connected)


async def test_forbidden(fake: FakeVtn3, make_ven: VenFactory) -> None:
    ven, rec = await make_ven()
    fake.resource_status = 403
    await wait_for(lambda: not ven.connected)
    assert isinstance(ven.last_error, VtnForbidden)
    assert rec.refused == []


# ------------------------------------------------------------------ boundaries


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"[{not json", VtnUnknownError),
        (b'{"id": "ev-1"}', VtnUnknownError),
        (b"[" + b" " * (5 * 1024 * 1024) + b"]", VtnMessageRefused),
        (b"[" * 100_000 + b"]" * 100_000, VtnUnknownError),
    ],
    ids=["json", "object", "huge", "deep"],
)
async def test_bad_listing_is_a_failed_poll_not_a_cancel(
    fake: FakeVtn3, make_ven: VenFactory, body: bytes, error: type[Exception]
) -> None:
    fake.events = [fake_event("ev-1")]
    ven, rec = await make_ven()
    await wait_for(lambda: rec.id_sets == [frozenset({"ev-1"})])
    fake.events_body = body
    await wait_for(lambda: not ven.connected)
    assert isinstance(ven.last_error, error)
    assert rec.id_sets == [frozenset({"ev-1"})]
    fake.events_body = None
    await wait_for(lambda: ven.connected)
    assert rec.id_sets == [frozenset({"ev-1"})]
    assert rec.ids() == ["ev-1"]


async def test_big_body_decoded_by_executor(fake: FakeVtn3, make_ven: VenFactory) -> None:
    calls: list[int] = []

    async def run_blocking(job: Callable[[], Any]) -> Any:
        calls.append(1)
        return job()

    padding = "x" * 100_000
    fake.events = [fake_event("ev-1", eventName=padding)]
    _, rec = await make_ven(run_blocking=run_blocking)
    await wait_for(lambda: rec.ids() == ["ev-1"])
    assert calls


async def test_one_bad_event_among_good_ones(fake: FakeVtn3, make_ven: VenFactory) -> None:
    bad = fake_event("ev-bad", intervals="junk")
    fake.events = [fake_event("ev-1"), bad, "not an event", fake_event("ev-2", level=3)]
    _, rec = await make_ven()
    await wait_for(lambda: sorted(rec.ids()) == ["ev-1", "ev-2"])
    assert rec.id_sets[0] == frozenset({"ev-1", "ev-bad", "ev-2"})
    await wait_for(lambda: ("ev-bad", "RUNNING_OPTED_OUT") in fake.opts())
    assert ("ev-1", "RUNNING_NORMAL") in fake.opts()


async def test_pagination(fake: FakeVtn3, make_ven: VenFactory) -> None:
    fake.events = [fake_event(f"ev-{n:03}") for n in range(120)]
    _, rec = await make_ven(meter=False)
    await wait_for(lambda: len(rec.ids()) == 120)
    assert rec.id_sets[0] == frozenset(f"ev-{n:03}" for n in range(120))
    pages = [p for m, p in fake.requests if p.startswith("/openadr3/3.1.0/events")][:3]
    assert [("skip=0" in p, "skip=50" in p, "skip=100" in p) for p in pages] == [
        (True, False, False),
        (False, True, False),
        (False, False, True),
    ]
    assert all(f"programID={PROGRAM_ID}" in p for p in pages)


# ------------------------------------------------------------------ events and opts


async def test_changes_handled_once_per_version(fake: FakeVtn3, make_ven: VenFactory) -> None:
    fake.events = [fake_event("ev-1")]
    _, rec = await make_ven()
    await wait_for(lambda: len(fake.opts()) == 1)
    first = rec.events[0]["event_descriptor"]["modification_number"]
    # Same modificationDateTime, new content: the next number.
    fake.events = [fake_event("ev-1", level=2)]
    await wait_for(lambda: len(rec.events) == 2)
    assert rec.events[1]["event_descriptor"]["modification_number"] == first + 1
    await wait_for(lambda: len(fake.opts()) == 2)
    polls = len(fake.requests)
    await wait_for(lambda: len(fake.requests) > polls + 6)
    assert len(rec.events) == 2
    assert len(fake.opts()) == 2
    fake.events = []
    await wait_for(lambda: rec.id_sets[-1] == frozenset())


async def test_opt_out(fake: FakeVtn3, make_ven: VenFactory) -> None:
    fake.events = [fake_event("ev-1")]
    ven, _ = await make_ven()
    await wait_for(lambda: fake.opts() == [("ev-1", "RUNNING_NORMAL")])
    await ven.opt_out("ev-1")
    assert fake.opts()[-1] == ("ev-1", "RUNNING_OPTED_OUT")
    report = [r for r in fake.reports if r["reportName"] == "opt"][-1]
    assert report["programID"] == PROGRAM_ID
    assert report["clientName"] == VEN_NAME
    assert report["resources"][0]["resourceName"] == "AGGREGATED_REPORT"
    with pytest.raises(KeyError):
        await ven.opt_out("ev-unknown")


async def test_meter_reports(fake: FakeVtn3, make_ven: VenFactory) -> None:
    descriptors = [
        {"payloadType": "DEMAND", "readingType": "DIRECT_READ", "units": "KW"},
        {"payloadType": "USAGE"},
        {"payloadType": "PRICE"},
    ]
    fake.events = [
        fake_event("ev-1", reportDescriptors=descriptors),
        fake_event("ev-quiet"),
        fake_event(
            "ev-future",
            reportDescriptors=descriptors,
            intervalPeriod={"start": "2099-01-01T00:00:00Z", "duration": "PT1H"},
        ),
    ]
    ven, rec = await make_ven()
    await wait_for(lambda: len(fake.meter()) >= 4)
    assert set(fake.meter()) == {("ev-1", "KW", 812.4), ("ev-1", "W", 812_400.0)}
    assert ven.recent_reports[-1][1] == 812_400.0
    resource = next(r for r in fake.reports if r["reportName"] == "meter")["resources"][0]
    assert resource["resourceName"] == "main_meter"
    rec.power = None
    sent = len(fake.meter())
    polls = len(fake.requests)
    await wait_for(lambda: len(fake.requests) > polls + 4)
    assert len(fake.meter()) <= sent + 2  # at most one poll was already under way


async def test_no_meter_no_reports(fake: FakeVtn3, make_ven: VenFactory) -> None:
    fake.events = [fake_event("ev-1", reportDescriptors=[{"payloadType": "DEMAND"}])]
    ven, _ = await make_ven(meter=False)
    await wait_for(fake.opts)
    polls = len(fake.requests)
    await wait_for(lambda: len(fake.requests) > polls + 4)
    assert fake.meter() == []
    assert ven.recent_reports == ()


async def test_registration_and_stop(fake: FakeVtn3, make_ven: VenFactory) -> None:
    ven, rec = await make_ven()
    assert ven.registration is not None
    assert ven.registration.registration_id == PROGRAM_ID
    assert ven.registration.poll_interval == POLL
    assert ven.last_contact is not None
    await ven.stop()
    assert rec.connected[-1] is False
    with pytest.raises(VtnCannotConnect):
        await ven.send_opt("ev-1", "optIn")  # nothing held
    assert json.dumps(fake.programs)


# ------------------------------------------------------------------ the simulated 3.x VTN


async def test_life_cycle_with_the_simulated_vtn(
    socket_enabled: None, session: aiohttp.ClientSession
) -> None:
    vtn = SimVtn3()
    await vtn.start()
    rec = Recorder()
    ven = Ven3Connection(
        Ven3Settings(
            base_url=vtn.url,
            token_url=vtn.token_url,
            client_id=DEFAULT_CLIENT_ID,
            client_secret=DEFAULT_CLIENT_SECRET,
            ven_name=DEFAULT_VEN_NAME,
            program=vtn.program_name,
            poll_interval=POLL,
        ),
        session,
        on_event=rec.on_event,
        on_event_ids=rec.id_sets.append,
        meter_power=lambda: rec.power,
        backoff=FAST,
    )
    try:
        ven.start()
        await wait_for(lambda: ven.connected)
        event_id = vtn.add_event(level=2, duration=timedelta(minutes=30))
        await wait_for(lambda: rec.ids() == [event_id])
        first = rec.events[0]
        assert first["event_signals"][0]["intervals"][0]["signal_payload"] == 2
        await wait_for(lambda: [o.opt_type for o in vtn.opts] == ["optIn"])
        await wait_for(lambda: vtn.reports)  # the sim asks for DEMAND by default
        vtn.modify_event(event_id, level=3)
        await wait_for(lambda: len(rec.events) == 2)
        mods = [e["event_descriptor"]["modification_number"] for e in rec.events]
        assert mods[1] > mods[0]
        await ven.opt_out(event_id)
        assert vtn.opts[-1].opt_type == "optOut"
        vtn.cancel_event(event_id)
        await wait_for(lambda: rec.id_sets[-1] == frozenset())
        vtn.cancel_style = "zero"
        second = vtn.add_event(level=1)
        await wait_for(lambda: second in rec.ids())
        vtn.cancel_event(second)
        await wait_for(lambda: rec.events[-1]["event_descriptor"]["event_status"] == "cancelled")
    finally:
        await ven.stop()
        await vtn.stop()
