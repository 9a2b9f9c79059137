"""Logbook entries of the VEN, read back through the real logbook's websocket API.

The recorder runs on an in-memory database. The logbook depends on the frontend only to register
its panel; the frontend's files are not installed here, so it is marked as loaded instead (the
HTTP server is never started: test clients talk to the app directly).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from homeassistant.auth.models import User
from homeassistant.components.switch.const import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF, SERVICE_TURN_ON
from homeassistant.core import Context, Event, HomeAssistant, callback
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.loadshed_ven.bus_events import EVENT_SHED_ENDED
from custom_components.loadshed_ven.const import DOMAIN
from sim.building import SimBuilding

from .conftest import ALL_DEVICES, IP_DEVICES, SETPOINT, VEN_NAME, slot, wait_for
from .test_platforms import entity_id

type Entries = list[dict[str, Any]]


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    socket_enabled: None, recorder_mock: Any, enable_custom_integrations: None
) -> None:
    """The recorder must be set up before Home Assistant itself (it asserts so)."""


@pytest.fixture(autouse=True)
async def logbook(hass: HomeAssistant) -> None:
    """The real logbook, with the HTTP component it needs (its server is never started)."""
    assert await async_setup_component(hass, "http", {})
    hass.config.components.add("frontend")
    assert await async_setup_component(hass, "logbook", {})


def setpoints(building: SimBuilding, value: float | None) -> Callable[[], bool]:
    """A predicate: every zone setpoint holds ``value`` in our slot."""
    return lambda: all(slot(building, a, SETPOINT, 10) == value for a in ALL_DEVICES)


async def logbook_entries(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator, since: datetime
) -> Entries:
    """The loadshed_ven entries of the logbook since ``since``, oldest first."""
    lines = await logbook_lines(hass, hass_ws_client, since)
    return [entry for entry in lines if entry.get("domain") == DOMAIN]


async def logbook_lines(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator, since: datetime
) -> Entries:
    """Every line of the logbook since ``since`` (state changes too), oldest first."""
    await hass.async_block_till_done()
    await async_wait_recording_done(hass)
    client = await hass_ws_client()
    await client.send_json_auto_id(
        {
            "type": "logbook/get_events",
            "start_time": since.isoformat(),
            "end_time": (dt_util.utcnow() + timedelta(seconds=1)).isoformat(),
        }
    )
    response = await client.receive_json()
    assert response["success"], response
    return list(response["result"])


def one(entries: Entries, message: str) -> dict[str, Any]:
    """The only entry with ``message`` (a shed's entry may go on with its counts)."""
    found = [entry for entry in entries if reads(entry, message)]
    assert len(found) == 1, (message, [entry["message"] for entry in entries])
    return found[0]


def reads(entry: dict[str, Any], message: str) -> bool:
    """True when ``entry`` says ``message``, with or without the counts after a colon."""
    return bool(entry["message"] == message or entry["message"].startswith(f"{message}: "))


async def test_operator_actions_name_the_user_and_the_action(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    hass_admin_user: User,
    building: SimBuilding,
    init_integration: MockConfigEntry,
) -> None:
    entry = init_integration
    since = dt_util.utcnow()
    target = {"config_entry_id": entry.entry_id}
    await hass.services.async_call(
        DOMAIN, "shed", {**target, "level": 1}, blocking=True, context=Context(hass_admin_user.id)
    )
    await hass.services.async_call(
        DOMAIN, "release_all", target, blocking=True, context=Context(hass_admin_user.id)
    )
    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=10))
    await wait_for(setpoints(building, 78.0), what="shed by the VTN")
    point = entity_id(hass, entry, "switch", f"{IP_DEVICES[1]}/{SETPOINT}")
    await hass.services.async_call(
        SWITCH_DOMAIN,
        SERVICE_TURN_OFF,
        {ATTR_ENTITY_ID: point},
        blocking=True,
        context=Context(hass_admin_user.id),
    )
    participation = entity_id(hass, entry, "switch", "participation")
    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: participation}, blocking=True
    )
    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_ON, {ATTR_ENTITY_ID: participation}, blocking=True
    )

    entries = await logbook_entries(hass, hass_ws_client, since)
    assert all(entry["name"] == VEN_NAME for entry in entries)
    manual = next(re.findall(r"manual-[0-9TZ]+", e["message"])[0] for e in entries)
    started = one(entries, f"started shedding at level 1 for event {manual}")
    assert started["context_user_id"] == hass_admin_user.id
    assert started["context_domain"] == DOMAIN
    assert started["context_service"] == "shed"
    ended = one(entries, f"stopped shedding for event {manual}")
    assert ended["context_user_id"] == hass_admin_user.id
    assert ended["context_service"] == "release_all"
    # Release all is one action: every point it released is told.
    released = one(
        entries,
        f"released Zone setpoint {IP_DEVICES[0]} on BACnet controller {IP_DEVICES[0]}"
        f" for event {manual}",
    )
    assert released["context_service"] == "release_all"
    assert released["entity_id"] == entity_id(hass, entry, "switch", f"{IP_DEVICES[0]}/{SETPOINT}")

    by_vtn = [
        e
        for e in entries
        if reads(e, f"started shedding at level 1 for event {event_id} (by the VTN)")
    ]
    assert by_vtn
    assert "context_user_id" not in by_vtn[0]
    switched = one(
        entries,
        f"released Zone setpoint {IP_DEVICES[1]} on BACnet controller {IP_DEVICES[1]}"
        f" for event {event_id}",
    )
    assert switched["entity_id"] == point
    assert switched["context_user_id"] == hass_admin_user.id
    assert switched["context_domain"] == SWITCH_DOMAIN
    assert switched["context_service"] == SERVICE_TURN_OFF
    opted_out = one(entries, f"opted out of event {event_id}")
    assert opted_out["context_domain"] == SWITCH_DOMAIN
    assert opted_out["context_service"] == SERVICE_TURN_OFF
    opted_in = one(entries, f"opted back in to event {event_id}")
    assert opted_in["context_service"] == SERVICE_TURN_ON
    # Opting back in sheds again, on the operator's behalf.
    again = [e for e in entries if reads(e, f"started shedding at level 1 for event {event_id}")]
    assert len(again) == 1
    assert again[0]["context_service"] == SERVICE_TURN_ON


