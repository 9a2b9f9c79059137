"""Registration with the VTN for :class:`~.client.VenClient` (a base class of it).

openleadr's ``run()`` gives up after one failed registration; here :meth:`register` raises a
classified :class:`VtnError` instead, so the owner can retry. Re-registration and the VTN's
cancellation drop the old report state first, so no report job or worker outlives its
registration.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from openleadr import utils

from .errors import VtnError, VtnRegistrationRejected, VtnUnknownError
from .event_exchange import DEFAULT_POLL, EventExchange

if TYPE_CHECKING:
    from .client import ClientListener

_LOGGER = logging.getLogger(__name__)

MAX_POLL = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class RegistrationInfo:
    """The result of a successful registration."""

    ven_id: str
    registration_id: str
    poll_interval: timedelta


class RegistrationExchange(EventExchange):
    """Registration, re-registration and cancellation; reports and transport are the subclass's."""

    ven_name: str
    registration_id: str | None
    loop: asyncio.AbstractEventLoop
    listener: ClientListener

    def _start_report_worker(self) -> None:
        raise NotImplementedError

    def _drop_report_state(self) -> None:
        raise NotImplementedError

    async def register(self, registration_id: str | None = None) -> RegistrationInfo:
        """Query the VTN and register this VEN; raise :class:`VtnError` on any failure.

        On success ``ven_id``, ``registration_id`` and ``poll_frequency`` are the VTN's values.
        """
        self.loop = asyncio.get_running_loop()
        query = self._create_message("oadrQueryRegistration", request_id=utils.generate_id())
        await self._exchange("EiRegisterParty", query)
        message = self._create_message(
            "oadrCreatePartyRegistration",
            request_id=utils.generate_id(),
            ven_name=self.ven_name,
            ven_id=self.ven_id,
            http_pull_model=True,
            xml_signature=False,
            report_only=False,
            profile_name="2.0b",
            transport_name="simpleHttp",
            transport_address=None,
            registration_id=registration_id,
        )
        reply = await self._exchange("EiRegisterParty", message)
        message_type, payload = reply if reply is not None else ("", {})
        if message_type != "oadrCreatedPartyRegistration":
            raise VtnUnknownError(
                f"The VTN answered the registration with {message_type or 'an empty reply'}."
            )
        response = payload.get("response") or {}
        code = response.get("response_code")
        if code != 200 or not payload.get("registration_id") or not payload.get("ven_id"):
            detail = f" (code {code}: {response.get('response_description')})" if code else ""
            raise VtnRegistrationRejected(
                f"The VTN did not register VEN {self.ven_name!r}{detail}. Check that the VTN "
                "knows this VEN's name and certificate fingerprint."
            )
        if self.ven_id and payload["ven_id"] != self.ven_id:
            _LOGGER.info("The VTN assigned venID %s instead of %s", payload["ven_id"], self.ven_id)
        self.ven_id = str(payload["ven_id"])
        self.registration_id = str(payload["registration_id"])
        poll = payload.get("requested_oadr_poll_freq")
        if not isinstance(poll, timedelta) or poll <= timedelta(0):
            poll = DEFAULT_POLL
        # APScheduler floors intervals at 1 s; openleadr caps polling at 24 h.
        self.poll_frequency = min(max(poll, timedelta(seconds=1)), MAX_POLL)
        return RegistrationInfo(self.ven_id, self.registration_id, self.poll_frequency)

    async def create_party_reregistration(self, registration_id: str | None = None) -> None:
        """Re-register on the VTN's request without leaking the old report jobs and workers."""
        self._drop_report_state()
        try:
            await self.register(registration_id or self.registration_id)
        except VtnError as err:
            _LOGGER.warning("Re-registration with the VTN failed: %s", err)
            self.registration_id = None
            self.listener.registration_lost()
            return
        _LOGGER.info("Re-registered with the VTN as %s", self.ven_id)
        self.book.forget_answers()
        await self.register_reports(self.reports)
        self._start_report_worker()
        await self.sync_events()

    async def on_cancel_party_registration(self, message: dict[str, Any]) -> None:
        """Answer the VTN's cancellation; tell the owner when it ended this registration.

        Replaces openleadr's handler, whose ``logger.info(type, payload)`` call fails.
        """
        if self.registration_id is None:
            return
        ours = message.get("registration_id") == self.registration_id
        code = 200 if ours else 452
        reply = self._create_message(
            "oadrCanceledPartyRegistration",
            response={
                "response_code": code,
                "response_description": "OK" if ours else "ERROR",
                "request_id": message.get("request_id"),
            },
            ven_id=self.ven_id,
            registration_id=self.registration_id,
        )
        if ours:
            self._drop_report_state()
            self.registration_id = None
        await self._perform_request("EiRegisterParty", reply)
        if ours:
            self.listener.registration_lost()
