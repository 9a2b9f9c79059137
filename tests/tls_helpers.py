"""Helpers for tests that make TLS handshakes fail on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def ignore_failed_handshakes() -> Iterator[None]:
    """Drop the server-side handshake failures asyncio reports to the loop in debug mode.

    A VEN refusing the VTN's certificate (or the VTN refusing the VEN's) is the point of such a
    test; the simulated VTN's side of that failure is not an error of the code under test.
    """
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exception = context.get("exception")
        if isinstance(exception, ssl.SSLError) or (
            isinstance(exception, ConnectionResetError)
            and "transport creation" in str(context.get("message", ""))
        ):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    try:
        yield
    finally:
        loop.set_exception_handler(previous)