async def test_the_vtn_and_the_schedule_are_named_in_the_message(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    building: SimBuilding,
    init_integration: MockConfigEntry,
) -> None:
    since = dt_util.utcnow()
    # The logbook is read once each shed has ended (and its releases have been verified).
    ended: list[str] = []

    @callback
    def shed_ended(event: Event) -> None:
        ended.append(event.data.get("previous_event_id"))

    hass.bus.async_listen(EVENT_SHED_ENDED, shed_ended)
    building.bacnet.device(IP_DEVICES[2]).deny_writes(SETPOINT)
    short = building.vtn.add_event(level=1, duration=timedelta(seconds=4))
    await wait_for(lambda: short in ended, what="short event over")
    building.bacnet.device(IP_DEVICES[2]).allow_writes(SETPOINT)
    cancelled = building.vtn.add_event(level=1, duration=timedelta(minutes=10))
    await wait_for(setpoints(building, 78.0), what="shed")
    building.vtn.cancel_event(cancelled)
    await wait_for(lambda: cancelled in ended, what="cancelled")
    removed = building.vtn.add_event(level=1, duration=timedelta(minutes=10))
    await wait_for(setpoints(building, 78.0), what="shed again")
    building.vtn.remove_event(removed)
    await wait_for(lambda: removed in ended, what="implied cancel")
    # An event recorded for an entry that no longer exists still reads well.
    hass.bus.async_fire(f"{DOMAIN}_shed_ended", {"config_entry_id": "gone", "event_id": None})
    hass.bus.async_fire(
        f"{DOMAIN}_point_released", {"config_entry_id": "gone", "point": "x", "name": "Old point"}
    )

    entries = await logbook_entries(hass, hass_ws_client, since)
    messages = [entry["message"] for entry in entries]
    one(entries, f"started shedding at level 1 for event {short} (by the VTN)")
    one(entries, f"stopped shedding for event {short} (as scheduled)")
    # The shed's releases are counted, not told one by one.
    assert not [m for m in messages if m.startswith(f"released Zone setpoint {IP_DEVICES[0]}")]
    controller = f"BACnet controller {IP_DEVICES[2]}"
    failed = one(
        entries,
        f"could not verify Zone setpoint {IP_DEVICES[2]} on {controller}: the controller refused"
        f" the write (access_denied) for event {short} (by the VTN)",
    )
    assert failed["entity_id"] == entity_id(
        hass, init_integration, "switch", f"{IP_DEVICES[2]}/{SETPOINT}"
    )
    one(entries, f"event {cancelled} was cancelled by the VTN")
    one(entries, f"stopped shedding for event {cancelled} (by the VTN)")
    one(entries, f"event {removed} is no longer offered by the VTN (cancelled)")
    one(entries, f"stopped shedding for event {removed} (by the VTN)")
    gone = one(entries, "stopped shedding")
    assert gone["name"] == "Loadshed VEN"
    assert "entity_id" not in one(entries, "released Old point")
    assert not any("context_user_id" in entry for entry in entries), messages
