"""The product's OpenADR 2.0b VEN: one long-lived connection to the VTN.

:class:`VenConnection` registers (retrying with capped exponential backoff while the VTN is
down), polls, hands every new or changed event to one async callback, reports real power and
the resource status, tracks connectivity and re-registers when the VTN asks, all in the
caller's event loop and from a single background task.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from ..engine.status import VenStatus
from .client import ClientListener, VenClient
from .errors import (
    VtnCannotConnect,
    VtnClientCertRefused,
    VtnError,
    VtnFingerprintMismatch,
    VtnMessageRefused,
    VtnRegistrationRejected,
    VtnTlsError,
    VtnUnknownError,
)
from .events import EventBook, OptType
from .factory import (
    RunBlocking,
    VenSettings,
    create_client,
    normalise_fingerprint,
    validate,
    ven_fingerprint,
)
from .readings import Reading, watts
from .registration import RegistrationInfo
from .status_report import add_power_report, add_status_report, install
from .xml_compat import parse_message

__all__ = [
    "Backoff",
    "OptType",
    "RegistrationInfo",
    "RunBlocking",
    "VenConnection",
    "VenSettings",
    "VtnCannotConnect",
    "VtnClientCertRefused",
    "VtnError",
    "VtnFingerprintMismatch",
    "VtnMessageRefused",
    "VtnRegistrationRejected",
    "VtnTlsError",
    "VtnUnknownError",
    "normalise_fingerprint",
    "validate",
    "ven_fingerprint",
]

_LOGGER = logging.getLogger(__name__)
_RANDOM = random.SystemRandom()

EventCallback = Callable[[Mapping[str, Any]], Awaitable[OptType]]
DEFAULT_RESOURCE_ID = "main_meter"
# A registration that has not finished by then is abandoned and retried.
START_TIMEOUT_SECONDS = 60.0
# How many report values sent to the VTN are kept for diagnostics.
RECENT_REPORTS = 50


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with proportional jitter, in seconds."""

    initial: float = 5.0
    maximum: float = 300.0
    factor: float = 2.0
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        """Return the wait before retry number ``attempt`` (0 for the first retry)."""
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        return max(0.0, base * (1 + _RANDOM.uniform(-self.jitter, self.jitter)))


