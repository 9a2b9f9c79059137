"""Buttons, actions (services) and diagnostics of a loaded entry against the simulated building."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from homeassistant.components.button.const import SERVICE_PRESS
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID, STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.loadshed_ven.const import DOMAIN
from custom_components.loadshed_ven.data import LoadshedData
from custom_components.loadshed_ven.engine.shed import ApplyReport
from custom_components.loadshed_ven.errors import raise_for_failures
from sim.building import SimBuilding

from . import conftest
from .conftest import (
    ALL_DEVICES,
    IP_DEVICES,
    ROUTED_DEVICE,
    SETPOINT,
    SHED_ENABLE,
    VEN_NAME,
    entry_data,
    slot,
    start_entry,
    wait_for,
)
from .test_platforms import attrs, entity_id, state_of

ALL_KEYS = sorted([f"{a}/{SETPOINT}" for a in ALL_DEVICES] + [f"{IP_DEVICES[0]}/{SHED_ENABLE}"])


def setpoints(building: SimBuilding) -> list[object]:
    """Our slot (10) of every controller's zone setpoint."""
    return [slot(building, address, SETPOINT, 10) for address in ALL_DEVICES]


async def press(hass: HomeAssistant, entry: MockConfigEntry, key: str) -> None:
    """Press one of the VEN's buttons."""
    await hass.services.async_call(
        "button",
        SERVICE_PRESS,
        {ATTR_ENTITY_ID: entity_id(hass, entry, "button", key)},
        blocking=True,
    )


