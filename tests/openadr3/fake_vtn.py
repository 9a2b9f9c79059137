"""A tiny stand-in for a 3.x VTN on 127.0.0.1: just enough wire for the VEN's boundary tests."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

CLIENT_ID = "ven-client"
CLIENT_SECRET = "s3cret"
PROGRAM_ID = "prog-1"
PREFIX = "/openadr3/3.1.0"

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeVtn3:
    """Serves ``events`` (or ``events_body`` verbatim) and records what the VEN sends."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.events_body: bytes | None = None
        self.programs: list[Any] = [
            {"id": PROGRAM_ID, "objectType": "PROGRAM", "programName": "shed"},
            {"id": "prog-2", "objectType": "PROGRAM", "programName": "other"},
        ]
        self.token_field = "access_token"
        self.token_lifetime: int | None = 3600
        self.token_status = 200
        self.resource_status: int | None = None  # e.g. 403 for every resource
        self.reject_tokens = False  # every resource answers 401
        self.page_limit = 50
        self.tokens_issued = 0
        self.token_forms: list[dict[str, str]] = []
        self.requests: list[tuple[str, str]] = []
        self.reports: list[dict[str, Any]] = []
        self._tokens: dict[str, float] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PREFIX}"

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/auth/token"

    async def start(self) -> None:
        app = web.Application(middlewares=[self._auth])
        app.router.add_post("/auth/token", self._token)
        app.router.add_get(f"{PREFIX}/programs", self._programs)
        app.router.add_get(f"{PREFIX}/events", self._events)
        app.router.add_post(f"{PREFIX}/reports", self._reports)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def expire_tokens(self) -> None:
        self._tokens.clear()

    def opts(self) -> list[tuple[str, str]]:
        return [
            (r["eventID"], r["resources"][0]["intervals"][0]["payloads"][0]["values"][0])
            for r in self.reports
            if r["reportName"] == "opt"
        ]

    def meter(self) -> list[tuple[str, str, float]]:
        return [
            (
                r["eventID"],
                r["payloadDescriptors"][0]["units"],
                r["resources"][0]["intervals"][0]["payloads"][0]["values"][0],
            )
            for r in self.reports
            if r["reportName"] == "meter"
        ]

    @web.middleware
    async def _auth(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        if request.path.startswith(PREFIX):
            header = request.headers.get("Authorization", "")
            token = header.removeprefix("Bearer ")
            expiry = self._tokens.get(token)
            if self.reject_tokens or expiry is None or expiry < time.monotonic():
                return web.json_response({"title": "Unauthorized"}, status=401)
            if self.resource_status is not None:
                return web.json_response({"title": "Forbidden"}, status=self.resource_status)
        return await handler(request)

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.token_forms.append({k: str(v) for k, v in form.items()})
        if self.token_status != 200:
            return web.json_response({"error": "invalid_client"}, status=self.token_status)
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return web.json_response({"error": "invalid_client"}, status=401)
        token = secrets.token_hex(8)
        lifetime = self.token_lifetime or 3600
        self._tokens[token] = time.monotonic() + lifetime
        self.tokens_issued += 1
        body: dict[str, Any] = {self.token_field: token, "token_type": "Bearer"}
        if self.token_lifetime is not None:
            body["expires_in"] = self.token_lifetime
        return web.json_response(body)

    async def _programs(self, request: web.Request) -> web.Response:
        return web.json_response(self._page(request, self.programs))

    async def _events(self, request: web.Request) -> web.Response:
        if self.events_body is not None:
            return web.Response(body=self.events_body, content_type="application/json")
        program = request.query.get("programID")
        listed = [
            e
            for e in self.events
            if program is None or not isinstance(e, dict) or e.get("programID") == program
        ]
        return web.Response(
            body=json.dumps(self._page(request, listed)), content_type="application/json"
        )

    async def _reports(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.reports.append(body)
        return web.json_response({**body, "id": f"r{len(self.reports)}"}, status=201)

    def _page(self, request: web.Request, items: list[Any]) -> list[Any]:
        skip = int(request.query.get("skip", "0"))
        limit = min(int(request.query.get("limit", str(self.page_limit))), self.page_limit)
        return items[skip : skip + limit]
