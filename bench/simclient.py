"""Start and steer the simulated building running in :mod:`bench.simhost`."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from custom_components.loadshed_ven.engine.points import PointValue

REPO_ROOT = Path(__file__).resolve().parent.parent
STOP_SECONDS = 30.0


class SimHostError(RuntimeError):
    """The building process refused a command or died."""


@dataclass(frozen=True, kw_only=True)
class BuildingLayout:
    """Where the controllers are: IP ones from ``base_ip``, routed ones behind the router."""

    ip_devices: int
    routed_devices: int
    base_ip: str = "127.50.0.1"
    router_ip: str = "127.51.0.1"
    network: int = 12345


class SimHost:
    """The building process; ``async with SimHost() as host: await host.start(layout)``."""

    def __init__(self) -> None:
        """Nothing runs until entered."""
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self.vtn_url = ""
        self.meter_port = 0
        self.start_seconds = 0.0

    async def __aenter__(self) -> Self:
        """Start the process (the building itself starts with :meth:`start`)."""
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.simhost",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT,
            limit=2**24,  # a slots answer for thousands of points is one long line
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop the building and wait for the process to end."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.returncode is None and process.stdin is not None:
                process.stdin.write(b'{"cmd": "stop"}\n')
                await process.stdin.drain()
                process.stdin.close()
            await asyncio.wait_for(process.wait(), STOP_SECONDS)
        except (TimeoutError, ConnectionError):
            process.kill()
            await process.wait()

    async def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        """Send one command and return its answer; SimHostError when it failed."""
        process = self._process
        if process is None or process.stdin is None or process.stdout is None:
            raise SimHostError("the building process is not running")
        async with self._lock:
            process.stdin.write(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
            await process.stdin.drain()
            line = await process.stdout.readline()
        if not line:
            raise SimHostError(f"the building process ended during {cmd!r}")
        answer: dict[str, Any] = json.loads(line)
        if not answer.get("ok"):
            raise SimHostError(f"{cmd}: {answer.get('error')}")
        return answer

    async def start(self, layout: BuildingLayout) -> None:
        """Start the building: controllers, router, VTN and meter."""
        answer = await self.call(
            "start",
            devices=layout.ip_devices,
            routed=layout.routed_devices,
            base_ip=layout.base_ip,
            router_ip=layout.router_ip,
            network=layout.network,
        )
        self.vtn_url = str(answer["vtn_url"])
        self.meter_port = int(answer["meter_port"])
        self.start_seconds = float(answer["seconds"])

    async def add_objects(self, addresses: list[str], count: int) -> None:
        """Give each controller in ``addresses`` ``count`` more analog values (303 upward)."""
        await self.call("extra", addresses=addresses, count=count)

    async def set_latency(self, seconds: float) -> None:
        """Make every controller answer each confirmed request ``seconds`` later."""
        await self.call("latency", seconds=seconds)

    async def slots(self, points: list[tuple[str, str]], priority: int) -> list[PointValue | None]:
        """What each (address, object id) holds at ``priority`` (None: NULL)."""
        answer = await self.call("slots", points=[list(p) for p in points], priority=priority)
        values: list[PointValue | None] = answer["values"]
        return values

    async def peak_in_flight(self) -> int:
        """Most requests held by controllers at once since the last call."""
        return int((await self.call("peak"))["peak"])

    async def cpu_seconds(self) -> float:
        """CPU time the building's process has used so far."""
        return float((await self.call("cpu"))["seconds"])

    async def watch(self) -> None:
        """Start recording setpoint changes."""
        await self.call("watch")

    async def watched(self) -> tuple[float | None, float | None, int]:
        """Wall-clock times of the first and last setpoint change since :meth:`watch`, and count."""
        answer = await self.call("watched")
        return answer["first"], answer["last"], int(answer["count"])

    async def add_event(self, level: int, start_in: float, duration: float) -> tuple[str, float]:
        """Queue a SIMPLE event at the VTN; returns its id and its start (epoch seconds)."""
        answer = await self.call("event", level=level, start_in=start_in, duration=duration)
        return str(answer["event_id"]), float(answer["start"])

    async def add_events(
        self, count: int, intervals: int, interval_seconds: int, start_in: float
    ) -> list[str]:
        """Queue ``count`` events of ``intervals`` intervals each at the VTN; returns their ids."""
        answer = await self.call(
            "events",
            count=count,
            intervals=intervals,
            interval_seconds=interval_seconds,
            start_in=start_in,
        )
        return [str(event_id) for event_id in answer["event_ids"]]

    async def remove_events(self, event_ids: list[str]) -> None:
        """Stop serving those events at the VTN (an implied cancellation for the VEN)."""
        await self.call("remove", event_ids=event_ids)
