"""Adding a controller by discovery: Who-Is, pick a device, pick points, give level values.

Everything runs against the simulated building on loopback, through the running entry's own
BACnet stack. Only the first controller is configured, so the others can be discovered; the
entry's interface (127.0.0.1/32, port 0) cannot broadcast, so a global Who-Is needs a BBMD.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from bacpypes3.primitivedata import ObjectIdentifier
from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven import config_flow_discovery
from custom_components.loadshed_ven.bacnet import (
    BbmdStatus,
    DiscoveredObject,
    DiscoveryProgress,
)
from custom_components.loadshed_ven.config_flow_picks import group_points, groups
from custom_components.loadshed_ven.data import LoadshedData
from custom_components.loadshed_ven.validation import FlowError
from sim.bacnet_objects import (
    DAMPER_COMMAND,
    FAN_SPEED_COMMAND,
    FAN_SPEED_STAGE,
    MODEL_NAME,
    SHED_ENABLE,
    VENDOR_NAME,
    slot_values,
)
from sim.bbmd import SimRemoteSite
from sim.building import SimBuilding

from . import conftest
from .conftest import IP_DEVICES, NETWORK, ROUTED_DEVICE, SETPOINT, slot, wait_for

NEW_DEVICE = IP_DEVICES[1]
NET = IP_DEVICES[0].rsplit(".", 2)[0]  # this test process's loopback /16


@pytest.fixture
def mock_config_entry(building: SimBuilding, monkeypatch: pytest.MonkeyPatch) -> MockConfigEntry:
    """The shared entry with the first controller's points only."""
    monkeypatch.setattr(
        conftest,
        "point_dicts",
        lambda: [
            {
                "address": IP_DEVICES[0],
                "object_type": "analog-value",
                "instance": 302,
                "priority": 10,
                "values": [78.0, 80.0, 82.0],
                "name": "Zone setpoint",
            }
        ],
    )
    monkeypatch.setattr(config_flow_discovery, "DISCOVER_WAIT", 1.0)
    return MockConfigEntry(
        domain=conftest.DOMAIN,
        title=conftest.VEN_NAME,
        data=conftest.entry_data(building),
        unique_id=f"{building.vtn.url.lower()}|{conftest.VEN_NAME}",
    )


