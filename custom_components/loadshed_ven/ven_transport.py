"""The one face both OpenADR transports show the integration, and the choice between them.

:class:`~.openadr.ven.VenConnection` (2.0b: XML over HTTP(S), openleadr) and
:class:`~.openadr3.ven.Ven3Connection` (3.x: REST + JSON, OAuth2) hand events over in the same
normalised form, answer with an opt, report the meter and say whether the VTN is reachable;
everything above them (the inbox, the engine, the entities) does not know which one runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any, Protocol

from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .engine.status import VenStatus
from .openadr.errors import VtnError
from .openadr.events import OptType
from .openadr.registration import RegistrationInfo
from .openadr.ven import VenConnection
from .openadr3.ven import Ven3Connection
from .tls import TlsFiles
from .vtn_settings import VtnSettings


class VenTransport(Protocol):
    """What the integration uses of a VEN connection, whichever OpenADR version it speaks."""

    last_contact: datetime | None
    last_error: VtnError | None
    attempts: int

    @property
    def connected(self) -> bool:
        """Registered (2.0b) or logged in (3.x), and the last exchanges succeeded."""

    @property
    def registration(self) -> RegistrationInfo | None:
        """Who the VTN knows this VEN as, and how often it polls; None until then."""

    @property
    def recent_reports(self) -> tuple[tuple[datetime, float], ...]:
        """The last meter values sent to the VTN: (sample time, W), oldest first."""

    async def run(self) -> None:
        """Connect (with backoff) and serve until cancelled."""

    async def stop(self) -> None:
        """Stop serving; leaves no task, timer or socket."""

    async def send_opt(self, event_id: str, opt_type: OptType) -> None:
        """Tell the VTN whether this VEN takes part in ``event_id``."""


class VenCallbacks(Protocol):
    """Where a transport delivers what it hears (the entry's :class:`~.vtn_inbox.VtnInbox`)."""

    async def handle_event(self, raw: Mapping[str, Any]) -> OptType:
        """A new or changed event; returns the opt."""

    def handle_event_ids(self, ids: AbstractSet[str]) -> None:
        """Every event the VTN lists now; one missing is an implied cancel."""

    def handle_connection(self, connected: bool) -> None:
        """Contact with the VTN changed."""

    def handle_auth_refused(self, err: VtnError) -> None:
        """The VTN refused this VEN's credentials (certificate or client secret)."""


def create_transport(
    hass: HomeAssistant,
    vtn: VtnSettings,
    files: TlsFiles,
    inbox: VenCallbacks,
    *,
    meter_power: Callable[[], float | None],
    status: Callable[[], VenStatus | None],
) -> VenTransport:
    """The transport for the entry's OpenADR version, wired to ``inbox``; not started.

    ``meter_power`` is the live power in W and ``status`` the building's status, each None
    when unknown (nothing is then reported).
    """
    on_event: Callable[[Mapping[str, Any]], Awaitable[OptType]] = inbox.handle_event
    if vtn.ven3 is not None:
        return Ven3Connection(
            vtn.ven3,
            async_get_clientsession(hass),
            run_blocking=hass.async_add_executor_job,
            on_event=on_event,
            on_event_ids=inbox.handle_event_ids,
            on_connected=inbox.handle_connection,
            on_auth_refused=inbox.handle_auth_refused,
            meter_power=meter_power,
            status=status,
        )
    return VenConnection(
        vtn.ven(files),
        hass.async_add_executor_job,
        on_event=on_event,
        on_event_ids=inbox.handle_event_ids,
        on_connected=inbox.handle_connection,
        on_cert_refused=inbox.handle_auth_refused,
        meter_power=meter_power,
        status=status,
    )
