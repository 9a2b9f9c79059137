"""What the VEN logs when registration fails, the VTN hangs or ends the registration."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from datetime import timedelta
from typing import Any

import pytest
from openleadr.messaging import create_message

from custom_components.loadshed_ven.openadr.guard import MAX_REPORT_REQUESTS
from custom_components.loadshed_ven.openadr.ven import VenConnection, VenSettings
from sim.vtn import SimVtn
from tests.openadr.conftest import FAST
from tests.openadr.raw_vtn import VEN_ID, RawVtn
from tests.vtn_fixtures import wait_for

pytestmark = pytest.mark.compat


async def opt_in(event: dict[str, Any]) -> Any:
    return "optIn"


def records(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level and text in r.getMessage()]


async def test_registration_failure_logged_once_at_warning(
    socket_enabled: None, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b"
    ven = VenConnection(VenSettings(url, "b"), asyncio.to_thread, on_event=opt_in, backoff=FAST)
    ven.start()
    try:
        await wait_for(lambda: ven.attempts >= 4)
    finally:
        await ven.stop()
    warnings = records(caplog, logging.WARNING, "Cannot register with the VTN (will retry)")
    assert len(warnings) == 1
    assert "Cannot connect" in warnings[0]


async def test_stop_during_unanswered_poll_logs_no_error(
    raw_vtn: RawVtn, caplog: pytest.LogCaptureFixture
) -> None:
    ven = VenConnection(
        VenSettings(raw_vtn.url, "b"), asyncio.to_thread, on_event=opt_in, backoff=FAST
    )
    ven.start()
    await wait_for(lambda: ven.connected)
    raw_vtn.hang = True
    polls = raw_vtn.polls
    await wait_for(lambda: raw_vtn.polls > polls)  # a poll is now waiting for its answer
    await asyncio.sleep(1.5)  # no second poll may start meanwhile
    assert raw_vtn.polls == polls + 1
    started = time.monotonic()
    await ven.stop()
    assert time.monotonic() - started < 3
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if "maximum number of running instances" in r.message]


async def test_cancelled_registration_is_logged_with_its_reason(
    raw_vtn: RawVtn, caplog: pytest.LogCaptureFixture
) -> None:
    ven = VenConnection(
        VenSettings(raw_vtn.url, "b"), asyncio.to_thread, on_event=opt_in, backoff=FAST
    )
    ven.start()
    try:
        await wait_for(lambda: ven.connected)
        raw_vtn.queue(
            create_message(
                "oadrCancelPartyRegistration",
                request_id="cancel-1",
                registration_id="reg-1",
                ven_id=VEN_ID,
            ).encode()
        )
        await wait_for(lambda: records(caplog, logging.WARNING, "Lost contact"))
        await wait_for(lambda: ven.connected)  # registered again
    finally:
        await ven.stop()
    [lost] = records(caplog, logging.WARNING, "Lost contact")
    assert lost.endswith("the VTN ended this VEN's registration")
    assert len(records(caplog, logging.INFO, "Connected to the VTN")) == 2


async def test_report_requests_are_bounded_and_deduplicated(vtn: SimVtn) -> None:
    ven = VenConnection(
        VenSettings(vtn.url, "b"),
        asyncio.to_thread,
        on_event=opt_in,
        meter_power=lambda: 1000.0,
        backoff=FAST,
    )
    ven.start()
    try:
        await wait_for(lambda: vtn.reports)
        client = ven._client
        assert client is not None
        [active] = client.report_requests or []
        specifier, r_ids = active["report_specifier_id"], active["r_ids"]

        def request(request_id: str, seconds: int) -> dict[str, Any]:
            return {
                "report_request_id": request_id,
                "report_specifier": {
                    "report_specifier_id": specifier,
                    "granularity": timedelta(seconds=seconds),
                    "report_back_duration": timedelta(seconds=seconds),
                    "specifier_payloads": [{"r_id": r_ids[0], "reading_type": "Direct Read"}],
                },
            }

        def report_jobs() -> int:
            return len([j for j in client.scheduler.get_jobs() if "update_report" in str(j.func)])

        # The same report at the same rate, requested again and again: one request, one job.
        same = [request(f"again-{i}", 2) for i in range(MAX_REPORT_REQUESTS)]
        await client.create_report({"request_id": "r1", "report_requests": same})
        assert [r["report_request_id"] for r in client.report_requests or []] == [
            f"again-{MAX_REPORT_REQUESTS - 1}"
        ]
        assert report_jobs() == 1
        # Many different rates: never more than MAX_REPORT_REQUESTS at once.
        for batch in range(3):
            rates = [request(f"rate-{batch}-{i}", 10 + batch * 10 + i) for i in range(8)]
            await client.create_report({"request_id": f"b{batch}", "report_requests": rates})
        assert len(client.report_requests or []) == MAX_REPORT_REQUESTS
        assert report_jobs() == MAX_REPORT_REQUESTS
        # Polling is the VEN's own task, not a scheduler job that could be skipped.
        assert not [j for j in client.scheduler.get_jobs() if "_poll" in str(j.func)]
    finally:
        await ven.stop()
