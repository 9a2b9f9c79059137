"""Exact bytes from the simulated VTN: a hostile or merely unusual VTN on loopback.

:class:`RawServing` lets ``SimVtn`` answer a VEN's next request to a service (oadrPoll by
default) with a queued body, byte for byte, instead of openleadr's own reply; registration and
everything else keep working normally. The helpers render valid 2.0b oadrDistributeEvent
messages with openleadr and then mutate their text the way a hostile VTN would (a DTD with an
internal entity, "billion laughs").
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from openleadr.messaging import create_message

from sim.vtn_events import SimEvent

__all__ = [
    "RawBody",
    "RawServing",
    "billion_laughs",
    "distribution_xml",
    "draft_event",
    "with_internal_entity",
]

XML_CONTENT_TYPE = "application/xml"
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class RawBody:
    """A body queued for (or served to) a VEN's request to ``service``."""

    service: str  # the last URL path segment: OadrPoll, EiEvent, EiRegisterParty, ...
    body: bytes
    ven_id: str | None = None  # None: whichever VEN asks first
    served_at: datetime | None = None


class RawServing:
    """The raw-body queue of ``SimVtn``: each queued body answers one matching request."""

    raw_served: list[RawBody]
    requests: Counter[str]  # every POST by service, served raw or not
    _raw_queue: deque[RawBody]

    def _init_raw(self) -> None:
        self.raw_served = []
        self.requests = Counter()
        self._raw_queue = deque()
        self._gate: asyncio.Event | None = None
        self.held = 0  # polls that waited at the gate so far

    def hold_polls(self, *, hold: bool = True) -> None:
        """Release the polls waiting at the gate; with ``hold``, make later polls wait.

        A held poll is answered once released, with whatever is queued by then. A test can
        thus check the VEN's state between two messages without waiting a poll interval.
        """
        if self._gate is not None:
            self._gate.set()
        self._gate = asyncio.Event() if hold else None

    def serve_raw(
        self,
        body: bytes | str,
        *,
        service: str = "OadrPoll",
        ven_id: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests to ``service`` (from ``ven_id``) with ``body``.

        The reply is HTTP 200 with content type application/xml, whatever the body holds.
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        raw = body.encode() if isinstance(body, str) else bytes(body)
        self._raw_queue.extend(RawBody(service, raw, ven_id) for _ in range(times))

    def clear_raw(self) -> None:
        """Forget every queued body that was not served yet."""
        self._raw_queue.clear()

    @property
    def raw_pending(self) -> int:
        """How many queued bodies are still waiting for a request."""
        return len(self._raw_queue)

    @web.middleware
    async def _raw_middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.method != "POST":
            return await handler(request)
        service = request.path.rsplit("/", 1)[-1]
        self.requests[service] += 1
        content = await request.read()  # cached: openleadr's handler reads it again
        queued = self._take(service, content)
        if queued is None and service == "OadrPoll" and (gate := self._gate) is not None:
            self.held += 1
            await gate.wait()
            queued = self._take(service, content)
        if queued is None:
            return await handler(request)
        self.raw_served.append(RawBody(service, queued.body, queued.ven_id, datetime.now(UTC)))
        return web.Response(body=queued.body, content_type=XML_CONTENT_TYPE)

    def _take(self, service: str, content: bytes) -> RawBody | None:
        """Remove and return the first body queued for this request, if any."""
        for item in self._raw_queue:
            wanted = item.ven_id is None or f">{item.ven_id}<".encode() in content
            if item.service == service and wanted:
                self._raw_queue.remove(item)
                return item
        return None


def draft_event(
    *,
    level: int = 1,
    duration: timedelta = timedelta(minutes=10),
    start: datetime | None = None,
    event_id: str | None = None,
    intervals: list[tuple[timedelta, int]] | None = None,
) -> SimEvent:
    """A SIMPLE event the VTN does not serve by itself: for rendering into a raw body."""
    return SimEvent.create(
        None,
        level=None if intervals is not None else level,
        intervals=intervals,
        duration=duration,
        start=start,
        start_after=None,
        test_event=False,
        response_required="always",
        priority=0,
        event_id=event_id,
    )


def distribution_xml(
    vtn_id: str,
    ven_id: str,
    events: Sequence[SimEvent | Any],
    *,
    market_context: str = "oadr://loadshed.sim",
    request_id: str = "raw-distribution",
) -> str:
    """An unsigned oadrDistributeEvent for ``ven_id`` listing ``events`` in the given order.

    Items are ``SimEvent`` (rendered as they are now) or ready ``openleadr.objects.Event``.
    """
    now = datetime.now(UTC)
    rendered = [
        event.to_openleadr(ven_id, market_context, now) if isinstance(event, SimEvent) else event
        for event in events
    ]
    return str(
        create_message("oadrDistributeEvent", request_id=request_id, vtn_id=vtn_id, events=rendered)
    )


_PAYLOAD = re.compile(r"<oadr:oadrPayload\b")


def _with_doctype(xml: str, internal_subset: str) -> str:
    match = _PAYLOAD.search(xml)
    if match is None:
        raise ValueError("not an oadrPayload")
    doctype = f"<!DOCTYPE oadr:oadrPayload [{internal_subset}]>\n"
    return xml[: match.start()] + doctype + xml[match.start() :]


def with_internal_entity(xml: str, text: str) -> str:
    """``xml`` with a DTD declaring entity ``a`` = ``text``, used in place of ``>text<``."""
    if f">{text}<" not in xml:
        raise ValueError(f"{text!r} is not a text node of the message")
    body = _with_doctype(xml, f'<!ENTITY a "{text}">')
    head, _, tail = body.partition(f">{text}<")
    return f"{head}>&a;<{tail}"


def billion_laughs(xml: str, depth: int = 10) -> str:
    """``xml`` with the classic exponential-entity DTD, the deepest entity before the vtnID."""
    entities = ['<!ENTITY lol0 "lol">']
    entities += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, depth)]
    body = _with_doctype(xml, "".join(entities))
    marker = "<ei:vtnID>"
    if marker not in body:
        raise ValueError("no vtnID to put the entity in")
    head, _, tail = body.partition(marker)
    return f"{head}{marker}&lol{depth - 1};{tail}"
