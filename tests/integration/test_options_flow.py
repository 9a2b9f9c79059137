"""The options flow: the shed policy applied to the running entry, without a reload."""

from __future__ import annotations

from datetime import timedelta

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.loadshed_ven.const import DOMAIN
from custom_components.loadshed_ven.data import LoadshedData
from custom_components.loadshed_ven.repair_issues import vtn_unreachable_issue_id
from custom_components.loadshed_ven.settings import controller_title, split_v1
from sim.building import SimBuilding

from .conftest import RELEASED, SHED, VEN_NAME, entry_data, setpoints, start_entry, wait_for

POLICY = {
    "shed_level": 1,
    "normal_level": 0,
    "act_on_test_events": False,
    "baseline_minutes": 15,
    "vtn_outage_minutes": 30,
    "meter_interval": 1,
}


async def _set_options(hass: HomeAssistant, entry: MockConfigEntry, **changes: object) -> None:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**POLICY, **changes}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


async def test_normal_level_must_stay_below_the_shed_level(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    schema = result["data_schema"].schema
    assert "meter_interval" in schema  # a Modbus meter
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**POLICY, "shed_level": 2, "normal_level": 2}
    )
    assert result["errors"] == {"normal_level": "normal_not_below_shed"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**POLICY, "shed_level": 2, "normal_level": 1}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert init_integration.options["shed_level"] == 2


async def test_policy_applies_live_during_an_event(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    data: LoadshedData = entry.runtime_data
    building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: setpoints(building) == SHED, what="shed at level 1")

    # Level 1 no longer sheds: released, by the same running entry (no reload, no new VEN).
    await _set_options(hass, entry, shed_level=2, meter_interval=7)
    await wait_for(lambda: setpoints(building) == RELEASED, what="released by the new policy")
    assert entry.runtime_data is data
    assert entry.state is ConfigEntryState.LOADED
    assert data.controller.policy.shed_level == 2
    assert data.meter.update_interval == timedelta(seconds=7)
    assert data.connected

    # And back: the event still in force sheds again.
    await _set_options(hass, entry, shed_level=1)
    await wait_for(lambda: setpoints(building) == SHED, what="shed again")
    assert entry.runtime_data is data
    assert data.settings.policy.shed_level == 1


async def test_baseline_window_and_outage_alert_apply_live(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    """A shorter outage alert counts from when the VTN was lost, in the same running entry."""
    entry = init_integration
    data: LoadshedData = entry.runtime_data
    issue_id = vtn_unreachable_issue_id(entry.entry_id)
    await building.vtn.stop()
    await wait_for(lambda: not data.connected, what="VTN seen as down")
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=5))
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None  # 30 min configured

    await _set_options(hass, entry, baseline_minutes=5, vtn_outage_minutes=1)
    assert entry.runtime_data is data
    assert data.verification.window == timedelta(minutes=5)
    assert data.settings.baseline_window == timedelta(minutes=5)
    assert data.settings.vtn_outage_alert == timedelta(minutes=1)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=2))
    await hass.async_block_till_done()
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert (issue.translation_placeholders or {})["minutes"] == "1"

    await _set_options(hass, entry, vtn_outage_minutes=240)  # longer than the outage so far
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    await building.vtn.start()
    await wait_for(lambda: data.connected, timeout=30, what="VEN back")


async def test_entity_meter_has_no_interval_and_a_v2_entry_loads_as_is(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    """A version 2 entry (as the config flow creates it) with a meter entity."""
    hass.states.async_set("sensor.main_power", "500", {"unit_of_measurement": "kW"})
    v1 = {**entry_data(building), "meter_source": "entity", "meter_entity": "sensor.main_power"}
    data, options, controllers = split_v1(v1)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=VEN_NAME,
        data=data,
        options=options,
        version=2,
        subentries_data=[
            {
                "data": controller,
                "subentry_type": "controller",
                "title": controller_title(controller),
                "unique_id": controller["address"],
            }
            for controller in controllers
        ],
    )
    entry.add_to_hass(hass)
    live = await start_entry(hass, entry)
    assert dict(entry.data) == data  # not migrated again
    assert len(live.point_states()) == 5
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert "meter_interval" not in result["data_schema"].schema
    policy = {k: v for k, v in POLICY.items() if k != "meter_interval"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**policy, "act_on_test_events": True}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert live.driver.schedule.act_on_test
    assert entry.runtime_data is live
    assert await hass.config_entries.async_unload(entry.entry_id)