class VenConnection(ClientListener):
    """A self-healing OpenADR 2.0b VEN session with one VTN.

    ``on_event(raw_event)`` is awaited for every new event and every new modification
    (including cancellations); it gets a read-only view of the normalised event dict and must return
    ``"optIn"`` or ``"optOut"`` quickly, because it runs inside the poll. It is called once per
    (event id, modification number); one event's failure never affects another. ``on_event_ids``
    gets the normalised ids of an oadrDistributeEvent whenever they differ from the previous
    list, before the events are handled (an id that disappears is an implied cancellation).
    ``meter_power`` returns the latest real power in W, or None when unknown (no
    sample is then reported). ``status`` returns the resource status for a TELEMETRY_STATUS
    report, or None when unknown (no status is then reported). ``on_connected`` is called
    whenever :attr:`connected` changes.
    ``on_cert_refused`` hears every refusal of the VEN's client certificate (it keeps retrying).
    """

    def __init__(
        self,
        settings: VenSettings,
        run_blocking: RunBlocking,
        *,
        on_event: EventCallback,
        on_event_ids: Callable[[frozenset[str]], None] | None = None,
        on_connected: Callable[[bool], None] | None = None,
        on_cert_refused: Callable[[VtnClientCertRefused], None] | None = None,
        meter_power: Callable[[], float | None] | None = None,
        status: Callable[[], VenStatus | None] | None = None,
        resource_id: str = DEFAULT_RESOURCE_ID,
        backoff: Backoff | None = None,
        failures_before_offline: int = 2,
        start_timeout: float = START_TIMEOUT_SECONDS,
    ) -> None:
        self._settings = settings
        self._run_blocking = run_blocking
        self._on_event = on_event
        self._on_event_ids = on_event_ids
        self._on_connected = on_connected
        self._on_cert_refused = on_cert_refused
        self._meter_power = meter_power
        self._status = status
        self._resource_id = resource_id
        self._backoff = backoff or Backoff()
        self._failures_before_offline = max(1, failures_before_offline)
        self._start_timeout = start_timeout
        self._client: VenClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._lost: asyncio.Event | None = None
        self._connected = False
        self._failures = 0
        self._power = Reading(meter_power, watts, "meter")
        # The registration failure last warned about, so a repeated one is not logged again.
        self._registration_problem: str | None = None
        # Kinds of refused VTN messages warned about; shared by every client of this VEN.
        self._refused_warned: set[str] = set()
        self.last_contact: datetime | None = None
        self.last_error: VtnError | None = None
        self.attempts = 0
        self._recent_reports: deque[tuple[datetime, float]] = deque(maxlen=RECENT_REPORTS)

    # ---------------------------------------------------------------- state

    @property
    def connected(self) -> bool:
        """Registered, and the last exchanges with the VTN succeeded."""
        return self._connected

    @property
    def registration(self) -> RegistrationInfo | None:
        """The current registration, or None while not registered."""
        client = self._client
        if client is None or client.registration_id is None or client.poll_frequency is None:
            return None
        return RegistrationInfo(
            str(client.ven_id), str(client.registration_id), client.poll_frequency
        )

    @property
    def recent_reports(self) -> tuple[tuple[datetime, float], ...]:
        """The last report values sent to the VTN, oldest first: (sample time, W)."""
        return tuple(self._recent_reports)

    def _set_connected(
        self, value: bool, *, stopping: bool = False, reason: str | None = None
    ) -> None:
        if value == self._connected:
            return
        self._connected = value
        if value:
            _LOGGER.info("Connected to the VTN at %s", self._settings.vtn_url)
        elif not stopping:
            _LOGGER.warning(
                "Lost contact with the VTN at %s: %s",
                self._settings.vtn_url,
                reason or self.last_error or "no usable reply",
            )
        if self._on_connected is not None:
            self._on_connected(value)

    # ------------------------------------------------------ ClientListener

    def contact(self) -> None:
        """Record a successful exchange."""
        self.last_contact = datetime.now(UTC)
        self._failures = 0
        client = self._client
        if client is not None and client.registration_id is not None and client.scheduler.running:
            self._set_connected(True)

    def failure(self, error: VtnError) -> None:
        """Record a failed exchange; enough in a row mean offline."""
        self.last_error = error
        self._failures += 1
        _LOGGER.debug("VTN exchange failed: %s", error)
        if self._failures >= self._failures_before_offline:
            self._set_connected(False)
        if isinstance(error, VtnClientCertRefused) and self._on_cert_refused is not None:
            self._on_cert_refused(error)

    def registration_lost(self) -> None:
        """Wake the supervisor to build a fresh client (never stop from inside a poll job)."""
        self._set_connected(False, reason="the VTN ended this VEN's registration")
        if self._lost is not None:
            self._lost.set()

    # ---------------------------------------------------------- callbacks

    async def _handle_event(self, event: dict[str, Any]) -> OptType:
        try:
            # A read-only view, not a copy: copying a day of one-minute intervals took tens of
            # milliseconds of the event loop on every new event.
            view = MappingProxyType(event) if isinstance(event, dict) else event
            result = await self._on_event(view)
        except Exception:  # a failing handler must not stop the poll
            _LOGGER.exception("The event handler failed; opting out of the event")
            return "optOut"
        if result not in ("optIn", "optOut"):
            _LOGGER.error("The event handler returned %r; opting out of the event", result)
            return "optOut"
        return result

    def _sample(self) -> list[tuple[datetime, float]]:
        """The meter sample for a report: a list, empty when the value is unknown."""
        value = self._power()
        return [] if value is None else [(datetime.now(UTC), value)]

    def _record_report(self, message: str) -> None:
        """Keep the values of an oadrUpdateReport about to be sent (read from the message)."""
        if "oadrUpdateReport" not in message:
            return
        try:
            message_type, payload = parse_message(message)
            if message_type != "oadrUpdateReport":
                return
            values = [
                (interval["dtstart"], float(interval["report_payload"]["value"]))
                for report in payload.get("reports") or []
                for interval in report.get("intervals") or []
                if "value" in interval["report_payload"]  # not a status
            ]
        except Exception:  # diagnostics must never break reporting
            _LOGGER.debug("Could not read the values of a report sent to the VTN", exc_info=True)
            return
        self._recent_reports.extend(values)

    # ---------------------------------------------------------- lifecycle

    def start(self) -> asyncio.Task[None]:
        """Start :meth:`run` as a task of the running loop and return it."""
        if self._task is not None and not self._task.done():
            raise RuntimeError("the VEN connection is already running")
        task = asyncio.get_running_loop().create_task(self.run(), name="openadr ven")
        self._task = task
        return task

    async def run(self) -> None:
        """Register (with backoff), then serve; rebuild the client when registration is lost.

        Runs until cancelled. Cancel the task running it, or call :meth:`stop`.
        """
        current = asyncio.current_task()
        if self._task is not None and self._task is not current and not self._task.done():
            raise RuntimeError("the VEN connection is already running")
        self._task = current
        attempt = 0
        try:
            while True:
                lost = asyncio.Event()
                self._lost = lost
                if await self._connect():
                    attempt = 0
                    await lost.wait()
                    _LOGGER.debug("Registration with the VTN lost; registering again")
                    await self._drop_client()
                    # Back off here too, so a VTN that keeps dropping the VEN is not hammered.
                delay = self._backoff.delay(attempt)
                attempt += 1
                _LOGGER.debug("Next registration attempt in %.1f s", delay)
                await asyncio.sleep(delay)
        finally:
            await self._drop_client()
            self._set_connected(False, stopping=True)

    async def _connect(self) -> bool:
        """One registration attempt with a fresh client; True once registered and polling."""
        self.attempts += 1
        if self._status is not None:
            await self._run_blocking(install)  # once; blocking: reads openleadr's templates
        try:
            client = await create_client(self._settings, self._run_blocking)
        except VtnError as err:
            self._attempt_failed(err)
            return False
        client.listener = self
        client.book = EventBook(self._handle_event, self._on_event_ids)
        client.refused_warned = self._refused_warned
        if self._meter_power is not None:
            add_power_report(client, self._sample, self._resource_id)
            client.add_hook("before_send_xml", self._record_report)
        if self._status is not None:
            add_status_report(client, self._status, self._resource_id)
        self._client = client
        try:
            async with asyncio.timeout(self._start_timeout):
                await client.start()
        except VtnError as err:
            await self._drop_client()
            self._attempt_failed(err)
            return False
        except TimeoutError:
            await self._drop_client()
            self._attempt_failed(VtnCannotConnect("The registration with the VTN timed out."))
            return False
        self.last_error = None
        self._registration_problem = None
        self._set_connected(True)
        _LOGGER.info(
            "Registered with the VTN as %s, polling every %s", client.ven_id, client.poll_frequency
        )
        return True

    def _attempt_failed(self, err: VtnError) -> None:
        # Not compared with last_error: failure() has already stored this very error there.
        self.last_error = err
        if self._registration_problem != str(err):
            self._registration_problem = str(err)
            _LOGGER.warning("Cannot register with the VTN (will retry): %s", err)
        else:
            _LOGGER.debug("Registration attempt %d failed: %s", self.attempts, err)

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.stop()

    async def stop(self) -> None:
        """Stop the background task and the client; leaves no task, timer or socket."""
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._drop_client()
        self._set_connected(False, stopping=True)

    # ---------------------------------------------------------- operator

    async def opt_out(self, event_id: str) -> None:
        """Tell the VTN this VEN no longer takes part in ``event_id``.

        Raises ``KeyError`` if the VEN does not hold that event and :class:`VtnError` when
        the VTN cannot be reached or refuses.
        """
        await self.send_opt(event_id, "optOut")

    async def send_opt(self, event_id: str, opt_type: OptType) -> None:
        """Change this VEN's opt for a held event (oadrCreatedEvent)."""
        client = self._client
        if client is None or client.registration_id is None:
            raise VtnCannotConnect("Not registered with the VTN.")
        await client.send_opt(event_id, opt_type)
