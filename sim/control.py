"""A small loopback HTTP API to drive a running building from the command line.

Routes (JSON in, JSON out):
    GET    /status                         endpoints of every peer and the VTN's OpenADR
                                           settings (3.x: base and token URL, client id and
                                           secret, program name and id)
    GET    /events                         the VTN's events
    POST   /events                         queue an event  {level, duration, start_in, start_after,
                                           intervals: [[seconds, level], ...], ven_id, test_event,
                                           targets: {resource_id: [..], group_id, ven_id,
                                           party_id}, signal_type}
    POST   /events/{id}/modify             modify          {level | intervals, start_in}
    POST   /events/{id}/cancel             cancel (status cancelled, modification number + 1)
    DELETE /events/{id}                    remove silently (the VEN sees an implied cancel)
    GET    /reports, GET /opts             what the VTN received
    GET    /statuses                       status reports received (TELEMETRY_STATUS, 3.x status)
    POST   /vens/{ven_id}/reregister       ask a VEN to register again (3.x: revoke its tokens)
    GET    /devices/{address}              a controller's objects and priority arrays
    POST   /devices/{address}              fault injection {offline, latency, deny_writes,
                                           duplicate_window}; deny_writes: true/false (every
                                           object) or a list of object ids (only those refused)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from .building import SimBuilding
from .vtn import SimVtn
from .vtn3 import SimVtn3

DEFAULT_CONTROL_PORT = 8765
OBJECTS = ("analog-value,302", "binary-value,1", "multi-state-value,1")

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def _reply(data: object, status: int = 200) -> web.Response:
    return web.json_response(
        data, status=status, dumps=lambda d: json.dumps(d, default=_json_default, indent=1)
    )


class ControlError(ValueError):
    """A request the control API cannot honour; its text goes back to the caller."""


def _seconds(body: dict[str, Any], key: str) -> timedelta | None:
    raw = body.get(key)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
        raise ControlError(f"{key} must be a number of seconds >= 0")
    return timedelta(seconds=raw)


def _targets(body: dict[str, Any]) -> dict[str, list[str]] | None:
    raw = body.get("targets")
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(
        isinstance(ids, list) and all(isinstance(i, str) for i in ids) for ids in raw.values()
    ):
        raise ControlError("targets is {kind: [id, ...]}")
    return {str(kind): list(ids) for kind, ids in raw.items()}


def _intervals(body: dict[str, Any]) -> list[tuple[timedelta, int]] | None:
    raw = body.get("intervals")
    if raw is None:
        duration = _seconds(body, "duration")
        level = body.get("level")
        if level is None:
            return None
        if duration is None:
            raise ControlError("give a duration with the level")
        return [(duration, _level(level))]
    if not isinstance(raw, list) or not raw:
        raise ControlError("intervals must be a non-empty list of [seconds, level]")
    out = []
    for item in raw:
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise ControlError("each interval is [seconds, level]")
        out.append((timedelta(seconds=float(item[0])), _level(item[1])))
    return out


def _level(raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= 3:
        raise ControlError("a SIMPLE level is an integer 0-3")
    return raw


def _start(body: dict[str, Any]) -> datetime | None:
    start_in = _seconds(body, "start_in")
    return None if start_in is None else datetime.now(UTC) + start_in


def vtn_info(vtn: SimVtn | SimVtn3) -> dict[str, Any]:
    """What a VEN is configured with for this VTN (3.x needs credentials and the program)."""
    if isinstance(vtn, SimVtn3):
        return vtn.info()
    return {"version": "2.0b", "vtn_url": vtn.url, "vtn_id": vtn.vtn_id}


def build_app(building: SimBuilding) -> web.Application:
    """Create the aiohttp application for ``building``."""
    vtn = building.vtn
    routes = web.RouteTableDef()

    @routes.get("/status")
    async def status(_: web.Request) -> web.Response:
        return _reply({**building.endpoints(), "openadr": vtn_info(vtn)})

    @routes.get("/events")
    async def events(_: web.Request) -> web.Response:
        return _reply(vtn.events())

    @routes.post("/events")
    async def add_event(request: web.Request) -> web.Response:
        body = await _body(request)
        intervals = _intervals(body)
        if intervals is None:
            raise ControlError("give level + duration, or intervals")
        event_id = vtn.add_event(
            body.get("ven_id"),
            intervals=intervals,
            start=_start(body),
            start_after=_seconds(body, "start_after"),
            test_event=bool(body.get("test_event", False)),
            targets=_targets(body),
            signal_type=str(body.get("signal_type") or "level"),
        )
        return _reply({"event_id": event_id}, status=201)

    @routes.post("/events/{event_id}/modify")
    async def modify(request: web.Request) -> web.Response:
        body = await _body(request)
        number = vtn.modify_event(
            request.match_info["event_id"], intervals=_intervals(body), start=_start(body)
        )
        return _reply({"modification_number": number})

    @routes.post("/events/{event_id}/cancel")
    async def cancel(request: web.Request) -> web.Response:
        vtn.cancel_event(request.match_info["event_id"])
        return _reply({"cancelled": request.match_info["event_id"]})

    @routes.delete("/events/{event_id}")
    async def remove(request: web.Request) -> web.Response:
        vtn.remove_event(request.match_info["event_id"])
        return _reply({"removed": request.match_info["event_id"]})

    @routes.get("/reports")
    async def reports(_: web.Request) -> web.Response:
        return _reply(list(vtn.reports))

    @routes.get("/statuses")
    async def statuses(_: web.Request) -> web.Response:
        return _reply(list(vtn.statuses))

    @routes.get("/opts")
    async def opts(_: web.Request) -> web.Response:
        return _reply(list(vtn.opts))

    @routes.post("/vens/{ven_id}/reregister")
    async def reregister(request: web.Request) -> web.Response:
        vtn.request_reregistration(request.match_info["ven_id"])
        return _reply({"reregister": request.match_info["ven_id"]})

    @routes.get("/devices/{address}")
    async def device(request: web.Request) -> web.Response:
        dev = _device(building, request.match_info["address"])
        return _reply(
            {
                **_faults(dev),
                "objects": {
                    obj: {
                        "present_value": dev.present_value(obj),
                        "priority_array": dev.priority_array(obj),
                    }
                    for obj in OBJECTS
                },
            }
        )

    @routes.post("/devices/{address}")
    async def inject(request: web.Request) -> web.Response:
        dev = _device(building, request.match_info["address"])
        body = await _body(request)
        # Everything is checked before anything changes: a bad request changes nothing.
        latency = _seconds(body, "latency")
        window = _seconds(body, "duplicate_window")
        denied = _chosen_points(dev, body["deny_writes"]) if "deny_writes" in body else None
        if "offline" in body:
            dev.offline = bool(body["offline"])
        if latency is not None:
            dev.latency = latency.total_seconds()
        if window is not None:
            dev.duplicate_window = window.total_seconds()
        if denied is not None:
            dev.allow_writes()
            for obj in denied:
                dev.deny_writes(obj)
        # The reply names offline and latency, and the other faults the request set.
        keep = {"address", "offline", "latency", *body}
        return _reply({k: v for k, v in _faults(dev).items() if k in keep})

    app = web.Application(middlewares=[_errors])
    app.add_routes(routes)
    return app


def _faults(dev: Any) -> dict[str, Any]:
    """A controller's run-time faults, as the control API shows and takes them."""
    return {
        "address": dev.address,
        "offline": dev.offline,
        "latency": dev.latency,
        "deny_writes": dev.denied_points,
        "duplicate_window": dev.duplicate_window,
    }


