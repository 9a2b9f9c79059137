"""A simulated OpenADR 3.1.0 VTN on loopback: OAuth2 client credentials, programs, events, reports.

Same Python event API as the 2.0b :class:`sim.vtn.SimVtn` (events are kept by
:class:`sim.vtn3_events.EventStore3`), so tests, the demo and the control API drive either one.
Endpoints under ``url`` (``/openadr3/3.1.0``): ``POST /auth/token`` (form or HTTP Basic client
credentials), ``GET /auth/server``, ``GET /programs``, ``GET /events``, ``GET /vens``,
``POST /reports``. Every request is logged in ``requests``.

Field behaviour, settable while running: ``auth_mode`` "401" refuses every request (the token
too), "403" refuses every resource; ``token_lifetime`` short forces refreshes (an expired token
gets 401); ``malformed`` makes ``GET /events`` answer invalid JSON ("json"), a JSON object
("object") or a 20 MB body ("huge"); ``cancel_style = "zero"`` cancels the User Guide's way;
``target_format = "3.0.1"`` sends targets as valuesMaps; ``page_limit`` caps a page silently;
:meth:`SimVtn3.serve_raw` answers the next event listings with exact bytes (a hostile VTN).
Malformed reports get 400 with a problem body, so a VEN bug shows up in tests.
"""

from __future__ import annotations

import binascii
import hashlib
import ipaddress
import json
import logging
import secrets
import socket
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import BasicAuth, web

from sim.vtn3_events import DEFAULT_REPORT_DESCRIPTORS, EventStore3, RequestError, parse_report
from sim.vtn_event_model import SimEvent, whole_seconds
from sim.vtn_records import OptRecord, ReportRecord, StatusRecord, VenRecord, iso

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "DEFAULT_VEN_NAME", "SimVtn3"]

_LOGGER = logging.getLogger(__name__)
PATH_PREFIX = "/openadr3/3.1.0"
TOKEN_PATH = "/auth/token"  # noqa: S105 - a path, not a secret
DEFAULT_CLIENT_ID = "loadshed-ven"
DEFAULT_CLIENT_SECRET = "sim-secret"  # noqa: S105 - a loopback simulator's published secret
DEFAULT_VEN_NAME = "loadshed-ven"
HUGE_BYTES = 20 * 1024 * 1024

type _Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class _Client:
    secret: str
    ven_name: str
    first_token_at: datetime | None = None
    tokens: int = 0
    live: set[str] = field(default_factory=set)


