"""openleadr's ``OpenADRClient`` with the lifecycle and robustness fixes the VEN relies on.

openleadr 0.5.36 gives up after one registration attempt, cannot be restarted once stopped,
leaks report workers on re-registration, fails in ``stop()`` before ``run()``, lets malformed
VTN input escape its poll job and swallows every transport error into a log line. This
subclass keeps the library's message handling and replaces those parts:

* :meth:`VenClient.register` / :meth:`VenClient.start` replace ``run()``: registration raises a
  classified :class:`VtnError` instead of stopping the client (:mod:`.registration`).
* :meth:`VenClient._exchange` replaces the HTTP layer: it classifies failures, treats an empty
  200 body as contact, and tells the owner about every success, failure and parsed message.
* :meth:`VenClient.receive` is the one entry point for VTN bytes: the guard, then schema,
  signature and parsing (in an executor when the body is large or signed), then the hooks.
* oadrDistributeEvent goes to an :class:`EventBook`, which handles each event on its own.
* Polling is this client's own task, not an APScheduler job, so a slow poll or a busy loop
  can delay a poll but never skip one; report requests are bounded and deduplicated.
* :meth:`VenClient.stop` works in any state and leaves no job, timer, worker or socket behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

import aiohttp
from openleadr import utils

from . import reports
from .decoding import EventKey, decode
from .errors import (
    VtnCannotConnect,
    VtnError,
    VtnMessageRefused,
    http_status_error,
    transport_error,
)
from .event_exchange import Message, RunBlocking
from .events import EventBook, OptType
from .guard import check_body
from .registration import RegistrationExchange

_LOGGER = logging.getLogger(__name__)


# A job still running at stop() gets this long to finish before it is cancelled.
STOP_GRACE_SECONDS = 2.0
# Bodies up to this size are decoded in the loop (about 1 ms per 2 KB); larger ones and signed
# ones (an RSA check costs ~120 ms) in an executor.
INLINE_DECODE_BYTES = 16 * 1024


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


async def _in_thread(job: Callable[[], Any]) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, job)


def _check_and_decode(
    content: bytes, fingerprint: str | None, known: frozenset[EventKey]
) -> Message:
    check_body(content)
    return decode(content, fingerprint, known)


class VenClient(RegistrationExchange):
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

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.listener = ClientListener()
        self.book = EventBook(_opt_out)
        # Set by the owner: how to run blocking work (Home Assistant's executor).
        self.run_blocking: RunBlocking = _in_thread
        # Kinds of refused messages already warned about; the owner may share one set.
        self.refused_warned: set[str] = set()
        self._workers: set[asyncio.Task[None]] = set()
        self._poll_task: asyncio.Task[None] | None = None
        self._had_contact = False
        self._stopped = False
        self._logged: set[str] = set()
        self.add_hook("before_send_xml", self._repair_report_requests)

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
            raise http_status_error(status, url, registration=service == "EiRegisterParty")
        return await self.receive(content)

    async def receive(self, content: bytes) -> Message | None:
        """Turn a body from the VTN into ``(message_type, payload)``; None for an empty body.

        Nothing parses the body before :func:`guard.check_body` accepted it. Raises
        :class:`VtnMessageRefused` for a refused body (one WARNING per kind of refusal) and
        other :class:`VtnError` subclasses for invalid, unsigned or unreadable messages.
        """
        if not content:
            # openleadr VTNs answer an oadrResponse with an empty body (openleadr itself then
            # crashes unpacking None, client.py:1107).
            return None
        await self._execute_hooks("before_schema_validation", content.decode("utf-8", "replace"))
        job = partial(_check_and_decode, content, self.vtn_fingerprint, self.book.known())
        try:
            if len(content) > INLINE_DECODE_BYTES or self.vtn_fingerprint:
                message_type, payload = await self.run_blocking(job)
            else:
                message_type, payload = job()
        except VtnMessageRefused as err:
            self._warn_refused(err)
            raise
        if self.refused_warned:
            self.refused_warned.clear()
            _LOGGER.info("Messages from the VTN at %s are accepted again", self.vtn_url)
        if message_type == "oadrDistributeEvent":
            self.book.fill_known(payload)
        await self._execute_hooks("after_parse_xml", message_type, payload)
        return message_type, payload

    def _warn_refused(self, err: VtnMessageRefused) -> None:
        if err.kind in self.refused_warned:
            _LOGGER.debug("Refused another message from the VTN: %s", err.reason)
            return
        self.refused_warned.add(err.kind)
        _LOGGER.warning(
            "Refused a message from the VTN at %s: %s. Nothing in it was used.",
            self.vtn_url,
            err.reason,
        )

    async def _perform_request(self, service: str, message: str) -> tuple[str | None, Any]:
        """Transport entry point of openleadr: failures become ``(None, {})`` as before."""
        try:
            reply = await self._exchange(service, message)
        except VtnError:
            return None, {}
        return reply if reply is not None else (None, {})

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

    async def create_report(self, response_payload: dict[str, Any]) -> None:
        """Serve the VTN's report requests, deduplicated and bounded (openleadr does the rest)."""
        if self.report_requests is None:
            return  # the registration was cancelled
        response_payload["report_requests"] = reports.dedupe(
            list(response_payload.get("report_requests") or []), self.report_requests
        )
        await super().create_report(response_payload)
        reports.enforce_limit(self.report_requests)

    def _repair_report_requests(self, message: str) -> None:
        """Each report request keeps its own report's r_ids (see ``reports.keep_own_r_ids``)."""
        if "oadrCreatedReport" in message:
            reports.keep_own_r_ids(list(self.reports or []), list(self.report_requests or []))

    def _drop_report_state(self) -> None:
        for request in self.report_requests or []:
            reports.drop_request(request)
        self.report_requests = []
        self.incomplete_reports = {}
        self.pending_reports = asyncio.Queue()
        for task in self._workers:
            task.cancel()

    # -------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Register, offer reports, sync events, poll once and start the schedule.

        Replaces ``run()``; raises :class:`VtnError` when registration fails.
        """
        await self.register()
        await self.register_reports(self.reports)
        self._start_report_worker()
        await self.sync_events()
        # openleadr's _event_status_log and _event_cleanup jobs are left out on purpose: they
        # rewrite event_status in the event dicts and raise on odd dates. APScheduler now only
        # runs the report jobs.
        self.scheduler.start()
        self._poll_task = self.loop.create_task(self._poll_loop(), name="openadr poll")

    async def stop(self) -> None:
        """Stop in any state: jobs finished or cancelled, workers cancelled, session closed."""
        self._stopped = True
        poll, self._poll_task = self._poll_task, None
        if poll is not None and poll is not asyncio.current_task():
            poll.cancel()
            await asyncio.gather(poll, return_exceptions=True)
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


async def _opt_out(event: dict[str, Any]) -> OptType:
    """Event handler of a client whose owner did not set one."""
    return "optOut"
