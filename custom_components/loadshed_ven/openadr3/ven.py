"""The product's OpenADR 3.x VEN: one long-lived polling session with a 3.x VTN.

:class:`Ven3Connection` has the public surface of the 2.0b ``VenConnection``: it logs in
(an OAuth2 token and the program list, retried with capped exponential backoff), then polls
``GET /events``, hands every new or changed event to one async callback in the engine's event
dict shape, reports its opt and live meter readings, and tracks connectivity, all in the
caller's event loop from one background task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import aiohttp

from ..engine.event_plan import CANCELLED
from ..engine.status import VenStatus
from ..openadr.errors import VtnCannotConnect, VtnError, VtnMessageRefused
from ..openadr.events import OptType, is_completed
from ..openadr.factory import RunBlocking
from ..openadr.guard import MAX_EVENTS_PER_MESSAGE
from ..openadr.registration import RegistrationInfo
from ..openadr.ven import Backoff
from .auth import TokenSource
from .errors import VtnCredentialsRefused, VtnForbidden, VtnProgramNotFound
from .events import event_id_of, refusal, to_engine_event
from .http import PAGE_SIZE, VtnHttp, find_programs, list_all
from .live_reports import HeldEvent, LiveReports
from .reports import opt_report

_LOGGER = logging.getLogger(__name__)

EventCallback = Callable[[Mapping[str, Any]], Awaitable[OptType]]
DEFAULT_RESOURCE_ID = "main_meter"
VALIDATE_TIMEOUT_SECONDS = 15.0
# Failures that new credentials or the VTN operator must fix: log in again, with backoff.
_LOGIN_AGAIN = (VtnCredentialsRefused, VtnForbidden, VtnProgramNotFound)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ven3Settings:
    """Where the VTN is and who this VEN is. ``program``: a name or id; None = every program."""

    base_url: str
    token_url: str
    client_id: str
    client_secret: str
    scope: str | None = None
    ven_name: str
    program: str | None = None
    poll_interval: timedelta = timedelta(seconds=30)


async def validate(
    settings: Ven3Settings,
    session: aiohttp.ClientSession,
    *,
    limit_seconds: float = VALIDATE_TIMEOUT_SECONDS,
) -> RegistrationInfo:
    """Get a token and find the program; raise a :class:`VtnError` subclass on failure."""
    auth = TokenSource(
        session, settings.token_url, settings.client_id, settings.client_secret, settings.scope
    )
    http = VtnHttp(session, settings.base_url, auth)
    try:
        async with asyncio.timeout(limit_seconds):
            await auth.token()
            programs = await find_programs(http, settings.program)
    except TimeoutError as err:
        raise VtnCannotConnect(f"The VTN did not answer within {limit_seconds:g} s.") from err
    return RegistrationInfo(settings.ven_name, ",".join(programs), settings.poll_interval)


class Ven3Connection:
    """A self-healing OpenADR 3.x VEN session with one VTN.

    The callbacks mean what they mean for the 2.0b ``VenConnection``: ``on_event(view)`` is
    awaited once per (event id, modification) and returns ``"optIn"`` or ``"optOut"``;
    ``on_event_ids`` gets every listed id whenever the set changes, after a complete
    listing only (an id that disappears is an implied cancellation); ``on_auth_refused`` hears
    every refusal of the client credentials (the connection keeps retrying).
    """

    def __init__(
        self,
        settings: Ven3Settings,
        session: aiohttp.ClientSession,
        *,
        on_event: EventCallback,
        on_event_ids: Callable[[frozenset[str]], None] | None = None,
        on_connected: Callable[[bool], None] | None = None,
        on_auth_refused: Callable[[VtnCredentialsRefused], None] | None = None,
        meter_power: Callable[[], float | None] | None = None,
        status: Callable[[], VenStatus | None] | None = None,
        resource_id: str = DEFAULT_RESOURCE_ID,
        backoff: Backoff | None = None,
        failures_before_offline: int = 2,
        run_blocking: RunBlocking | None = None,
    ) -> None:
        self._settings = settings
        self._on_event = on_event
        self._on_event_ids = on_event_ids
        self._on_connected = on_connected
        self._on_auth_refused = on_auth_refused
        self._resource_id = resource_id
        self._backoff = backoff or Backoff()
        self._failures_before_offline = max(1, failures_before_offline)
        self._auth = TokenSource(
            session, settings.token_url, settings.client_id, settings.client_secret, settings.scope
        )
        self._http = VtnHttp(session, settings.base_url, self._auth, run_blocking=run_blocking)
        self._task: asyncio.Task[None] | None = None
        self._programs: tuple[str, ...] | None = None
        self._held: dict[str, HeldEvent] = {}
        self._last_ids: frozenset[str] | None = None
        self._logged: set[object] = set()
        self._connected = False
        self._failures = 0
        self._problem: str | None = None
        self.last_contact: datetime | None = None
        self.last_error: VtnError | None = None
        self.attempts = 0
        self._live = LiveReports(
            self._http, settings.ven_name, resource_id, meter_power=meter_power, status=status
        )

    # ---------------------------------------------------------------- state

    @property
    def connected(self) -> bool:
        """Logged in, and the last exchanges with the VTN succeeded."""
        return self._connected

    @property
    def registration(self) -> RegistrationInfo | None:
        """This VEN's name, the polled program id(s) and the poll interval; None until known."""
        if self._programs is None:
            return None
        s = self._settings
        return RegistrationInfo(s.ven_name, ",".join(self._programs), s.poll_interval)

    @property
    def recent_reports(self) -> tuple[tuple[datetime, float], ...]:
        """The last meter values sent to the VTN, oldest first: (sample time, W)."""
        return tuple(self._live.recent)

    def _set_connected(self, value: bool, *, stopping: bool = False) -> None:
        if value == self._connected:
            return
        self._connected = value
        if value:
            _LOGGER.info("Connected to the OpenADR 3 VTN at %s", self._settings.base_url)
        elif not stopping:
            _LOGGER.warning(
                "Lost contact with the OpenADR 3 VTN at %s: %s",
                self._settings.base_url,
                self.last_error or "no usable reply",
            )
        if self._on_connected is not None:
            self._on_connected(value)

    def _contact(self) -> None:
        self.last_contact = datetime.now(UTC)
        self._failures = 0
        self._problem = None
        self._set_connected(True)

    def _failure(self, err: VtnError) -> None:
        self.last_error = err
        self._failures += 1
        if self._problem != str(err):
            self._problem = str(err)
            _LOGGER.warning("OpenADR 3 VTN exchange failed (will retry): %s", err)
        else:
            _LOGGER.debug("OpenADR 3 VTN exchange failed again: %s", err)
        if self._failures >= self._failures_before_offline:
            self._set_connected(False)
        if isinstance(err, VtnCredentialsRefused) and self._on_auth_refused is not None:
            self._on_auth_refused(err)

    # ---------------------------------------------------------- lifecycle

    def start(self) -> asyncio.Task[None]:
        """Start :meth:`run` as a task of the running loop and return it."""
        if self._task is not None and not self._task.done():
            raise RuntimeError("the VEN connection is already running")
        self._task = asyncio.get_running_loop().create_task(self.run(), name="openadr3 ven")
        return self._task

    async def run(self) -> None:
        """Log in (with backoff), then poll every poll interval; runs until cancelled."""
        current = asyncio.current_task()
        if self._task is not None and self._task is not current and not self._task.done():
            raise RuntimeError("the VEN connection is already running")
        self._task = current
        attempt = 0
        try:
            while True:
                try:
                    if self._programs is None:
                        self.attempts += 1
                        self._programs = await find_programs(self._http, self._settings.program)
                    await self._poll()
                except _LOGIN_AGAIN as err:
                    self._programs = None
                    self._failure(err)
                    delay = self._backoff.delay(attempt)
                    attempt += 1
                except VtnError as err:
                    self._failure(err)
                    if self._programs is None:  # not logged in yet: back off
                        delay = self._backoff.delay(attempt)
                        attempt += 1
                    else:
                        delay = self._settings.poll_interval.total_seconds()
                else:
                    attempt = 0
                    delay = self._settings.poll_interval.total_seconds()
                await asyncio.sleep(delay)
        finally:
            # A later run starts afresh, as a 2.0b VEN re-registers with a new event book.
            self._programs, self._held, self._last_ids = None, {}, None
            self._set_connected(False, stopping=True)

    async def stop(self) -> None:
        """Stop the background task; leaves no task or timer (the session is the caller's)."""
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._set_connected(False, stopping=True)

    # ---------------------------------------------------------- polling

    async def _poll(self) -> None:
        """One complete listing, then its events, then the meter readings they ask for."""
        listing: list[Any] = []
        # No program configured: one listing of every event this client may see.
        wanted = self._programs if self._settings.program is not None else ()
        for program_id in wanted or (None,):
            params = {} if program_id is None else {"programID": program_id}
            listing += await list_all(
                self._http, "/events", params, page=PAGE_SIZE, most=MAX_EVENTS_PER_MESSAGE
            )
            if len(listing) > MAX_EVENTS_PER_MESSAGE:
                raise VtnMessageRefused(
                    f"it lists more than {MAX_EVENTS_PER_MESSAGE:,} events", "events"
                )
        self._contact()
        await self._take(listing)
        await self._live.send(self._held)

    async def _take(self, listing: list[Any]) -> None:
        ids = frozenset(i for raw in listing if (i := event_id_of(raw)) is not None)
        if ids != self._last_ids and self._on_event_ids is not None:
            self._on_event_ids(ids)
        self._last_ids = ids
        kept: dict[str, HeldEvent] = {}
        logged: set[object] = set()
        for n, raw in enumerate(listing, 1):
            event_id = event_id_of(raw)
            if event_id is None:
                key = ("", n)
                logged.add(key)
                self._log_refused(key, None, refusal(to_engine_event(raw, "", None)))
                continue
            if event_id in kept:
                continue  # listed twice: the first one counts
            held = self._held.get(event_id)
            if held is None or not _same(held.raw, raw):
                held = await self._handle(event_id, raw, held)
            kept[event_id] = held
            if held.event is None:
                logged.add((event_id, held.mod))
            if not held.answered:
                await self._answer(event_id, held)
        self._held = kept
        self._logged &= logged  # a refusal is logged again after it left the list

    async def _handle(self, event_id: str, raw: object, held: HeldEvent | None) -> HeldEvent:
        previous = held.mod if held is not None else None
        translated = to_engine_event(raw, self._settings.ven_name, previous)
        program = raw.get("programID") if isinstance(raw, Mapping) else None
        program_id = program if isinstance(program, str) and program else None
        reason = refusal(translated)
        if reason is not None:
            self._log_refused((event_id, previous), event_id, reason)
            return HeldEvent(raw, program_id, previous, None, "optOut")
        opt: OptType = "optOut"
        try:
            # A read-only view, not a copy: an event may hold thousands of intervals.
            opt = await self._on_event(MappingProxyType(translated))
        except Exception:  # one failing event must not affect the others
            _LOGGER.exception("Handling event %r failed; opting out of it", event_id)
        if opt not in ("optIn", "optOut"):
            _LOGGER.error("Event %r got the answer %r; opting out of it", event_id, opt)
            opt = "optOut"
        await asyncio.sleep(0)  # many events in one listing: let other callbacks run
        mod = translated["event_descriptor"]["modification_number"]
        return HeldEvent(raw, program_id, mod, translated, opt)

    def _log_refused(self, key: object, event_id: str | None, reason: str | None) -> None:
        if key in self._logged:
            return
        self._logged.add(key)
        _LOGGER.warning("Refused event %r from the VTN: %s", event_id or "(no id)", reason)

    async def _answer(self, event_id: str, held: HeldEvent) -> None:
        """Send the opt for this event version (retried each poll until the VTN takes it)."""
        event = held.event
        if held.program_id is None or (
            event is not None
            and (event["event_descriptor"]["event_status"] == CANCELLED or is_completed(event))
        ):
            held.answered = True  # nothing to answer, or nowhere to file the answer
            return
        try:
            await self._send_opt_report(event_id, held)
        except VtnError as err:
            if not held.report_failed:
                _LOGGER.warning("Cannot send the opt for event %r (will retry): %s", event_id, err)
            held.report_failed = True

    async def _send_opt_report(self, event_id: str, held: HeldEvent) -> None:
        assert held.program_id is not None
        now = datetime.now(UTC)
        body = opt_report(
            program_id=held.program_id,
            event_id=event_id,
            client_name=self._settings.ven_name,
            opt=held.opt,
            now=now,
        )
        await self._http.post("/reports", body)
        held.answered = True

    # ---------------------------------------------------------- operator

    async def opt_out(self, event_id: str) -> None:
        """Tell the VTN this VEN no longer takes part in ``event_id``.

        Raises ``KeyError`` if the VEN does not hold that event and :class:`VtnError` when
        the VTN cannot be reached or refuses.
        """
        await self.send_opt(event_id, "optOut")

    async def send_opt(self, event_id: str, opt_type: OptType) -> None:
        """Change this VEN's opt for a held event (an OPERATING_STATE report)."""
        if self._programs is None:
            raise VtnCannotConnect("Not logged in to the VTN.")
        held = self._held.get(event_id)
        if held is None or held.event is None:
            raise KeyError(event_id)
        if held.program_id is None:
            raise VtnCannotConnect(f"The VTN gave event {event_id!r} no program id.")
        held.opt = opt_type
        held.answered = False
        await self._send_opt_report(event_id, held)


def _same(old: object, new: object) -> bool:
    """Whether an event's JSON is unchanged since the last poll."""
    try:
        return bool(old == new)
    except RecursionError:  # absurdly deep JSON: count it as changed (and refuse it)
        return False
