"""openleadr's ``OpenADRClient`` with the lifecycle and robustness fixes the VEN relies on.

openleadr 0.5.36 gives up after one registration attempt, cannot be restarted once stopped,
leaks report workers on re-registration, fails in ``stop()`` before ``run()``, lets malformed
VTN input escape its poll job and swallows every transport error into a log line. This
subclass keeps the library's message handling and replaces those parts:

* :meth:`VenClient.register` / :meth:`VenClient.start` replace ``run()``: registration raises a
  classified :class:`VtnError` instead of stopping the client.
* :meth:`VenClient._exchange` replaces the HTTP layer: it classifies failures, treats an empty
  200 body as contact, and tells the owner about every success, failure and parsed message.
* :meth:`VenClient.stop` works in any state and leaves no job, timer, worker or socket behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal
from xml.parsers.expat import ExpatError

import aiohttp
from apscheduler.jobstores.base import JobLookupError
from lxml.etree import XMLSyntaxError  # type: ignore[import-untyped]
from openleadr import OpenADRClient, utils
from openleadr.messaging import parse_message, validate_xml_schema

from ..engine.schedule import normalise_event_id
from .errors import (
    VtnCannotConnect,
    VtnError,
    VtnRegistrationRejected,
    VtnUnknownError,
    check_signature,
    http_status_error,
    transport_error,
)

_LOGGER = logging.getLogger(__name__)

OptType = Literal["optIn", "optOut"]
Message = tuple[str, dict[str, Any]]

DEFAULT_POLL = timedelta(seconds=10)
MAX_POLL = timedelta(hours=24)
# A job still running at stop() gets this long to finish before it is cancelled.
STOP_GRACE_SECONDS = 2.0
# What malformed VTN input raises inside openleadr's parser and event/report handling.
MALFORMED_INPUT_ERRORS = (AttributeError, KeyError, TypeError, ValueError, IndexError)


@dataclass(frozen=True, slots=True)
class RegistrationInfo:
    """The result of a successful registration."""

    ven_id: str
    registration_id: str
    poll_interval: timedelta


class ClientListener:
    """What a :class:`VenClient` reports to its owner. The default implementation ignores all."""

    def contact(self) -> None:
        """A request got a valid reply (or an empty 200) from the VTN."""

    def failure(self, error: VtnError) -> None:
        """A request failed; ``error`` says why."""

    def message(self, message_type: str, payload: dict[str, Any]) -> None:
        """A VTN message was validated and parsed (called before openleadr acts on it)."""

    def registration_lost(self) -> None:
        """The VTN asked for re-registration or cancelled it, and the VEN is not registered."""


class VenClient(OpenADRClient):  # type: ignore[misc]
    """An ``OpenADRClient`` that can be driven safely from Home Assistant's event loop.

    Construct it in an executor (the constructor reads files) and pre-set ``client_session``.
    """

    # Attributes of OpenADRClient this class relies on.
    ven_name: str
    ven_id: str | None
    vtn_url: str
    vtn_fingerprint: str | None
    registration_id: str | None
    poll_frequency: timedelta | None
    client_session: aiohttp.ClientSession | None
    scheduler: Any
    loop: asyncio.AbstractEventLoop
    reports: list[Any] | None
    report_requests: list[dict[str, Any]] | None
    incomplete_reports: dict[str, Any] | None
    pending_reports: asyncio.Queue[Any]
    received_events: list[dict[str, Any]]
    responded_events: dict[Any, str]
    events_clean_up_period: float

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.listener = ClientListener()
        self._workers: set[asyncio.Task[None]] = set()
        self._had_contact = False
        self._stopped = False
        self._logged: set[str] = set()

    # ------------------------------------------------------------------ transport

    async def _exchange(self, service: str, message: str) -> Message | None:
        """Send one message and return the parsed reply, or None for an empty 200 reply.

        Raises a :class:`VtnError`; the listener hears about the outcome either way.
        """
        try:
            reply = await self._exchange_unreported(service, message)
        except VtnError as err:
            self.listener.failure(err)
            raise
        self._had_contact = True
        self.listener.contact()
        if reply is not None:
            self.listener.message(*reply)
        return reply

    async def _exchange_unreported(self, service: str, message: str) -> Message | None:
        if self._stopped or self.client_session is None or self.client_session.closed:
            raise VtnCannotConnect("The VEN connection is stopped.")
        url = f"{self.vtn_url}/{service}"
        await self._execute_hooks("before_send_xml", message)
        try:
            async with self.client_session.post(url, data=message) as response:
                content: bytes = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            raise transport_error(err, url, had_contact=self._had_contact) from err
        await self._execute_hooks("after_receive_xml", content.decode("utf-8", "replace"))
        if status != 200:
            raise http_status_error(status, url)
        if not content:
            # openleadr VTNs answer an oadrResponse with an empty body (openleadr itself then
            # crashes unpacking None, client.py:1107).
            return None
        try:
            tree = validate_xml_schema(content)
        except XMLSyntaxError as err:
            raise VtnUnknownError(
                f"The VTN sent a message that is not OpenADR 2.0b: {err}"
            ) from err
        if self.vtn_fingerprint:
            check_signature(tree, self.vtn_fingerprint)
        try:
            message_type, payload = parse_message(content)
        except (ExpatError, *MALFORMED_INPUT_ERRORS) as err:
            raise VtnUnknownError(f"The VTN's message could not be parsed: {err!r}") from err
        await self._execute_hooks("after_parse_xml", message_type, payload)
        return str(message_type), payload

    async def _perform_request(self, service: str, message: str) -> tuple[str | None, Any]:
        """Transport entry point of openleadr: failures become ``(None, {})`` as before."""
        try:
            reply = await self._exchange(service, message)
        except VtnError:
            return None, {}
        return reply if reply is not None else (None, {})

    # --------------------------------------------------------------- registration

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

    async def start(self) -> None:
        """Register, offer reports, sync events, poll once and start the schedule.

        Replaces ``run()``; raises :class:`VtnError` when registration fails.
        """
        info = await self.register()
        await self.register_reports(self.reports)
        self._start_report_worker()
        await self.sync_events()
        await self._poll()
        self.scheduler.add_job(
            self._poll, trigger="interval", seconds=info.poll_interval.total_seconds()
        )
        # openleadr's _event_status_log job is left out on purpose: it rewrites event_status
        # in the event dicts (turning 'near' into 'far') and raises on non-UTC datetimes.
        self.scheduler.add_job(
            self._event_cleanup, trigger="interval", seconds=self.events_clean_up_period
        )
        self.scheduler.start()

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
        await self.register_reports(self.reports)
        self._start_report_worker()
        await self.sync_events()

    async def on_cancel_party_registration(self, message: dict[str, Any]) -> None:
        """Let openleadr answer the cancellation, then tell the owner if it took effect."""
        await super().on_cancel_party_registration(message)
        if self.registration_id is None:
            self.listener.registration_lost()

    # --------------------------------------------------------------------- events

    async def _poll(self) -> None:
        try:
            await super()._poll()
        except MALFORMED_INPUT_ERRORS as err:
            self._log_once("poll", err)

    async def _on_event(self, message: dict[str, Any]) -> None:
        try:
            await super()._on_event(message)
        except MALFORMED_INPUT_ERRORS as err:
            # e.g. a dtstart without 'Z' stays a str and breaks determine_event_status.
            self._log_once("event", err)

    async def _event_cleanup(self) -> None:
        try:
            await super()._event_cleanup()
        except MALFORMED_INPUT_ERRORS as err:
            self._log_once("cleanup", err)

    async def _on_report(self, payload: dict[str, Any]) -> None:
        """Reports from the VTN are not used (openleadr calls this without defining it)."""
        _LOGGER.debug("Ignoring an oadrUpdateReport from the VTN")

    def find_event(self, event_id: str) -> dict[str, Any] | None:
        """Return the held event dict whose (normalised) id is ``event_id``."""
        for event in self.received_events:
            descriptor = event.get("event_descriptor") or {}
            if normalise_event_id(descriptor.get("event_id")) == event_id:
                return dict(event)
        return None

    async def send_opt(self, event_id: str, opt_type: OptType) -> None:
        """Change this VEN's opt for a held event with an unsolicited oadrCreatedEvent.

        Later re-deliveries of the same modification repeat the new opt. Raises ``KeyError``
        for an event the VEN does not hold and :class:`VtnError` when the VTN does not accept it.
        """
        event = self.find_event(event_id)
        if event is None:
            raise KeyError(event_id)
        descriptor = event["event_descriptor"]
        raw_id = descriptor["event_id"]
        request_id = utils.generate_id()
        self.responded_events[raw_id] = opt_type
        message = self._create_message(
            "oadrCreatedEvent",
            response={"response_code": 200, "response_description": "OK", "request_id": request_id},
            event_responses=[
                {
                    "response_code": 200,
                    "response_description": "OK",
                    "request_id": request_id,
                    "event_id": raw_id,
                    "modification_number": descriptor.get("modification_number"),
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

    # -------------------------------------------------------------------- reports

    def _start_report_worker(self) -> None:
        if not self.reports:
            return
        task = self.loop.create_task(self._report_queue_worker(), name="openadr report sender")
        self._workers.add(task)
        task.add_done_callback(self._workers.discard)
        self.report_queue_task = task

    async def _report_queue_worker(self) -> None:
        """Send queued reports; a report without a single sample is not sent at all."""
        queue = self.pending_reports
        while True:
            report = await queue.get()
            if not report.intervals:
                continue
            message = self._create_message(
                "oadrUpdateReport",
                ven_id=self.ven_id,
                request_id=utils.generate_id(),
                reports=[report],
            )
            # A failed send is dropped, as in openleadr; the listener has been told.
            await self._perform_request("EiReport", message)

    def _drop_report_state(self) -> None:
        for request in self.report_requests or []:
            job = request.get("job")
            if job is not None:
                with contextlib.suppress(JobLookupError):
                    job.remove()
        self.report_requests = []
        self.incomplete_reports = {}
        self.pending_reports = asyncio.Queue()
        for task in self._workers:
            task.cancel()

    # -------------------------------------------------------------------- lifecycle

    async def stop(self) -> None:
        """Stop in any state: jobs finished or cancelled, workers cancelled, session closed."""
        self._stopped = True
        scheduler = self.scheduler
        if scheduler.running:
            scheduler.pause()
            executor = scheduler._executors.get("default")
            current = asyncio.current_task()
            pending = [
                future
                for future in getattr(executor, "_pending_futures", ())
                if future is not current and not future.done()
            ]
            if pending:
                _, late = await asyncio.wait(pending, timeout=STOP_GRACE_SECONDS)
                for future in late:
                    future.cancel()
                if late:
                    await asyncio.wait(late)
            scheduler.shutdown(wait=False)
            # AsyncIOScheduler.shutdown only schedules the real shutdown on the loop.
            await asyncio.sleep(0)
        workers = list(self._workers)
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        session = self.client_session
        if session is not None and not session.closed:
            await session.close()

    def _log_once(self, where: str, err: BaseException) -> None:
        key = f"{where}:{type(err).__name__}"
        if key in self._logged:
            _LOGGER.debug("Ignored malformed VTN input again (%s): %r", where, err)
            return
        self._logged.add(key)
        _LOGGER.warning("Ignored malformed VTN input (%s): %r", where, err)
