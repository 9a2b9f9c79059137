"""Home Assistant as a child process of the demo."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Final

from .options import ROOT

# Home Assistant stops in a few seconds (it releases every override within 10 s); a stop that
# takes longer than this is cut short.
STOP_TIMEOUT: Final = 60.0
CONSOLE_LOG: Final = "hass-console.log"


class HassProcess:
    """Home Assistant on a configuration directory, never installing packages.

    It runs through :mod:`demo.hass_launcher` (``python -m homeassistant`` without mDNS).
    """

    def __init__(self, config_dir: Path) -> None:
        """Prepare; nothing runs until :meth:`start`."""
        self.config_dir = config_dir
        self.console_log = config_dir / CONSOLE_LOG
        self._process: asyncio.subprocess.Process | None = None
        self._console: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The process id while started."""
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        """Start Home Assistant in its own session, so a terminal's Ctrl-C reaches only us.

        The demo then stops it in order: Home Assistant first (it releases the overrides it
        wrote), the building last.
        """
        self._console = self.console_log.open("wb")
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "demo.hass_launcher",
            "--config",
            str(self.config_dir),
            "--skip-pip",  # every requirement is installed by scripts/setup; never pip at runtime
            "--log-no-color",
            cwd=self.config_dir,  # custom_components comes from the config directory's link
            stdin=subprocess.DEVNULL,
            stdout=self._console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},  # for demo.hass_launcher
        )

    async def wait(self) -> int:
        """Wait until the process exits; its exit code."""
        if self._process is None:
            raise RuntimeError("Home Assistant was not started")
        return await self._process.wait()

    async def stop(self, grace: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; the exit code."""
        process = self._process
        if process is None:
            return None
        try:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                try:
                    async with asyncio.timeout(grace):
                        await process.wait()
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
            return process.returncode
        finally:
            if self._console is not None:
                self._console.close()
                self._console = None

    def console_tail(self, lines: int = 30) -> str:
        """The last lines Home Assistant printed, for error messages."""
        try:
            text = self.console_log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
