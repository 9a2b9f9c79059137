"""Command line for the simulated building.

python -m sim                                 start the building, keep running (Ctrl-C stops)
python -m sim --keep-listed 5m --digit-ids    ... with a VTN that behaves like many in the field
python -m sim --openadr 3                     ... with an OpenADR 3.1.0 VTN instead of 2.0b
python -m sim --remote-devices 3 --routed-ip-devices 3   ... plus controllers behind a BBMD
                                              and behind a BACnet/IP-to-BACnet/IP router
python -m sim event --level 1 --duration 10m  put an event on the running building's VTN
python -m sim list | reports | opts | status
python -m sim modify EVENT_ID --level 2       python -m sim cancel EVENT_ID
python -m sim remove EVENT_ID                 python -m sim reregister VEN_ID
python -m sim device 127.0.0.5 [--offline | --online] [--latency 0.1]
    [--deny-writes [OBJECT ...] | --allow-writes] [--duplicate-window 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from .building import BuildingConfig, SimBuilding
from .control import DEFAULT_CONTROL_PORT, ControlServer, vtn_info
from .duration import parse_duration
from .vtn import SimVtn
from .vtn3 import SimVtn3

CONTROL_ENV = "LOADSHED_SIM_CONTROL"


def _control_url(args: argparse.Namespace) -> str:
    return str(
        args.control or os.environ.get(CONTROL_ENV) or f"http://127.0.0.1:{DEFAULT_CONTROL_PORT}"
    )


def _call(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None
) -> int:
    url = _control_url(args) + path
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - the URL is the loopback control API
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            print(response.read().decode())
    except urllib.error.HTTPError as err:
        print(f"error {err.code}: {err.read().decode()}", file=sys.stderr)
        return 1
    except urllib.error.URLError as err:
        print(
            f"cannot reach the building's control API at {url} ({err.reason}). "
            "Is `python -m sim` running?",
            file=sys.stderr,
        )
        return 1
    return 0


def _event_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.intervals:
        body["intervals"] = [
            [parse_duration(d).total_seconds(), int(level)]
            for d, _, level in (part.rpartition(":") for part in args.intervals.split(","))
        ]
    elif args.level is not None:
        body["level"] = args.level
        body["duration"] = parse_duration(args.duration).total_seconds()
    if args.start_in:
        body["start_in"] = parse_duration(args.start_in).total_seconds()
    return body


async def _run(args: argparse.Namespace) -> None:
    config = BuildingConfig(
        devices=args.devices,
        routed_devices=args.routed,
        base_ip=args.base_ip,
        router_ip=args.router_ip,
        vtn_port=args.vtn_port,
        meter_port=args.meter_port,
        poll_interval=timedelta(seconds=args.poll),
        remote_devices=args.remote_devices,
        bbmd_ip=args.bbmd_ip,
        routed_ip_devices=args.routed_ip_devices,
        ip_router_ip=args.ip_router_ip,
        openadr=args.openadr,
    )
    building = SimBuilding(config)
    _configure_vtn(building.vtn, args)
    control = ControlServer(building, port=args.control_port)
    await building.start()
    try:
        await control.start()
        shown = {**building.endpoints(), "openadr": vtn_info(building.vtn), "control": control.url}
        print(json.dumps(shown, indent=1), flush=True)
        print(
            "Simulated building running. Try: python -m sim event --level 1 --duration 5m"
            "  (Ctrl-C stops)",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        print("stopping...", flush=True)
    finally:
        with contextlib.suppress(Exception):
            await control.stop()
        await building.stop()


def _configure_vtn(vtn: SimVtn | SimVtn3, args: argparse.Namespace) -> None:
    """Apply the VTN's field-behaviour options (the 2.0b-only ones are ignored for 3.x)."""
    if args.keep_listed is not None:
        vtn.keep_listed = parse_duration(args.keep_listed)
    vtn.digit_ids = args.digit_ids
    if isinstance(vtn, SimVtn):
        if args.vtn_id is not None:
            vtn.vtn_id = args.vtn_id
        vtn.distribute_every_poll = args.distribute_every_poll


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--control", help=f"control API URL (env {CONTROL_ENV})")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="start the building (the default)")
    defaults = BuildingConfig()
    for p in (parser, run):
        p.add_argument("--devices", type=int, default=defaults.devices, help="IP controllers")
        p.add_argument(
            "--routed",
            type=int,
            default=defaults.routed_devices,
            help="controllers on the MS/TP network behind the router",
        )
        p.add_argument("--base-ip", default=defaults.base_ip, help="first controller's address")
        p.add_argument("--router-ip", default=defaults.router_ip, help="the MS/TP router's address")
        p.add_argument(
            "--remote-devices",
            type=int,
            default=defaults.remote_devices,
            help="controllers on another subnet, reached only through a BBMD (default none)",
        )
        p.add_argument(
            "--bbmd-ip",
            default=defaults.bbmd_ip,
            help="the BBMD's address (port 47807); the remote controllers' addresses follow it",
        )
        p.add_argument(
            "--routed-ip-devices",
            type=int,
            default=defaults.routed_ip_devices,
            help="controllers on network 2000 behind a BACnet/IP router (default none)",
        )
        p.add_argument(
            "--ip-router-ip",
            default=defaults.ip_router_ip,
            help="the BACnet/IP router's address; its far side and controllers (2000:<ip>) "
            "follow it",
        )
        p.add_argument(
            "--openadr",
            choices=("2.0b", "3"),
            default=defaults.openadr,
            help="the VTN's OpenADR version (3: 3.1.0, REST + OAuth2; default 2.0b)",
        )
        p.add_argument("--vtn-port", type=int, default=defaults.vtn_port)
        p.add_argument("--meter-port", type=int, default=defaults.meter_port)
        p.add_argument("--control-port", type=int, default=DEFAULT_CONTROL_PORT)
        p.add_argument(
            "--poll",
            type=float,
            default=defaults.poll_interval.total_seconds(),
            help="VTN poll interval in seconds (>= 1)",
        )
        p.add_argument("--vtn-id", help="the VTN's vtnID (default SIMVTN; may be all digits)")
        p.add_argument(
            "--keep-listed",
            help="keep cancelled and completed events listed this long, e.g. 5m",
        )
        p.add_argument(
            "--distribute-every-poll",
            action="store_true",
            help="answer every oadrPoll with the full event list",
        )
        p.add_argument("--digit-ids", action="store_true", help="all-digit event IDs")

    for name in ("event", "modify"):
        ev = sub.add_parser(name, help=f"{name} an event")
        if name == "modify":
            ev.add_argument("event_id")
        ev.add_argument("--level", type=int, choices=range(4))
        ev.add_argument("--duration", default="10m", help="e.g. 90s, 10m, 1h")
        ev.add_argument("--intervals", help="several intervals: 5m:1,10m:2,5m:1")
        ev.add_argument("--start-in", help="start later, e.g. 2m (default now)")
        if name == "event":
            ev.add_argument("--start-after", help="randomisation window, e.g. 1m")
            ev.add_argument("--ven", help="VEN id (default: every registered VEN)")
            ev.add_argument("--test", action="store_true", help="mark as a test event")
            for kind in ("resource", "group", "target-ven", "party"):
                ev.add_argument(
                    f"--{kind}", action="append", help=f"name this {kind} id in eiTarget"
                )
            ev.add_argument("--signal-type", default="level", help="e.g. level, price, delta")
    for name in ("cancel", "remove"):
        sub.add_parser(name, help=f"{name} an event").add_argument("event_id")
    sub.add_parser("reregister", help="ask a VEN to register again").add_argument("ven_id")
    for name in ("list", "reports", "opts", "status"):
        sub.add_parser(name, help=f"show {name}")
    dev = sub.add_parser("device", help="inspect a controller or inject faults")
    dev.add_argument("address")
    state = dev.add_mutually_exclusive_group()
    state.add_argument("--offline", dest="offline", action="store_true", default=None)
    state.add_argument("--online", dest="offline", action="store_false")
    dev.add_argument("--latency", type=float, help="seconds added to each answer")
    writes = dev.add_mutually_exclusive_group()
    writes.add_argument(
        "--deny-writes",
        nargs="*",
        metavar="OBJECT",
        help="refuse writes (write-access-denied) to these objects, or to all without any",
    )
    writes.add_argument("--allow-writes", action="store_true", help="accept writes again")
    dev.add_argument(
        "--duplicate-window",
        type=float,
        help="seconds an answer is kept for repeated requests (0: no duplicate detection)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return _dispatch(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:  # noqa: PLR0911 - one return per sub-command
    match args.command:
        case None | "run":
            if args.poll < 1:
                raise ValueError("--poll must be at least 1 second")
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(_run(args))
            return 0
        case "event":
            return _call(args, "POST", "/events", _new_event_body(args))
        case "modify":
            return _call(args, "POST", f"/events/{quote(args.event_id)}/modify", _event_body(args))
        case "cancel":
            return _call(args, "POST", f"/events/{quote(args.event_id)}/cancel", {})
        case "remove":
            return _call(args, "DELETE", f"/events/{quote(args.event_id)}")
        case "reregister":
            return _call(args, "POST", f"/vens/{quote(args.ven_id)}/reregister", {})
        case "device":
            return _device(args)
        case "list":
            return _call(args, "GET", "/events")
        case other:
            return _call(args, "GET", f"/{other}")


def _new_event_body(args: argparse.Namespace) -> dict[str, Any]:
    body = _event_body(args)
    if not body.get("intervals") and body.get("level") is None:
        raise ValueError("give --level (with --duration) or --intervals")
    if args.start_after:
        body["start_after"] = parse_duration(args.start_after).total_seconds()
    if args.ven:
        body["ven_id"] = args.ven
    body["test_event"] = args.test
    kinds = {"resource_id": args.resource, "group_id": args.group, "ven_id": args.target_ven}
    targets = {kind: ids for kind, ids in {**kinds, "party_id": args.party}.items() if ids}
    if targets:
        body["targets"] = targets
    body["signal_type"] = args.signal_type
    return body


def _device(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    if args.offline is not None:
        body["offline"] = args.offline
    if args.latency is not None:
        body["latency"] = args.latency
    if args.deny_writes is not None:
        body["deny_writes"] = args.deny_writes or True
    elif args.allow_writes:
        body["deny_writes"] = False
    if args.duplicate_window is not None:
        body["duplicate_window"] = args.duplicate_window
    path = f"/devices/{quote(args.address, safe='')}"
    return _call(args, "POST", path, body) if body else _call(args, "GET", path)


if __name__ == "__main__":
    sys.exit(main())