async def _discover(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    """Start the controller flow and choose discovery in its menu."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "controller"), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["discover", "manual", "import_file"]
    return dict(
        await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"next_step_id": "discover"}
        )
    )


async def _submit(hass: HomeAssistant, flow_id: str, user_input: dict[str, Any]) -> dict[str, Any]:
    """Submit a form; through a progress step, return what follows it."""
    result = dict(await hass.config_entries.subentries.async_configure(flow_id, user_input))
    while result["type"] is FlowResultType.SHOW_PROGRESS:
        await hass.async_block_till_done()
        result = dict(await hass.config_entries.subentries.async_configure(flow_id))
    return result


def _options(result: dict[str, Any], field: str) -> dict[str, str]:
    """A select field's options as value -> label."""
    for key, value in result["data_schema"].schema.items():
        if str(key) == field:
            return {o["value"]: o["label"] for o in value.config["options"]}
    raise AssertionError(f"no field {field}")


def _suggested(result: dict[str, Any]) -> dict[str, Any]:
    return {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if key.description and "suggested_value" in key.description
    }


async def _to_points(hass: HomeAssistant, entry: MockConfigEntry, where: dict[str, Any]) -> Any:
    result = await _discover(hass, entry)
    flow_id = result["flow_id"]
    result = await _submit(hass, flow_id, where)
    assert result["step_id"] == "pick_device", result
    result = await _submit(hass, flow_id, {"device": "0"})
    assert result["step_id"] == "pick_points", result
    return result


async def test_discover_by_address_pick_points_and_shed(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    """Offsets for the °F setpoint, an absolute fan speed (refused above max, then corrected)
    and the shed enable: the new controller sheds base+offset and releases to NULL."""
    entry = init_integration
    result = await _discover(hass, entry)
    flow_id = result["flow_id"]
    result = await _submit(hass, flow_id, {"address": NEW_DEVICE})
    assert result["step_id"] == "pick_device"
    device = building.bacnet.device(NEW_DEVICE)
    [label] = _options(result, "device").values()
    assert label == f"{device.instance} {device.name} ({VENDOR_NAME} {MODEL_NAME}) at {NEW_DEVICE}"

    result = await _submit(hass, flow_id, {"device": "0"})
    assert result["step_id"] == "pick_points"
    assert not result["errors"]
    offered = _options(result, "objects")
    # The commandable objects only: no sensors.
    assert set(offered) == {SETPOINT, SHED_ENABLE, "multi-state-value,1", *_OUTPUTS}
    assert offered[SETPOINT] == (
        "Zone Cooling Setpoint (analog-value 302), degrees-fahrenheit, now 72, 55-90"
    )

    chosen = [SETPOINT, FAN_SPEED_COMMAND, DAMPER_COMMAND, SHED_ENABLE]
    result = await _submit(hass, flow_id, {"objects": chosen})
    assert result["step_id"] == "values"
    assert result["description_placeholders"]["group"] == "degrees-fahrenheit"
    assert _suggested(result) == {
        "mode": "offset",
        "level_1": 2.0,
        "level_2": 4.0,
        "level_3": 6.0,
        "priority": 10,
    }
    offset = {"mode": "offset", "level_1": 2, "level_2": 4, "level_3": 20, "priority": 10}
    result = await _submit(hass, flow_id, offset)
    assert result["errors"] == {"base": "value_out_of_range"}
    assert result["description_placeholders"]["value"] == "92 (72 +20)"
    assert result["description_placeholders"]["limits"] == "55 to 90"
    result = await _submit(hass, flow_id, {**offset, "level_3": 6})
    assert result["description_placeholders"]["group"] == "percent"
    absolute = {"mode": "absolute", "level_1": 50, "level_2": 40, "level_3": 150, "priority": 10}
    result = await _submit(hass, flow_id, absolute)
    assert result["errors"] == {"base": "value_out_of_range"}
    assert result["description_placeholders"]["object"] == "Supply Fan Speed Command"
    assert result["description_placeholders"]["limits"] == "0 to 100"
    result = await _submit(hass, flow_id, {**absolute, "level_3": 30})
    # The outside-air damper is not cut by the percent default (its ventilation minimum).
    assert result["description_placeholders"]["group"] == "percent"
    assert _suggested(result) == {"mode": "absolute", "priority": 10}
    damper = {"mode": "absolute", "level_1": 20, "level_2": 20, "level_3": 20, "priority": 10}
    result = await _submit(hass, flow_id, damper)
    assert result["description_placeholders"]["group"] == "binary"
    binary = {"level_1": "active", "level_2": "active", "level_3": "active", "priority": 12}
    result = await _submit(hass, flow_id, binary)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == device.name
    await hass.async_block_till_done()

    subentry = next(s for s in entry.subentries.values() if s.unique_id == NEW_DEVICE)
    assert subentry.data["name"] == device.name
    points = {f"{p['object_type']},{p['instance']}": p for p in subentry.data["points"]}
    assert points[SETPOINT] == {
        "address": NEW_DEVICE,
        "object_type": "analog-value",
        "instance": 302,
        "priority": 10,
        "values": [2.0, 4.0, 6.0],
        "name": "Zone Cooling Setpoint",
        "offset": True,
        "min": 55.0,
        "max": 90.0,
    }
    assert points[FAN_SPEED_COMMAND]["values"] == [50.0, 40.0, 30.0]
    assert points[SHED_ENABLE]["priority"] == 12
    registry = er.async_get(hass)
    for obj in points:
        unique_id = f"{entry.entry_id}_{NEW_DEVICE}/{obj}"
        assert registry.async_get_entity_id("switch", "loadshed_ven", unique_id) is not None

    def picked() -> list[object]:
        return [
            slot(building, NEW_DEVICE, SETPOINT, 10),
            _output_slot(building, NEW_DEVICE, FAN_SPEED_COMMAND, 10),
            slot(building, NEW_DEVICE, SHED_ENABLE, 12),
        ]

    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: picked() == [74.0, 50.0, "active"], what="shed")
    building.vtn.cancel_event(event_id)
    await wait_for(lambda: picked() == [None, None, None], what="release")


_OUTPUTS = {FAN_SPEED_COMMAND, DAMPER_COMMAND}


def _output_slot(building: SimBuilding, address: str, obj: str, priority: int) -> object:
    """A priority slot of a simulated output (the sim's helpers cover its points only)."""
    app = building.bacnet.device(address).app
    return slot_values(app.get_object_id(ObjectIdentifier(obj)))[priority - 1]


async def test_discover_behind_the_router(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    """A Who-Is to the MS/TP network finds the routed controller; defaults are kept, and a
    multi-state value must be one of the object's states."""
    result = await _discover(hass, init_integration)
    flow_id = result["flow_id"]
    result = dict(
        await hass.config_entries.subentries.async_configure(flow_id, {"network": NETWORK})
    )
    assert result["type"] is FlowResultType.SHOW_PROGRESS
    assert result["progress_action"] == "searching"
    assert result["description_placeholders"] == {"done": "0", "total": "0"}
    await hass.async_block_till_done()
    result = dict(await hass.config_entries.subentries.async_configure(flow_id))
    assert result["step_id"] == "pick_device"
    [label] = _options(result, "device").values()
    assert label.endswith(f"at {ROUTED_DEVICE}")
    result = await _submit(hass, flow_id, {"device": "0"})
    result = await _submit(hass, flow_id, {"objects": [SETPOINT, FAN_SPEED_STAGE]})
    result = await _submit(hass, flow_id, {**_suggested(result), "mode": "offset"})
    assert result["description_placeholders"]["group"] == "multi-state"
    stages = {"level_1": 2, "level_2": 3, "level_3": 4, "priority": 10}
    with pytest.raises(InvalidData):  # the form itself offers states 1-3 only
        await _submit(hass, flow_id, stages)
    result = await _submit(hass, flow_id, {**stages, "level_3": 3})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    subentry = next(s for s in init_integration.subentries.values() if s.unique_id == ROUTED_DEVICE)
    assert [(p["address"], p["values"]) for p in subentry.data["points"]] == [
        (ROUTED_DEVICE, [2.0, 4.0, 6.0]),
        (ROUTED_DEVICE, [2, 3, 3]),
    ]
    building.vtn.add_event(level=2, duration=timedelta(minutes=30))
    await wait_for(
        lambda: (
            [slot(building, ROUTED_DEVICE, obj, 10) for obj in (SETPOINT, FAN_SPEED_STAGE)]
            == [76.0, 3]
        ),
        what="shed",
    )


async def test_where_to_look_is_checked(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    result = await _discover(hass, init_integration)
    flow_id = result["flow_id"]
    for where, error in (
        ({}, "cannot_broadcast"),  # 127.0.0.1/32 on port 0, no BBMD
        ({"network": NETWORK, "address": NEW_DEVICE}, "network_and_address"),
        ({"network": 999}, "discovery_failed"),  # no router for it, and no broadcast
        ({"address": IP_DEVICES[0]}, "all_configured"),
        ({"address": f"{NET}.0.99"}, "nothing_found"),
    ):
        result = await _submit(hass, flow_id, where)
        assert (result["step_id"], result["errors"]) == ("discover", {"base": error}), where
    result = await _submit(hass, flow_id, {"address": "not an address"})
    assert result["errors"] == {"address": "invalid_address"}


@pytest.mark.usefixtures("quick_recovery")
async def test_objects_that_do_not_answer_are_noted(
    hass: HomeAssistant,
    building: SimBuilding,
    init_integration: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The controller goes silent after its three points were read: a partial list."""
    device = building.bacnet.device(NEW_DEVICE)
    real = config_flow_discovery.read_objects

    async def read_then_fall_silent(*args: Any, progress: Any, **kwargs: Any) -> Any:
        def watch(counts: DiscoveryProgress) -> None:
            if counts.phase == "objects" and counts.done >= 3:
                device.offline = True
            progress(counts)

        return await real(*args, progress=watch, **kwargs)

    monkeypatch.setattr(config_flow_discovery, "read_objects", read_then_fall_silent)
    result = await _to_points(hass, init_integration, {"address": NEW_DEVICE})
    assert result["errors"] == {"base": "partial_objects"}
    assert int(result["description_placeholders"]["failed"]) > 0
    assert {SETPOINT, SHED_ENABLE} <= set(_options(result, "objects"))
    result = await _submit(hass, result["flow_id"], {"objects": []})
    assert result["errors"] == {"base": "no_points_chosen"}


@pytest.mark.usefixtures("quick_recovery")
async def test_a_device_that_falls_silent_has_no_points_to_offer(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    result = await _discover(hass, init_integration)
    result = await _submit(hass, result["flow_id"], {"address": NEW_DEVICE})
    building.bacnet.device(NEW_DEVICE).offline = True
    result = await _submit(hass, result["flow_id"], {"device": "0"})
    assert (result["step_id"], result["errors"]) == ("discover", {"base": "no_commandable_objects"})
    assert result["description_placeholders"] == {"objects": "0", "failed": "1"}


async def test_entry_unloaded_during_the_flow(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    result = await _discover(hass, init_integration)
    result = await _submit(hass, result["flow_id"], {"address": NEW_DEVICE})
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    result = await _submit(hass, result["flow_id"], {"device": "0"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "entry_not_loaded"


async def test_entry_not_loaded_aborts(
    hass: HomeAssistant, building: SimBuilding, added_entry: MockConfigEntry
) -> None:
    result = await _discover(hass, added_entry)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "entry_not_loaded"


@pytest.fixture
async def remote_site(socket_enabled: None) -> AsyncIterator[SimRemoteSite]:
    """A BBMD with two controllers that hear broadcasts only through it."""
    site = SimRemoteSite(f"{NET}.5.1", 2, base_ip=f"{NET}.6.2", first_device_instance=3851)
    await site.start()
    yield site
    await site.stop()


async def test_global_who_is_through_the_bbmd(
    hass: HomeAssistant,
    building: SimBuilding,
    remote_site: SimRemoteSite,
    added_entry: MockConfigEntry,
) -> None:
    """With a BBMD the empty form broadcasts through it and finds the remote controllers."""
    hass.config_entries.async_update_entry(
        added_entry,
        data={**added_entry.data, "bbmd_address": f"{NET}.5.1", "bbmd_port": 47807},
    )
    data: LoadshedData = await conftest.start_entry(hass, added_entry)
    await wait_for(
        lambda: data.bacnet.stack.bbmd_status is BbmdStatus.REGISTERED, what="registered"
    )
    result = await _discover(hass, added_entry)
    result = await _submit(hass, result["flow_id"], {})
    assert result["step_id"] == "pick_device", result
    labels = list(_options(result, "device").values())
    # The two controllers, and the BBMD (a device of its own).
    assert [label.split()[0] for label in labels] == ["3851", "3852", "3853"]
    assert f"({VENDOR_NAME} {MODEL_NAME})" in labels[0]
    assert labels[0].endswith(f"at {NET}.6.2")


def test_a_unit_gives_the_limits_an_object_does_not_report() -> None:
    """A percent output without min/max-pres-value is kept within 0-100 all the same, and a
    heating setpoint gets no raise by default."""
    fan = DiscoveredObject("analog-output", 7, name="Fan", units="percent", present_value=40.0)
    heating = DiscoveredObject("analog-value", 8, name="Heating SP", units="degrees-fahrenheit")
    cooling = DiscoveredObject("analog-value", 9, name="Cooling SP", units="degrees-fahrenheit")
    fans, heat, cool = groups([fan, heating, cooling])
    assert (fans.objects, heat.objects, cool.objects) == ((fan,), (heating,), (cooling,))
    assert (heat.default, cool.default is not None) == (None, True)
    answers = {"mode": "absolute", "level_1": 50, "level_2": 40, "level_3": 150, "priority": 10}
    with pytest.raises(FlowError) as refused:
        group_points(fans, NEW_DEVICE, answers)
    assert refused.value.placeholders == {"object": "Fan", "value": "150", "limits": "0 to 100"}
    with pytest.raises(FlowError) as refused:  # 40 - 50 is below 0
        group_points(fans, NEW_DEVICE, {**answers, "mode": "offset", "level_3": -50})
    assert refused.value.placeholders["value"] == "-10 (40 -50)"
    [point] = group_points(fans, NEW_DEVICE, {**answers, "level_3": 30})
    assert (point.min_value, point.max_value, point.values) == (0.0, 100.0, (50.0, 40.0, 30.0))