async def test_shed_now_and_release_all_buttons(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    await press(hass, entry, "shed_now")
    assert setpoints(building) == [78.0] * 4
    assert slot(building, IP_DEVICES[0], SHED_ENABLE, 12) == "active"
    await hass.async_block_till_done()
    assert state_of(hass, entity_id(hass, entry, "binary_sensor", "shed_active")) == STATE_ON
    assert state_of(hass, entity_id(hass, entry, "sensor", "event_id")).startswith("manual-")
    start = datetime.fromisoformat(state_of(hass, entity_id(hass, entry, "sensor", "event_start")))
    end = datetime.fromisoformat(state_of(hass, entity_id(hass, entry, "sensor", "event_end")))
    assert end - start == timedelta(hours=1)

    await press(hass, entry, "release_all")
    assert setpoints(building) == [None] * 4
    assert slot(building, IP_DEVICES[0], SHED_ENABLE, 12) is None
    await hass.async_block_till_done()
    switch = entity_id(hass, entry, "switch", f"{ROUTED_DEVICE}/{SETPOINT}")
    assert state_of(hass, switch) == STATE_OFF
    # Releasing all ended the manual shed itself, so nothing is left to keep released.
    assert attrs(hass, switch)["operator_released"] is False
    assert state_of(hass, entity_id(hass, entry, "binary_sensor", "shed_active")) == STATE_OFF


async def test_shed_now_button_reports_failed_points(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    building.bacnet.device(IP_DEVICES[1]).deny_writes(SETPOINT)
    with pytest.raises(HomeAssistantError) as err:
        await press(hass, init_integration, "shed_now")
    assert err.value.translation_key == "shed_failed"
    assert err.value.translation_placeholders == {
        "count": "1",
        "points": f"{IP_DEVICES[1]}/{SETPOINT}",
    }
    # The other points shed anyway.
    assert setpoints(building) == [78.0, None, 78.0, 78.0]


async def test_opt_out_button(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    with pytest.raises(HomeAssistantError) as err:
        await press(hass, entry, "opt_out")
    assert err.value.translation_key == "no_event"

    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: setpoints(building) == [78.0] * 4, what="shed")
    await press(hass, entry, "opt_out")
    assert setpoints(building) == [None] * 4
    await hass.async_block_till_done()
    assert state_of(hass, entity_id(hass, entry, "sensor", "event_status")) == "opted_out"
    assert state_of(hass, entity_id(hass, entry, "binary_sensor", "shed_active")) == STATE_OFF
    await wait_for(
        lambda: any(o.event_id == event_id and o.opt_type == "optOut" for o in building.vtn.opts),
        what="optOut at the VTN",
    )


async def test_shed_and_release_all_actions_return_reports(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    target = {"config_entry_id": init_integration.entry_id}
    response = await hass.services.async_call(
        DOMAIN,
        "shed",
        {**target, "level": 3, "duration": {"minutes": 30}},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert isinstance(response["written"], list)
    assert sorted(str(key) for key in response["written"]) == ALL_KEYS
    assert response["failed"] == []
    assert setpoints(building) == [82.0] * 4
    end = state_of(hass, entity_id(hass, init_integration, "sensor", "event_end"))
    start = state_of(hass, entity_id(hass, init_integration, "sensor", "event_start"))
    assert datetime.fromisoformat(end) - datetime.fromisoformat(start) == timedelta(minutes=30)

    building.bacnet.device(ROUTED_DEVICE).deny_writes(SETPOINT)
    response = await hass.services.async_call(
        DOMAIN, "release_all", target, blocking=True, return_response=True
    )
    assert response is not None
    assert response["failed"] == [f"{ROUTED_DEVICE}/{SETPOINT}"]
    assert isinstance(response["released"], list)
    assert len(response["released"]) == 4
    # Without a response the same failure is an error.
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(DOMAIN, "release_all", target, blocking=True)
    assert err.value.translation_key == "release_all_failed"
    building.bacnet.device(ROUTED_DEVICE).allow_writes(SETPOINT)
    await hass.services.async_call(DOMAIN, "release_all", target, blocking=True)
    assert setpoints(building) == [None] * 4


async def test_shed_action_without_level_uses_the_policy(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    await hass.services.async_call(
        DOMAIN, "shed", {"config_entry_id": init_integration.entry_id}, blocking=True
    )
    assert setpoints(building) == [78.0] * 4  # shed level 1, open-ended
    assert state_of(hass, entity_id(hass, init_integration, "sensor", "event_end")) == "unknown"


async def test_shed_below_the_shed_level_is_refused(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN, title=VEN_NAME, data={**entry_data(building), "shed_level": 2}
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "shed", {"config_entry_id": entry.entry_id, "level": 1}, blocking=True
        )
    assert err.value.translation_key == "level_does_not_shed"
    assert err.value.translation_placeholders == {"level": "1", "shed_level": "2"}
    await hass.services.async_call(
        DOMAIN, "shed", {"config_entry_id": entry.entry_id}, blocking=True
    )
    assert setpoints(building) == [80.0] * 4
    # Unloading releases everything while the building still runs.
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert setpoints(building) == [None] * 4


async def test_opt_out_action(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    target = {"config_entry_id": init_integration.entry_id}
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "opt_out", {**target, "event_id": "nope"}, blocking=True
        )
    assert err.value.translation_key == "unknown_event"
    with pytest.raises(HomeAssistantError) as err2:
        await hass.services.async_call(DOMAIN, "opt_out", target, blocking=True)
    assert err2.value.translation_key == "no_event"

    event_id = building.vtn.add_event(level=2, duration=timedelta(minutes=30))
    await wait_for(lambda: setpoints(building) == [80.0] * 4, what="shed")
    await hass.services.async_call(
        DOMAIN, "opt_out", {**target, "event_id": event_id}, blocking=True
    )
    assert setpoints(building) == [None] * 4


async def test_actions_validate_the_entry(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    for service in ("shed", "release_all", "opt_out"):
        with pytest.raises(ServiceValidationError) as err:
            await hass.services.async_call(
                DOMAIN, service, {"config_entry_id": "missing"}, blocking=True
            )
        assert err.value.translation_key == "invalid_config_entry"
    for field, value, key in (
        ("level", 4, "invalid_level"),
        ("duration", 0, "duration_out_of_range"),
    ):
        with pytest.raises(ServiceValidationError) as err:
            await hass.services.async_call(
                DOMAIN,
                "shed",
                {"config_entry_id": init_integration.entry_id, field: value},
                blocking=True,
            )
        assert err.value.translation_key == key

    assert await hass.config_entries.async_unload(init_integration.entry_id)
    assert init_integration.state is ConfigEntryState.NOT_LOADED
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "release_all", {"config_entry_id": init_integration.entry_id}, blocking=True
        )
    assert err.value.translation_key == "unloaded_config_entry"
    assert err.value.translation_placeholders == {"config_entry": VEN_NAME}


async def test_diagnostics_redact_secrets(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    building: SimBuilding,
    init_integration: MockConfigEntry,
) -> None:
    secrets = {
        "cert": "-----BEGIN CERTIFICATE-----",
        "key": "-----BEGIN PRIVATE KEY-----",
        "passphrase": "hunter2",
        "ca": "-----BEGIN CERTIFICATE-----",
        "ven_id": "ven-secret",
        "vtn_fingerprint": "AA:BB:CC",
    }
    # Stored secrets the running entry counts as built from, so the update listener (which
    # compares with the runtime shape) has nothing to apply and does not reload it.
    live: LoadshedData = init_integration.runtime_data
    live.shape = replace(live.shape, data={**live.shape.data, **secrets})
    hass.config_entries.async_update_entry(
        init_integration, data={**init_integration.data, **secrets}
    )
    building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: setpoints(building) == [78.0] * 4, what="shed")

    diag = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    assert init_integration.runtime_data is live  # not reloaded
    data = diag["entry"]["data"]
    for key in secrets:
        assert data[key] == "**REDACTED**"
    assert "hunter2" not in str(diag)
    assert data["ven_name"] == VEN_NAME
    runtime = diag["runtime"]
    assert runtime["level"] == 1
    assert runtime["connected"] is True
    assert runtime["current_event"]["status"] == "active"
    assert runtime["schedule"][0]["segments"][0]["level"] == 1
    points = {p["key"]: p for p in diag["points"]}
    assert sorted(points) == ALL_KEYS
    held = points[f"{IP_DEVICES[0]}/{SETPOINT}"]
    assert held["status"] == "held"
    assert held["written_value"] == 78.0
    assert held["verified"] is True
    assert held["failure"] is None
    assert diag["meter"]["last_update_success"] is True


async def test_opt_out_releases_even_when_the_vtn_is_down(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: setpoints(building) == [78.0] * 4, what="shed")
    await building.vtn.stop()
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN, "opt_out", {"config_entry_id": init_integration.entry_id}, blocking=True
        )
    assert err.value.translation_key == "opt_out_failed"
    assert (err.value.translation_placeholders or {})["event_id"] == event_id
    # The building no longer sheds for that event, whatever the VTN heard.
    assert setpoints(building) == [None] * 4
    await building.vtn.start()


def test_failure_lists_are_shortened() -> None:
    keys = tuple(f"127.0.0.{n}/analog-value,1" for n in range(2, 10))
    with pytest.raises(HomeAssistantError) as err:
        raise_for_failures(ApplyReport(failed=keys), "shed_failed")
    placeholders = err.value.translation_placeholders or {}
    assert placeholders["count"] == "8"
    assert placeholders["points"] == ", ".join(keys[:5]) + ", …"
    raise_for_failures(ApplyReport(written=keys), "shed_failed")  # nothing failed: no error


@pytest.mark.parametrize("level", [1.5, 2.9, True, "1.5", "two", 0, -1, [1]])
async def test_shed_refuses_fractional_level(
    hass: HomeAssistant,
    building: SimBuilding,
    init_integration: MockConfigEntry,
    level: object,
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "shed",
            {"config_entry_id": init_integration.entry_id, "level": level},
            blocking=True,
        )
    assert err.value.translation_key == "invalid_level"
    assert err.value.translation_domain == DOMAIN
    assert setpoints(building) == [None] * 4  # nothing was written


@pytest.mark.parametrize("level", [2, 2.0, "2"])
async def test_shed_accepts_whole_number_level_in_any_form(
    hass: HomeAssistant,
    building: SimBuilding,
    init_integration: MockConfigEntry,
    level: object,
) -> None:
    await hass.services.async_call(
        DOMAIN,
        "shed",
        {"config_entry_id": init_integration.entry_id, "level": level},
        blocking=True,
    )
    assert setpoints(building) == [80.0] * 4


@pytest.mark.parametrize(
    ("duration", "key"),
    [
        (10**12, "duration_out_of_range"),
        (1e20, "duration_out_of_range"),  # beyond what a timedelta holds
        ({"days": 9000 * 365}, "duration_out_of_range"),
        ({"days": 10**12}, "duration_out_of_range"),
        ("2000000000:00:00", "duration_out_of_range"),
        ({"days": 7, "seconds": 1}, "duration_out_of_range"),
        (-5, "duration_out_of_range"),
        ("soon", "invalid_duration"),
        (True, "invalid_duration"),
    ],
)
async def test_shed_refuses_overflowing_duration(
    hass: HomeAssistant,
    building: SimBuilding,
    init_integration: MockConfigEntry,
    duration: object,
    key: str,
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "shed",
            {"config_entry_id": init_integration.entry_id, "duration": duration},
            blocking=True,
        )
    assert err.value.translation_key == key
    if key == "duration_out_of_range":
        assert (err.value.translation_placeholders or {})["max_days"] == "7"
    assert setpoints(building) == [None] * 4


async def test_shed_accepts_the_longest_duration(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    await hass.services.async_call(
        DOMAIN,
        "shed",
        {"config_entry_id": entry.entry_id, "duration": {"days": 7}},
        blocking=True,
    )
    assert setpoints(building) == [78.0] * 4
    await hass.async_block_till_done()
    start = datetime.fromisoformat(state_of(hass, entity_id(hass, entry, "sensor", "event_start")))
    end = datetime.fromisoformat(state_of(hass, entity_id(hass, entry, "sensor", "event_end")))
    assert end - start == timedelta(days=7)


async def test_offset_switch_shows_the_recorded_base(
    hass: HomeAssistant, building: SimBuilding, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An offset point's switch shows the value its offset adds to; an absolute one has none."""
    offset = {
        "address": IP_DEVICES[0],
        "object_type": "analog-value",
        "instance": 302,
        "priority": 10,
        "values": [2.0, 4.0, 6.0],
        "offset": True,
        "max": 85.0,
    }
    absolute = {**offset, "address": IP_DEVICES[1], "values": [78.0, 80.0, 82.0]}
    del absolute["offset"], absolute["max"]
    monkeypatch.setattr(conftest, "point_dicts", lambda: [offset, absolute])
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=VEN_NAME,
        data=entry_data(building),
        unique_id=f"{building.vtn.url.lower()}|{VEN_NAME}",
    )
    entry.add_to_hass(hass)
    await start_entry(hass, entry)
    offset_switch = entity_id(hass, entry, "switch", f"{IP_DEVICES[0]}/{SETPOINT}")
    absolute_switch = entity_id(hass, entry, "switch", f"{IP_DEVICES[1]}/{SETPOINT}")
    assert "base_value" not in attrs(hass, offset_switch)

    building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: state_of(hass, offset_switch) == STATE_ON, what="offset point held")
    assert attrs(hass, offset_switch)["base_value"] == 72.0
    assert attrs(hass, offset_switch)["written_value"] == 74.0
    await wait_for(lambda: state_of(hass, absolute_switch) == STATE_ON, what="absolute held")
    assert "base_value" not in attrs(hass, absolute_switch)
    assert await hass.config_entries.async_unload(entry.entry_id)
