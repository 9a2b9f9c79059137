"""The ``make_ven`` fixture: openleadr VENs against the simulated VTN, stopped after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from sim.vtn import SimVtn
from tests.sim.openleadr_ven import Ven, VenFactory


@pytest.fixture
async def make_ven(vtn: SimVtn) -> AsyncIterator[VenFactory]:
    vens: list[Ven] = []

    async def factory(url: str | None = None, *, register: bool = True, **kwargs: Any) -> Ven:
        ven = Ven(url or vtn.url, **kwargs)
        vens.append(ven)
        if register:
            assert await ven.run()
        return ven

    yield factory
    for ven in vens:
        await ven.stop()
