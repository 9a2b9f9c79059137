"""Fixtures of the VEN adapter tests: a loopback VTN that serves exact bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from custom_components.loadshed_ven.openadr.ven import Backoff
from tests.openadr.raw_vtn import RawVtn

# Registration retries fast enough for a test to see several.
FAST = Backoff(initial=0.05, maximum=0.2, jitter=0.1)


@pytest.fixture
async def raw_vtn(socket_enabled: None) -> AsyncIterator[RawVtn]:
    """A started :class:`RawVtn`, stopped after the test."""
    server = RawVtn()
    await server.start()
    yield server
    await server.stop()
