"""Simulated-VTN fixtures and a polling helper shared by the VTN and VEN tests.

Registered for the whole suite in ``tests/conftest.py`` (``pytest_plugins``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from sim.pki import SimTls, generate_pki
from sim.vtn import SimVtn


async def wait_for(cond: Callable[[], object], seconds: float = 10.0) -> None:
    """Poll ``cond`` every 20 ms until it is truthy; fail after ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {seconds} s")
        await asyncio.sleep(0.02)


@pytest.fixture
async def vtn(socket_enabled: None) -> AsyncIterator[SimVtn]:
    """A plain-http simulated VTN on 127.0.0.1."""
    server = SimVtn()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> SimTls:
    """A test CA with VTN and VEN certificates (the VEN key has a passphrase)."""
    return generate_pki(tmp_path_factory.mktemp("pki"), passphrase="s3cret")


@pytest.fixture
async def tls_vtn(socket_enabled: None, pki: SimTls) -> AsyncIterator[SimVtn]:
    """A simulated VTN serving https and requiring a client certificate from ``pki``."""
    server = SimVtn(tls=pki)
    await server.start()
    yield server
    await server.stop()
