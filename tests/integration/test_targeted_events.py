"""Events that name resources (eiTarget) on the simulated building: only their points shed.

The controllers get OpenADR resource ids while the entry runs (a subentry update, as the
controller flow saves it); every assertion about the building reads the simulated controllers'
priority arrays, and the opts are what the simulated VTN received.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_RECONFIGURE
from homeassistant.core import Event, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven.data import LoadshedData
from sim.building import SimBuilding

from .conftest import ALL_DEVICES, IP_DEVICES, ROUTED_DEVICE, VEN_NAME, setpoints, wait_for

A, B = IP_DEVICES[0], IP_DEVICES[1]
OTHERS = [IP_DEVICES[2], ROUTED_DEVICE]


def _subentry(entry: MockConfigEntry, address: str) -> Any:
    return next(s for s in entry.subentries.values() if s.unique_id == address)


async def _set_ids(hass: HomeAssistant, entry: MockConfigEntry, address: str, **ids: str) -> None:
    sub = _subentry(entry, address)
    hass.config_entries.async_update_subentry(entry, sub, data={**sub.data, **ids})
    await hass.async_block_till_done()


@pytest.fixture
async def targeted_entry(hass: HomeAssistant, init_integration: MockConfigEntry) -> MockConfigEntry:
    """Controller A is resource "A" in group "east", controller B resource "B"."""
    data: LoadshedData = init_integration.runtime_data
    await _set_ids(hass, init_integration, A, resource_id="A", group_id="east")
    await _set_ids(hass, init_integration, B, resource_id="B")
    assert init_integration.runtime_data is data  # applied live, no reload
    return init_integration


def _by_device(building: SimBuilding) -> dict[str, object]:
    return dict(zip(ALL_DEVICES, setpoints(building), strict=True))


async def _received(building: SimBuilding, event_id: str) -> None:
    ven_id = building.vtn.ven_id_for(VEN_NAME)
    await wait_for(
        lambda: any(o.event_id == event_id and o.ven_id == ven_id for o in building.vtn.opts),
        what=f"the VEN's answer to {event_id}",
    )
    await asyncio.sleep(0.5)  # a pass that would write has had time to


async def test_an_event_for_resource_a_sheds_only_a(
    hass: HomeAssistant, building: SimBuilding, targeted_entry: MockConfigEntry
) -> None:
    received: list[Event] = []
    hass.bus.async_listen("loadshed_ven_event_received", received.append)
    event_id = building.vtn.add_event(
        level=1, duration=timedelta(minutes=30), targets={"resource_id": ["A"]}
    )
    await wait_for(lambda: _by_device(building)[A] == 78.0, what="A shed")
    await _received(building, event_id)
    assert _by_device(building) == {A: 78.0, B: None, OTHERS[0]: None, OTHERS[1]: None}
    # B's priority array is untouched at every slot, not only ours.
    assert building.bacnet.device(B).priority_array("analog-value,302").count(None) == 16
    assert received[-1].data["resources"] == ["A"]
    assert received[-1].data["points"] == 2  # A's setpoint and shed enable
    assert received[-1].data["targets"] == "resourceID A"
    # The activity event entity shows the same, for the logbook and the dashboard.
    await hass.async_block_till_done()
    shown = [
        state.attributes
        for state in hass.states.async_all("event")
        if state.attributes.get("event_id") == event_id
    ]
    assert shown
    assert (shown[0]["resources"], shown[0]["points"]) == (["A"], 2)
    data: LoadshedData = targeted_entry.runtime_data
    assert data.driver.level == 1
    opts = [o for o in building.vtn.opts if o.event_id == event_id]
    assert [o.opt_type for o in opts] == ["optIn"]

    building.vtn.cancel_event(event_id)
    await wait_for(lambda: _by_device(building)[A] is None, what="A released")


async def test_a_group_and_an_untargeted_event(
    building: SimBuilding, targeted_entry: MockConfigEntry
) -> None:
    group = building.vtn.add_event(
        level=1, duration=timedelta(minutes=30), targets={"group_id": ["east"]}
    )
    await wait_for(lambda: _by_device(building)[A] == 78.0, what="group east shed")
    await _received(building, group)
    assert _by_device(building)[B] is None
    building.vtn.add_event(level=1, duration=timedelta(minutes=30))  # the whole VEN
    await wait_for(lambda: setpoints(building) == [78.0] * 4, what="every controller shed")


async def test_overlapping_events_shed_each_resource_at_its_level(
    building: SimBuilding, targeted_entry: MockConfigEntry
) -> None:
    first = building.vtn.add_event(
        level=1, duration=timedelta(minutes=30), targets={"resource_id": ["A"]}
    )
    building.vtn.add_event(level=2, duration=timedelta(minutes=30), targets={"resource_id": ["B"]})
    await wait_for(
        lambda: _by_device(building) == {A: 78.0, B: 80.0, OTHERS[0]: None, OTHERS[1]: None},
        what="A at level 1, B at level 2",
    )
    # A's event ends: A is released, B keeps its level.
    building.vtn.cancel_event(first)
    await wait_for(lambda: _by_device(building)[A] is None, what="A released")
    assert _by_device(building)[B] == 80.0


async def test_a_price_signal_sheds_nothing_and_warns(
    building: SimBuilding, targeted_entry: MockConfigEntry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30), signal_type="price")
    await _received(building, event_id)
    assert setpoints(building) == [None] * 4
    assert "only 'level' is acted on" in caplog.text
    assert [o.opt_type for o in building.vtn.opts if o.event_id == event_id] == ["optOut"]


async def test_an_event_for_another_ven_sheds_nothing_and_is_logged(
    building: SimBuilding, targeted_entry: MockConfigEntry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    event_id = building.vtn.add_event(
        level=1, duration=timedelta(minutes=30), targets={"ven_id": ["some-other-ven"]}
    )
    await _received(building, event_id)
    assert setpoints(building) == [None] * 4
    assert "none of this VEN's points" in caplog.text
    # Accepted all the same: the opt is this VEN's, as for any event.
    assert [o.opt_type for o in building.vtn.opts if o.event_id == event_id] == ["optIn"]
    data: LoadshedData = targeted_entry.runtime_data
    assert data.driver.level == 0


async def test_a_controller_edited_in_the_flow_keeps_its_ids(
    hass: HomeAssistant, building: SimBuilding, targeted_entry: MockConfigEntry
) -> None:
    entry = targeted_entry
    sub = _subentry(entry, B)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "controller"),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": sub.subentry_id},
    )
    assert result["type"] is FlowResultType.FORM
    suggested = {
        str(key): (key.description or {}).get("suggested_value")
        for key in result["data_schema"].schema
    }
    assert (suggested["resource_id"], suggested["group_id"]) == ("B", "")
    fields = {
        "address": B,
        "bulk": "\n".join(
            line
            for line in _stored_lines(sub.data["points"])
            if line  # the same points
        ),
        "resource_id": " B2 ",
        "group_id": "east",
    }
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], fields)
    assert result["type"] is FlowResultType.ABORT
    await hass.async_block_till_done()
    assert _subentry(entry, B).data["resource_id"] == "B2"
    assert _subentry(entry, B).data["group_id"] == "east"
    # The edit is live: an event for group east now sheds A and B.
    building.vtn.add_event(level=1, duration=timedelta(minutes=30), targets={"group_id": ["east"]})
    await wait_for(
        lambda: _by_device(building) == {A: 78.0, B: 78.0, OTHERS[0]: None, OTHERS[1]: None},
        what="A and B shed",
    )


def _stored_lines(points: list[Any]) -> list[str]:
    from custom_components.loadshed_ven.config_flow_controller import stored_lines  # noqa: PLC0415

    return stored_lines(points).splitlines()