def problem(status: int, title: str, detail: str = "") -> web.Response:
    """An RFC 7807 problem answer, as 3.x VTNs send for refused requests."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return web.json_response(body, status=status, content_type="application/problem+json")


class SimVtn3(EventStore3):
    """An OpenADR 3.1.0 VTN (aiohttp) on 127.0.0.0/8, controlled through Python methods."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        poll_interval: timedelta = timedelta(seconds=1),
        program_name: str = "loadshed-sim",
        clients: dict[str, tuple[str, str]] | None = None,
        keep_listed: timedelta | None = None,
    ) -> None:
        """Configure the VTN; nothing is bound until :meth:`start`.

        ``clients`` maps client_id -> (client_secret, ven_name); the default is one client
        :data:`DEFAULT_CLIENT_ID` / :data:`DEFAULT_CLIENT_SECRET` named :data:`DEFAULT_VEN_NAME`.
        ``poll_interval`` is kept for symmetry with ``SimVtn``: 3.x VENs choose their own.
        """
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"host must be a loopback address, got {host}")
        if keep_listed is not None and keep_listed < timedelta():
            raise ValueError("keep_listed must not be negative")
        self.host = host
        self.poll_interval = whole_seconds(poll_interval, "poll_interval", 1)
        self.program_name = program_name
        self.program_id = "prog-" + hashlib.sha256(program_name.encode()).hexdigest()[:8]
        self.keep_listed = keep_listed
        self.cancel_style = "delete"
        self.digit_ids = False
        self.target_format = "3.1.0"
        self.report_descriptors: list[dict[str, Any]] | None = [
            dict(d) for d in DEFAULT_REPORT_DESCRIPTORS
        ]
        self.page_limit = 50
        self.auth_mode = "ok"
        self.token_lifetime = 3600
        self.tokens_issued = 0
        self.malformed: str | None = None
        self._raw: deque[tuple[bytes, str]] = deque()  # (body, content type) per listing
        self.requests: list[tuple[str, str]] = []
        self.reports: list[ReportRecord] = []
        self.opts: list[OptRecord] = []
        self.statuses: list[StatusRecord] = []
        self.received_reports: list[dict[str, Any]] = []
        self._clients = {
            cid: _Client(secret, name)
            for cid, (secret, name) in (
                clients or {DEFAULT_CLIENT_ID: (DEFAULT_CLIENT_SECRET, DEFAULT_VEN_NAME)}
            ).items()
        }
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (client_id, monotonic expiry)
        self._events: dict[str, SimEvent] = {}
        self._modified: dict[str, datetime] = {}
        self._zeroed: set[str] = set()
        self._created = datetime.now(UTC)
        self._port = port
        self._runner: web.AppRunner | None = None
        self._sock: socket.socket | None = None

    # ----------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        """The TCP port (known before start only if given explicitly)."""
        return self._port

    @property
    def url(self) -> str:
        """The base URL a VEN is configured with, including ``/openadr3/3.1.0``."""
        if self._port == 0:
            raise RuntimeError("port 0 is resolved by start()")
        return f"http://{self.host}:{self._port}{PATH_PREFIX}"

    @property
    def token_url(self) -> str:
        """Where a VEN gets its OAuth2 token (client credentials)."""
        return self.url + TOKEN_PATH

    def add_client(self, client_id: str, client_secret: str, ven_name: str) -> None:
        """Enrol one more VEN: its OAuth2 client credentials and the name events target."""
        self._clients[client_id] = _Client(client_secret, ven_name)

    def info(self) -> dict[str, Any]:
        """What a 3.x VEN is configured with (the first client's credentials)."""
        client_id, client = next(iter(self._clients.items()))
        return {
            "version": "3.1.0",
            "base_url": self.url,
            "token_url": self.token_url,
            "client_id": client_id,
            "client_secret": client.secret,
            "ven_name": client.ven_name,
            "program_name": self.program_name,
            "program_id": self.program_id,
        }

    async def start(self) -> None:
        """Bind and serve. A pre-bound socket resolves port 0 without a bind race."""
        if self._runner is not None:
            raise RuntimeError("already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Rebinding the same port right after stop() must not trip over TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        runner: web.AppRunner | None = None
        try:
            sock.bind((self.host, self._port))
            sock.listen(128)
            sock.setblocking(False)
            self._port = sock.getsockname()[1]
            runner = web.AppRunner(self._build_app(), shutdown_timeout=2.0)
            await runner.setup()
            await web.SockSite(runner, sock).start()
        except BaseException:
            if runner is not None:
                await runner.cleanup()
            sock.close()
            raise
        self._sock, self._runner = sock, runner
        _LOGGER.info("OpenADR 3 VTN serving at %s", self.url)

    async def stop(self) -> None:
        """Close every connection and the listener. Events, tokens and records are kept."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # ---------------------------------------------------------------------- VENs

    @staticmethod
    def ven_id_for(ven_name: str) -> str:
        """3.x names VENs: the id a test looks records up by is the VEN name itself."""
        return ven_name

    def registered_vens(self) -> list[VenRecord]:
        """Clients that got a token at least once, as VEN records (registration id = client id)."""
        return [
            VenRecord(c.ven_name, c.ven_name, cid, None, c.first_token_at, c.tokens)
            for cid, c in self._clients.items()
            if c.first_token_at is not None
        ]

    def request_reregistration(self, ven_id: str) -> None:
        """3.x has no re-registration: revoke the VEN's tokens, so it must get a new one."""
        found = [c for cid, c in self._clients.items() if ven_id in (cid, c.ven_name)]
        if not found:
            raise KeyError(f"unknown ven_id {ven_id}")
        for client in found:
            for token in client.live:
                self._tokens.pop(token, None)
            client.live.clear()

    def serve_raw(
        self, body: bytes, times: int = 1, content_type: str = "application/json"
    ) -> None:
        """Answer the next ``times`` event listings (any client) with exactly ``body``, HTTP 200."""
        if times < 1:
            raise ValueError("times must be >= 1")
        self._raw.extend((bytes(body), content_type) for _ in range(times))

    @property
    def raw_pending(self) -> int:
        """How many bodies queued by :meth:`serve_raw` still wait for a listing."""
        return len(self._raw)

    # ----------------------------------------------------------------------- app

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth], client_max_size=4 * 1024 * 1024)
        app.router.add_post(PATH_PREFIX + TOKEN_PATH, self._token)
        app.router.add_get(PATH_PREFIX + "/auth/server", self._auth_server)
        app.router.add_get(PATH_PREFIX + "/programs", self._programs)
        app.router.add_get(PATH_PREFIX + "/events", self._list_events)
        app.router.add_get(PATH_PREFIX + "/vens", self._vens)
        app.router.add_post(PATH_PREFIX + "/reports", self._reports)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        """Log, apply ``auth_mode`` and check the bearer token of every resource request."""
        self.requests.append((request.method, request.path))
        if self.auth_mode == "401":
            return problem(401, "Unauthorized", "this VTN refuses every request")
        if request.path in (PATH_PREFIX + TOKEN_PATH, PATH_PREFIX + "/auth/server"):
            return await handler(request)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        entry = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if entry is None or entry[1] <= time.monotonic():
            answer = problem(401, "Unauthorized", "missing, unknown or expired bearer token")
            answer.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return answer
        if self.auth_mode == "403":
            return problem(403, "Forbidden", "this client may not use this resource")
        request["client_id"] = entry[0]
        try:
            return await handler(request)
        except RequestError as err:
            return problem(400, "Bad Request", str(err))

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        if header := request.headers.get("Authorization"):
            try:
                basic = BasicAuth.decode(header)
            except (ValueError, binascii.Error):
                basic = None
            if basic is not None:
                client_id, secret = basic.login, basic.password
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        client = self._clients.get(client_id)
        if client is None or not secrets.compare_digest(client.secret, secret):
            return web.json_response({"error": "invalid_client"}, status=401)
        token = secrets.token_urlsafe(24)
        self._tokens[token] = (client_id, time.monotonic() + self.token_lifetime)
        client.live.add(token)
        client.tokens += 1
        client.first_token_at = client.first_token_at or datetime.now(UTC)
        self.tokens_issued += 1
        return web.json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime}
        )

    async def _auth_server(self, _: web.Request) -> web.Response:
        return web.json_response({"tokenURL": self.token_url})

    async def _programs(self, request: web.Request) -> web.Response:
        created = iso(self._created)
        program = {
            "id": self.program_id,
            "createdDateTime": created,
            "modificationDateTime": created,
            "objectType": "PROGRAM",
            "programName": self.program_name,
            "programLongName": f"{self.program_name} (simulated load shed program)",
            "payloadDescriptors": [
                {"objectType": "EVENT_PAYLOAD_DESCRIPTOR", "payloadType": "SIMPLE"}
            ],
            "targets": None,
        }
        return web.json_response(self._page(request, [program]))

    async def _list_events(self, request: web.Request) -> web.StreamResponse:
        if self._raw:  # before the listing: a raw answer delivers no event
            body, content_type = self._raw.popleft()
            return web.Response(body=body, headers={"Content-Type": content_type})
        client_id = request["client_id"]
        names = (self._clients[client_id].ven_name, client_id)
        listed = self.listing(names, request.query.get("programID"))
        page = self._page(request, listed)
        for item in page:  # the summary's delivered_to
            event = self._events[item["id"]]
            event.copies[names[0]] = event.modification_number
        match self.malformed:
            case "json":
                return web.Response(body=b'[{"id": "ev-1", "intervals": [', content_type=_JSON)
            case "object":
                return web.json_response({"events": page})
            case "huge":
                return web.Response(body=_huge_body(), content_type=_JSON)
        return web.json_response(page)

    async def _vens(self, request: web.Request) -> web.Response:
        """A client sees its own VEN only (by ``venName``, or without a filter)."""
        client_id = request["client_id"]
        name = self._clients[client_id].ven_name
        wanted = request.query.get("venName")
        if wanted is not None and wanted != name:
            return web.json_response([])
        created = iso(self._clients[client_id].first_token_at or self._created)
        ven = {
            "id": name,
            "createdDateTime": created,
            "modificationDateTime": created,
            "objectType": "VEN",
            "venName": name,
        }
        return web.json_response(self._page(request, [ven]))

    async def _reports(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RequestError(f"body is not JSON: {err}") from None
        ven_name = self._clients[request["client_id"]].ven_name
        reports, opts, statuses = parse_report(
            body, program_id=self.program_id, event_ids=self._events, ven_name=ven_name
        )
        self.received_reports.append(body)
        self.reports.extend(reports)
        self.opts.extend(opts)
        self.statuses.extend(statuses)
        for opt in opts:
            if (event := self._events.get(opt.event_id or "")) is not None:
                event.opts[ven_name] = opt.opt_type
        now = iso(datetime.now(UTC))
        stored = {
            **body,
            "id": uuid.uuid4().hex,
            "createdDateTime": now,
            "modificationDateTime": now,
            "objectType": "REPORT",
        }
        return web.json_response(stored, status=201)

    def _page(self, request: web.Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``skip``/``limit`` pagination; a limit above ``page_limit`` is capped silently."""
        skip = _count(request.query.get("skip", "0"), "skip", 0)
        limit = _count(request.query.get("limit", str(self.page_limit)), "limit", 1)
        return items[skip : skip + min(limit, self.page_limit)]


_JSON = "application/json"
_HUGE: list[bytes] = []


def _huge_body() -> bytes:
    """A valid 20 MB JSON list (one long string), built once."""
    if not _HUGE:
        _HUGE.append(b'["' + b"x" * (HUGE_BYTES - 4) + b'"]')
    return _HUGE[0]


def _count(raw: str, name: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise RequestError(f"{name} must be an integer") from None
    if value < minimum:
        raise RequestError(f"{name} must be >= {minimum}")
    return value
