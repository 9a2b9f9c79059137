"""Polling and the event exchange of :class:`~.client.VenClient` (a base class of it).

openleadr's poll job and event dispatch are replaced here: polling is an asyncio task of its
own (a slow poll delays the next one, never skips it, and logs no APScheduler noise), and an
oadrDistributeEvent goes to the :class:`EventBook`, which handles each event on its own and
answers in one oadrCreatedEvent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Any
from xml.sax.saxutils import escape

from openleadr import OpenADRClient, utils

from .errors import VtnError, VtnUnknownError
from .events import EventBook, OptType

_LOGGER = logging.getLogger(__name__)

Message = tuple[str, dict[str, Any]]
RunBlocking = Callable[[Callable[[], Any]], Awaitable[Any]]
DEFAULT_POLL = timedelta(seconds=10)
# Above this many responses, the oadrCreatedEvent is rendered in an executor.
INLINE_RENDER_RESPONSES = 50


class EventExchange(OpenADRClient):  # type: ignore[misc]
    """Poll loop, oadrDistributeEvent handling and opt messages; transport is the subclass's."""

    book: EventBook
    run_blocking: RunBlocking
    ven_id: str | None
    vtn_fingerprint: str | None
    poll_frequency: timedelta | None

    async def _exchange(self, service: str, message: str) -> Message | None:
        raise NotImplementedError

    def _log_once(self, where: str, err: BaseException) -> None:
        raise NotImplementedError

    async def _poll(self) -> None:
        """One oadrPoll and the handling of its reply (openleadr's dispatch, own handlers)."""
        message = self._create_message("oadrPoll", ven_id=self.ven_id)
        message_type, payload = await self._perform_request("OadrPoll", message)
        if message_type == "oadrDistributeEvent":
            await self._on_event(payload)
            return
        self.book.not_listed()
        if message_type == "oadrRequestReregistration":
            _LOGGER.info("The VTN asked this VEN to register again")
            await self.send_response(service="EiRegisterParty")
            await self.create_party_reregistration()
        elif message_type == "oadrCreateReport":
            if "report_requests" in payload:
                await self.create_report(payload)
        elif message_type == "oadrCancelPartyRegistration":
            await self.on_cancel_party_registration(payload)
        elif message_type == "oadrCancelReport":
            await self.cancel_report(payload)
        elif message_type == "oadrRegisterReport":
            # Reports from the VTN are not used; acknowledge without requesting any.
            reply = self._create_message(
                "oadrRegisteredReport",
                report_requests=[],
                ven_id=self.ven_id,
                response={
                    "response_code": 200,
                    "response_description": "OK",
                    "request_id": payload.get("request_id"),
                },
            )
            await self._perform_request("EiReport", reply)
        elif message_type not in (None, "oadrResponse", "oadrUpdateReport"):
            _LOGGER.debug("Ignoring a %s from the VTN", message_type)

    async def _poll_safely(self) -> None:
        try:
            await self._poll()
        except VtnError:
            pass  # the listener has been told
        except Exception as err:  # noqa: BLE001 - the poll must go on whatever the VTN sends
            self._log_once("poll", err)

    async def _poll_loop(self) -> None:
        """Poll every ``poll_frequency``, start to start; a late poll is never skipped."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await self._poll_safely()
            interval = (self.poll_frequency or DEFAULT_POLL).total_seconds()
            await asyncio.sleep(max(0.0, started + interval - loop.time()))

    async def sync_events(self) -> None:
        """Ask the VTN for its event list (oadrRequestEvent) and handle it."""
        message = self._create_message(
            "oadrRequestEvent",
            request_id=utils.generate_id(),
            ven_id=self.ven_id,
            reply_limit=None,
        )
        message_type, payload = await self._perform_request("EiEvent", message)
        if message_type == "oadrDistributeEvent":
            await self._on_event(payload)

    async def _on_event(self, message: dict[str, Any]) -> None:
        """Handle an oadrDistributeEvent and send the answers it needs in one message."""
        responses = await self.book.distribute(message)
        if not responses:
            return
        render = partial(
            self._create_message,
            "oadrCreatedEvent",
            response={
                "response_code": 200,
                "response_description": "OK",
                "request_id": message.get("request_id"),
            },
            event_responses=responses,
            ven_id=self.ven_id,
        )
        if len(responses) > INLINE_RENDER_RESPONSES or self.vtn_fingerprint:
            answer = await self.run_blocking(render)
        else:
            answer = render()
        try:
            reply = await self._exchange("EiEvent", answer)
        except VtnError:
            return  # not confirmed: answered again on the next listing
        code = ((reply[1].get("response") or {}) if reply else {}).get("response_code", 200)
        if code == 200:
            self.book.confirm([(r["event_id"], r["modification_number"]) for r in responses])

    async def send_opt(self, event_id: str, opt_type: OptType) -> None:
        """Change this VEN's opt for a held event with an unsolicited oadrCreatedEvent.

        Later re-deliveries of the same modification repeat the new opt. Raises ``KeyError``
        for an event the VEN does not hold and :class:`VtnError` when the VTN does not accept it.
        """
        held = self.book.find(event_id)
        if held is None:
            raise KeyError(event_id)
        raw_id = held.raw_event_id
        request_id = utils.generate_id()
        self.book.set_opt(event_id, opt_type)
        message = self._create_message(
            "oadrCreatedEvent",
            response={"response_code": 200, "response_description": "OK", "request_id": request_id},
            event_responses=[
                {
                    "response_code": 200,
                    "response_description": "OK",
                    "request_id": request_id,
                    "event_id": escape(raw_id),
                    "modification_number": held.key[1],
                    "opt_type": opt_type,
                }
            ],
            ven_id=self.ven_id,
        )
        reply = await self._exchange("EiEvent", message)
        response = (reply[1].get("response") or {}) if reply is not None else {}
        code = response.get("response_code", 200)
        if code != 200:
            raise VtnUnknownError(
                f"The VTN refused {opt_type} for event {event_id}: "
                f"{code} {response.get('response_description')}"
            )
