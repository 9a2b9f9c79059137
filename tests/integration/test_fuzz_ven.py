"""Property-based fuzzing of the VEN's event handler in a running Home Assistant.

Generated and malformed event payloads (the strategies of tests/engine/test_fuzz_events.py,
with times around now) are handed to the entry's VEN connection exactly as openleadr hands
them over, while the simulated controllers report every priority-slot change. Properties:

* the handler never fails (it answers optIn or optOut, and nothing is logged as an error),
  and every event it puts on the bus for automations can be stored as JSON;
* no slot other than a configured point's own priority ever changes, and a configured slot
  only ever holds NULL or that point's value for a SIMPLE level present in the payloads;
* once the VTN no longer offers the events (an implied cancel, level 0), every priority array
  of every controller is exactly as it was before the first event.

One Home Assistant and one simulated building serve every example (starting them per example
would cost seconds each); each example ends with the building back at its baseline, so examples
stay independent. 1,000 examples of 1-3 payloads (about 2,000 payloads, fixed seed, no example
database) take about 20 s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from weakref import WeakKeyDictionary

import pytest
from homeassistant.const import MATCH_ALL
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers.json import json_bytes
from homeassistant.util import dt as dt_util
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven.const import DOMAIN
from custom_components.loadshed_ven.data import LoadshedData
from sim.bacnet_device import SimBacnetDevice
from sim.building import SimBuilding
from tests.engine.test_fuzz_events import (
    event_payloads,
    openleadr_events,
    simple_payloads,
    valid_level,
)

from .conftest import point_dicts

APPLY_TASK = f"{DOMAIN} apply"  # the runtime's shed passes run as background tasks by this name
type SlotKey = tuple[str, str]  # (device address, object id)


def _now() -> datetime:
    return dt_util.utcnow()


@dataclass(frozen=True)
class Configured:
    """One configured override point: its priority and its values for levels 1, 2, 3."""

    priority: int
    values: tuple[object, ...]


CONFIGURED: dict[SlotKey, Configured] = {
    (p["address"], f"{p['object_type']},{p['instance']}"): Configured(
        p["priority"], tuple(p["values"])
    )
    for p in point_dicts()
}


def _snapshot(building: SimBuilding) -> dict[SlotKey, list[object]]:
    return {
        (device.address, object_id): device.priority_array(object_id)
        for device in building.bacnet.devices
        for object_id in device.point_ids
    }


@dataclass
class SlotWatch:
    """Every priority-slot change on every simulated controller, checked as it happens."""

    baseline: dict[SlotKey, list[object]]
    violations: list[str] = field(default_factory=list)  # also bus events that are not JSON
    held: list[tuple[SlotKey, object]] = field(default_factory=list)  # non-NULL values seen

    def changed(self, device: SimBacnetDevice, object_id: str) -> None:
        key = (device.address, object_id)
        slots = device.priority_array(object_id)
        point = CONFIGURED.get(key)
        for index, (now, before) in enumerate(zip(slots, self.baseline[key], strict=True)):
            if now == before:
                continue
            if point is None or index != point.priority - 1:
                self.violations.append(f"{key} priority {index + 1}: {before!r} -> {now!r}")
            elif now is not None:
                self.held.append((key, now))
                if now not in point.values:
                    self.violations.append(f"{key} holds {now!r}, not a configured value")

    @callback
    def bus_event(self, event: Event) -> None:
        # What the recorder and the websocket API do with every event.
        if event.event_type.startswith(DOMAIN):
            try:
                json_bytes(event.data)
            except TypeError as err:
                self.violations.append(f"{event.event_type} is not JSON: {err}")


_WATCHES: WeakKeyDictionary[SimBuilding, SlotWatch] = WeakKeyDictionary()


def _watch(hass: HomeAssistant, building: SimBuilding) -> SlotWatch:
    """The building's watch, made on the first example (fixtures live across examples)."""
    if building not in _WATCHES:
        watch = SlotWatch(_snapshot(building))
        building.bacnet.add_listener(watch.changed)
        hass.bus.async_listen(MATCH_ALL, watch.bus_event)
        _WATCHES[building] = watch
    return _WATCHES[building]


async def _settle() -> None:
    """Wait for every shed pass in flight; none may fail."""
    while pending := [t for t in asyncio.all_tasks() if t.get_name() == APPLY_TASK]:
        results = await asyncio.gather(*pending, return_exceptions=True)
        assert not [r for r in results if isinstance(r, BaseException)], results


def _levels_offered(batch: Sequence[object]) -> set[int]:
    return {
        level
        for raw in batch
        for payload in simple_payloads(raw)
        if (level := valid_level(payload)) is not None
    }


@pytest.fixture(autouse=True)
def enable_event_loop_debug(event_loop: asyncio.AbstractEventLoop) -> None:
    """Run without asyncio debug mode (the test harness turns it on for every test).

    Debug mode records a stack for every task and callback, which doubles the run time of a
    thousand examples; the other integration tests keep it on for the same code.
    """
    event_loop.set_debug(False)


@settings(
    max_examples=1000,
    deadline=None,
    database=None,
    derandomize=True,
    # Real time passes and the building is shared: a failure is reported as drawn.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
# Extra well-formed events, so that a good share of examples really sheds the building.
@given(
    batch=st.lists(
        st.one_of(openleadr_events(_now, 0), event_payloads(_now)), min_size=1, max_size=3
    )
)
async def test_fuzzed_events_only_touch_configured_slots(
    hass: HomeAssistant,
    building: SimBuilding,
    init_integration: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    batch: list[object],
) -> None:
    data: LoadshedData = init_integration.runtime_data
    watch = _watch(hass, building)
    watch.held.clear()
    logged = len(caplog.records)

    for raw in batch:
        # What openleadr calls for a new or changed event; the VEN hands the runtime a copy.
        opt = await data.ven._handle_event(raw)  # type: ignore[arg-type]
        assert opt in ("optIn", "optOut")
        await _settle()
    if watch.held:
        event("the building was shed")

    # The VTN's next distribution lists no event (an implied cancel): the level drops to 0.
    data.vtn.handle_event_ids(frozenset())
    await _settle()
    await hass.async_block_till_done()

    assert watch.violations == []
    assert not data.shedding
    assert _snapshot(building) == watch.baseline
    offered = {
        point.values[level - 1]
        for point in CONFIGURED.values()
        for level in _levels_offered(batch)
        if level
    }
    assert {value for _, value in watch.held} <= offered
    # (The protocol libraries may log network trouble of the polling VEN; that is not ours.)
    errors = [
        r
        for r in caplog.records[logged:]
        if r.levelno >= logging.ERROR and not r.name.startswith(("openleadr", "apscheduler"))
    ]
    assert errors == [], [r.getMessage() for r in errors]