def _chosen_points(dev: Any, raw: object) -> list[str]:
    """The objects to refuse writes to: every one (true), none (false) or the listed ones."""
    if isinstance(raw, bool):
        return dev.point_ids if raw else []
    if not isinstance(raw, list) or not all(isinstance(obj, str) for obj in raw):
        raise ControlError("deny_writes is true, false or a list of object ids")
    return [str(dev.point(obj).objectIdentifier) for obj in raw]  # KeyError: 400


def _device(building: SimBuilding, address: str) -> Any:
    try:
        return building.bacnet.device(address)
    except KeyError:
        raise web.HTTPNotFound(text=f"no simulated device at {address}") from None


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except json.JSONDecodeError as err:
        raise ControlError(f"body is not JSON: {err}") from None
    if not isinstance(body, dict):
        raise ControlError("body must be a JSON object")
    return body


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (ControlError, KeyError, ValueError) as err:
        return _reply({"error": str(err).strip("'\"")}, status=400)


class ControlServer:
    """Serves :func:`build_app` on 127.0.0.1."""

    def __init__(self, building: SimBuilding, port: int = DEFAULT_CONTROL_PORT) -> None:
        """Prepare; nothing listens until :meth:`start`."""
        self._runner = web.AppRunner(build_app(building), access_log=None)
        self._port = port
        self.url = ""

    async def start(self) -> None:
        """Listen on 127.0.0.1 (loopback only)."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        # aiohttp has no public way to read back the port chosen for port 0.
        server = site._server
        port = server.sockets[0].getsockname()[1] if server is not None else self._port  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        """Close the listener and every connection."""
        await self._runner.cleanup()
