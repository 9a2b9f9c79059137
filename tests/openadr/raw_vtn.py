"""A minimal VTN on loopback that serves exact bytes, for the VEN's byte-boundary tests.

Registration, report registration and opt responses are answered with valid 2.0b messages
rendered by openleadr; oadrPoll and oadrRequestEvent are answered with queued raw bodies (or a
body repeated on every poll), so a test decides every byte the VEN receives.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from openleadr import objects
from openleadr.messaging import create_message, parse_message

PREFIX = "/OpenADR2/Simple/2.0b"
VEN_ID = "ven-raw"
PROFILES = [{"profile_name": "2.0b", "transports": [{"transport_name": "simpleHttp"}]}]


def _ok(request_id: str | None = None) -> dict[str, Any]:
    return {"response_code": 200, "response_description": "OK", "request_id": request_id}


def event(
    event_id: str,
    *,
    level: float = 1.0,
    modification_number: int = 0,
    status: str = "active",
    start: datetime | None = None,
    intervals: int = 1,
    interval: timedelta = timedelta(minutes=10),
) -> Any:
    """A SIMPLE level event as openleadr renders it."""
    start = start or datetime.now(UTC) - timedelta(minutes=1)
    return objects.Event(
        event_descriptor=objects.EventDescriptor(
            event_id=event_id,
            modification_number=modification_number,
            market_context="oadr://raw",
            event_status=status,
            created_date_time=start,
        ),
        active_period=objects.ActivePeriod(dtstart=start, duration=interval * intervals),
        event_signals=[
            objects.EventSignal(
                intervals=[
                    objects.Interval(
                        dtstart=start + interval * i,
                        duration=interval,
                        signal_payload=level,
                        uid=i,
                    )
                    for i in range(intervals)
                ],
                signal_name="SIMPLE",
                signal_type="level",
                signal_id=f"{event_id}-simple",
            )
        ],
        targets=[objects.Target(ven_id=VEN_ID)],
        response_required="always",
    )


def distribution(events: list[Any], *, vtn_id: str = "RAWVTN", request_id: str = "dist-1") -> bytes:
    """An oadrDistributeEvent body listing ``events``."""
    return create_message(
        "oadrDistributeEvent",
        request_id=request_id,
        response=_ok(request_id),
        vtn_id=vtn_id,
        events=events,
    ).encode()


class RawVtn:
    """The VTN. ``queue`` bodies for the next polls; ``repeat`` one for every later poll."""

    def __init__(self) -> None:
        self.polls = 0
        self.queued: deque[bytes] = deque()
        self.repeat: bytes | None = None
        self.hang = False
        self._closing = asyncio.Event()
        self.created_events: list[dict[str, Any]] = []
        self.created_bodies: list[bytes] = []
        self.received: list[str] = []
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def url(self) -> str:
        """The VTN URL with the OpenADR path prefix."""
        return f"http://127.0.0.1:{self._port}{PREFIX}"

    def queue(self, body: bytes) -> None:
        """Serve ``body`` on one of the next polls (in order)."""
        self.queued.append(body)

    async def start(self) -> None:
        """Bind 127.0.0.1 on a free port and serve."""
        app = web.Application()
        app.router.add_post(PREFIX + "/{service}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Stop serving."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _reply(self, message_type: str, **payload: Any) -> web.Response:
        body = create_message(message_type, **payload)
        return web.Response(body=body.encode(), content_type="application/xml")

    async def _handle(self, request: web.Request) -> web.StreamResponse:  # noqa: PLR0911
        raw = await request.read()
        message_type, payload = parse_message(raw)
        self.received.append(message_type)
        request_id = payload.get("request_id")
        if message_type == "oadrQueryRegistration":
            return self._reply(
                "oadrCreatedPartyRegistration",
                response=_ok(request_id),
                ven_id=None,
                registration_id=None,
                profiles=PROFILES,
                requested_oadr_poll_freq=timedelta(seconds=1),
            )
        if message_type == "oadrCreatePartyRegistration":
            return self._reply(
                "oadrCreatedPartyRegistration",
                response=_ok(request_id),
                ven_id=VEN_ID,
                registration_id="reg-1",
                profiles=PROFILES,
                requested_oadr_poll_freq=timedelta(seconds=1),
            )
        if message_type == "oadrRegisterReport":
            return self._reply(
                "oadrRegisteredReport", response=_ok(request_id), ven_id=VEN_ID, report_requests=[]
            )
        if message_type == "oadrCreatedEvent":
            self.created_events.append(payload)
            self.created_bodies.append(raw)
            return self._reply("oadrResponse", response=_ok(), ven_id=VEN_ID)
        if message_type in ("oadrPoll", "oadrRequestEvent"):
            if message_type == "oadrPoll":
                self.polls += 1
            if self.hang:
                await self._closing.wait()  # never answer while the test runs
            if self.queued:
                body = self.queued.popleft()
            elif self.repeat is not None:
                body = self.repeat
            else:
                return self._reply("oadrResponse", response=_ok(), ven_id=VEN_ID)
            return web.Response(body=body, content_type="application/xml")
        logging.getLogger(__name__).info("raw VTN: %s answered with an empty body", message_type)
        return web.Response(body=b"", content_type="application/xml")

    def responses(self) -> list[tuple[str, int, str, int]]:
        """Every event response received: (event id, modification, opt, response code)."""
        return [
            (
                str(r["event_id"]),
                int(r["modification_number"]),
                str(r["opt_type"]),
                int(r["response_code"]),
            )
            for message in self.created_events
            for r in message.get("event_responses") or []
        ]
