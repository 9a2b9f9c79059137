"""A simulated OpenADR 2.0b VTN on loopback, built on openleadr's ``OpenADRServer``.

It accepts any VEN, sends SIMPLE level events (add, modify, cancel, silently remove), records
every opt response, every TELEMETRY_USAGE value and every TELEMETRY_STATUS, and can ask a VEN to
re-register. With a :class:`SimTls` it serves HTTPS, requires a client certificate from the CA
and signs its messages.

Field behaviour on request: ``keep_listed`` keeps cancelled and completed events in every
distribution for that long (as production VTNs do), ``distribute_every_poll`` answers every
oadrPoll with the full event list, ``digit_ids`` numbers events with digits only (and ``vtn_id``
may be all digits too), and :meth:`SimVtn.serve_raw` answers a VEN with exact bytes.

openleadr keeps several settings as class attributes of ``VTNService`` (message signing,
``ven_lookup``, signature checks), so two servers in one process would overwrite each other.
This VTN restores those class attributes after construction and sets them per service instance.

openleadr 0.5.36 needs xmltodict 0.13's parse output; :meth:`SimVtn.start` installs the VTN's own
fix (:mod:`sim.openleadr_compat`) so it also works where xmltodict 1.x is installed.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import socket
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from aiohttp import web
from openleadr import OpenADRServer
from openleadr.service import OptService, VTNService

from sim import openleadr_compat
from sim.pki import SimTls
from sim.vtn_events import OptRecord, ReportRecord, SimEvent, VenRecord, to_json, whole_seconds
from sim.vtn_hooks import Message, ServiceHooks
from sim.vtn_raw import RawBody, RawServing
from sim.vtn_records import StatusRecord

__all__ = [
    "OptRecord",
    "RawBody",
    "ReportRecord",
    "SimTls",
    "SimVtn",
    "StatusRecord",
    "VenRecord",
    "to_json",
]

_LOGGER = logging.getLogger(__name__)
PATH_PREFIX = "/OpenADR2/Simple/2.0b"
_PER_INSTANCE = ("_create_message", "verify_message_signatures", "ven_lookup")


class SimVtn(ServiceHooks, RawServing):
    """An OpenADR 2.0b VTN (openleadr) on 127.0.0.0/8, controlled through Python methods."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        vtn_id: str = "SIMVTN",
        poll_interval: timedelta = timedelta(seconds=1),
        tls: SimTls | None = None,
        *,
        report_sampling: timedelta = timedelta(seconds=2),
        market_context: str = "oadr://loadshed.sim",
        keep_listed: timedelta | None = None,
        distribute_every_poll: bool = False,
        digit_ids: bool = False,
    ) -> None:
        """Configure the VTN; nothing is bound until :meth:`start`.

        ``keep_listed`` None is openleadr's own behaviour: a cancelled event is listed until the
        VEN answers it, a completed one once more. A timedelta keeps both in every distribution
        until that long after the cancellation or the end. These three options may also be set
        as attributes before :meth:`start`.
        """
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"host must be a loopback address, got {host}")
        self.host = host
        self.vtn_id = vtn_id
        self.poll_interval = whole_seconds(poll_interval, "poll_interval", 1)
        self.report_sampling = whole_seconds(report_sampling, "report_sampling", 1)
        self.tls = tls
        self.market_context = market_context
        if keep_listed is not None and keep_listed < timedelta():
            raise ValueError("keep_listed must not be negative")
        self.keep_listed = keep_listed
        self.distribute_every_poll = distribute_every_poll
        self.digit_ids = digit_ids
        self.reports: list[ReportRecord] = []
        self.statuses: list[StatusRecord] = []
        self.opts: list[OptRecord] = []
        self._port = port
        self._vens: dict[str, VenRecord] = {}
        self._events: dict[str, SimEvent] = {}
        self._reregister: set[str] = set()
        self._server: Any = None
        self._runner: web.AppRunner | None = None
        self._sock: socket.socket | None = None
        self._init_raw()

    # ----------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        """The TCP port (known before start only if given explicitly)."""
        return self._port

    @property
    def url(self) -> str:
        """The VTN URL a VEN is configured with, including the OpenADR path prefix."""
        if self._port == 0:
            raise RuntimeError("port 0 is resolved by start()")
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self._port}{PATH_PREFIX}"

    async def start(self) -> None:
        """Bind and serve. A pre-bound socket resolves port 0 without a bind race."""
        if self._runner is not None:
            raise RuntimeError("already started")
        # openleadr's parser breaks on xmltodict 1.x output; the fix is a no-op on 0.13.
        openleadr_compat.install()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Rebinding the same port right after stop() must not trip over TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        runner: web.AppRunner | None = None
        try:
            sock.bind((self.host, self._port))
            sock.listen(128)
            sock.setblocking(False)
            self._port = sock.getsockname()[1]
            self._server = server = self._build_server()
            runner = web.AppRunner(server.app, shutdown_timeout=2.0)
            await runner.setup()
            # openleadr's own run() prints a banner; serving the app directly avoids that.
            await web.SockSite(runner, sock, ssl_context=server.ssl_context).start()
        except BaseException:
            if runner is not None:
                await runner.cleanup()
            sock.close()
            raise
        self._sock, self._runner = sock, runner
        # After a restart the new openleadr server starts empty; known VENs keep their events.
        now = datetime.now(UTC)
        for event in self._events.values():
            for ven_id in list(event.copies):
                if event.status(now) in ("far", "active", "cancelled"):
                    self._publish(event, ven_id)
        _LOGGER.info("VTN %s serving at %s", self.vtn_id, self.url)

    async def stop(self) -> None:
        """Close every connection and the listening socket. Safe to call twice.

        Registrations, events, opts and reports are kept: :meth:`start` serves them again on
        the same port, like a VTN restart with a persistent database.
        """
        self.hold_polls(hold=False)  # a held poll must not keep the shutdown waiting
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _build_server(self) -> Any:
        """Create the openleadr server and wrap the handlers this VTN needs to observe.

        Wrapped: oadrPoll (re-registration requests, empty distribute after a removal),
        oadrRequestEvent (no second delivery of the same list), oadrCreatedEvent (record every
        opt, drop replies to superseded modifications), oadrUpdateReport (statuses). EiOpt is
        routed here because openleadr's server leaves it out.
        """
        tls = self.tls
        saved = {
            name: VTNService.__dict__[name] for name in _PER_INSTANCE if name in vars(VTNService)
        }
        try:
            server = OpenADRServer(
                vtn_id=self.vtn_id,
                cert=str(tls.vtn_cert) if tls else None,
                key=str(tls.vtn_key) if tls else None,
                passphrase=tls.passphrase if tls else None,
                show_fingerprint=False,
                http_port=self._port,
                http_host=self.host,
                http_cert=str(tls.vtn_cert) if tls else None,
                http_key=str(tls.vtn_key) if tls else None,
                http_ca_file=str(tls.ca_cert) if tls else None,
                http_key_passphrase=tls.passphrase if tls else None,
                http_path_prefix=PATH_PREFIX,
                requested_poll_freq=self.poll_interval,
                ven_lookup=self._ven_lookup,
                verify_message_signatures=True,
            )
            create_message = VTNService._create_message
        finally:
            for name in _PER_INSTANCE:
                if name in saved:
                    setattr(VTNService, name, saved[name])
                elif name in vars(VTNService):
                    delattr(VTNService, name)
        server.app.middlewares.append(self._raw_middleware)
        opt_service = OptService(self.vtn_id)
        server.app.router.add_post(f"{PATH_PREFIX}/EiOpt", opt_service.handler)
        for service in (*server.services.values(), opt_service):
            service._create_message = create_message
            service.verify_message_signatures = True
            service.ven_lookup = self._ven_lookup
        server.add_handler("on_create_party_registration", self._on_register)
        server.add_handler("on_cancel_party_registration", self._on_cancel_registration)
        server.add_handler("on_register_report", self._on_register_report)
        events = server.services["event_service"]
        poll = server.services["poll_service"]
        events.handlers["oadrCreatedEvent"] = partial(
            self._on_created_event, events.handlers["oadrCreatedEvent"]
        )
        events.handlers["oadrRequestEvent"] = partial(
            self._on_request_event, events.handlers["oadrRequestEvent"]
        )
        poll.handlers["oadrPoll"] = partial(self._on_poll, poll.handlers["oadrPoll"])
        report = server.services["report_service"]
        report.handlers["oadrUpdateReport"] = partial(
            self._on_update_report, report.handlers["oadrUpdateReport"]
        )
        opt_service.handlers["oadrCreateOpt"] = self._on_create_opt
        opt_service.handlers["oadrCancelOpt"] = self._on_cancel_opt
        return server

    # -------------------------------------------------------------- registration

    @staticmethod
    def ven_id_for(ven_name: str) -> str:
        """Return the ven_id this VTN assigns to a VEN that registers with ``ven_name``."""
        return "ven-" + hashlib.sha256(ven_name.encode()).hexdigest()[:12]

    def registered_vens(self) -> list[VenRecord]:
        """Return snapshots of the registered VENs."""
        return [replace(ven) for ven in self._vens.values()]

    def request_reregistration(self, ven_id: str) -> None:
        """Answer the VEN's next oadrPoll with oadrRequestReregistration."""
        if ven_id not in self._vens:
            raise KeyError(f"unknown ven_id {ven_id}")
        self._reregister.add(ven_id)

    def _ven_lookup(self, ven_id: str) -> dict[str, Any] | None:
        # openleadr asks unknown VENs to re-register and checks TLS fingerprints against this.
        ven = self._vens.get(ven_id)
        if ven is None:
            return None
        return {
            "ven_id": ven.ven_id,
            "ven_name": ven.ven_name,
            "fingerprint": ven.fingerprint,
            "registration_id": ven.registration_id,
        }

    def _on_register(self, payload: dict[str, Any]) -> tuple[str, str] | bool:
        name = str(payload.get("ven_name") or "")
        ven_id = str(payload.get("ven_id") or self.ven_id_for(name))
        presented = payload.get("fingerprint")
        if self.tls is not None:
            expected = self.tls.ven_fingerprint
            if presented is None or (expected is not None and presented != expected):
                _LOGGER.warning("Rejected VEN %r: certificate fingerprint %s", name, presented)
                return False
        registration_id = uuid.uuid4().hex
        now = datetime.now(UTC)
        if (ven := self._vens.get(ven_id)) is not None:
            ven.registration_id, ven.ven_name, ven.registered_at = registration_id, name, now
            ven.fingerprint = presented
            ven.registrations += 1
        else:
            self._vens[ven_id] = VenRecord(ven_id, name, registration_id, presented, now)
        self._reregister.discard(ven_id)
        for event in self._events.values():
            wanted = ven_id not in event.copies and event.target in (None, ven_id, name)
            if wanted and event.status(now) in ("far", "active"):
                self._publish(event, ven_id)
        _LOGGER.info("Registered VEN %r as %s", name, ven_id)
        return ven_id, registration_id

    def _on_cancel_registration(self, payload: dict[str, Any]) -> Message:
        ven = self._vens.pop(str(payload.get("ven_id")), None)
        registration_id = ven.registration_id if ven else payload.get("registration_id")
        return "oadrCanceledPartyRegistration", {
            "ven_id": payload.get("ven_id"),
            "registration_id": registration_id,
        }
