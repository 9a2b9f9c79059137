"""From an OpenADR event on the simulated VTN to verified overrides in the simulated controllers.

Every assertion about the building reads the simulated controllers' priority arrays; every
assertion about the VTN reads what the VTN actually received.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven.data import LoadshedData
from sim.building import SimBuilding

from .conftest import (
    ALL_DEVICES,
    IP_DEVICES,
    OPENADR_VERSIONS,
    SETPOINT,
    SHED_ENABLE,
    VEN_NAME,
    slot,
    wait_for,
)

# The entities of the test building's entry (5 points), whichever VTN version it uses.
EXPECTED_ENTITIES = sorted(
    [
        *(("binary_sensor", key) for key in ("shed_active", "vtn_connected")),
        *(("button", key) for key in ("opt_out", "release_all", "shed_now")),
        ("event", "activity"),
        *(
            ("sensor", key)
            for key in (
                "adr_level",
                "energy_avoided",
                "event_end",
                "event_id",
                "event_start",
                "event_status",
                "grid_energy",
                "kw_saved",
                "meter_power",
                "peak_after_release",
            )
        ),
        *[("switch", "override")] * 5,
        ("switch", "participation"),
    ]
)


def _setpoints(building: SimBuilding) -> list[object]:
    return [slot(building, address, SETPOINT, 10) for address in ALL_DEVICES]


def _ven_id(building: SimBuilding) -> str:
    return building.vtn.ven_id_for(VEN_NAME)


@OPENADR_VERSIONS
async def test_level_1_event_holds_every_point_then_ends_on_time(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    fired: list[str] = []
    for kind in ("shed_started", "shed_ended", "event_received"):
        hass.bus.async_listen(f"loadshed_ven_{kind}", lambda e, k=kind: fired.append(k))

    building.vtn.add_event(level=1, duration=timedelta(seconds=4))
    await wait_for(lambda: _setpoints(building) == [78.0] * 4, what="level 1 on every controller")
    assert slot(building, IP_DEVICES[0], SHED_ENABLE, 12) == "active"
    # Nothing else in the priority arrays was touched.
    assert building.bacnet.device(IP_DEVICES[1]).priority_array(SETPOINT).count(None) == 15
    assert building.bacnet.device(IP_DEVICES[1]).present_value(SETPOINT) == 78.0

    # The event's end releases everything on its timer.
    await wait_for(lambda: _setpoints(building) == [None] * 4, timeout=10, what="release at end")
    assert slot(building, IP_DEVICES[0], SHED_ENABLE, 12) is None
    assert building.bacnet.device(IP_DEVICES[1]).present_value(SETPOINT) == 72.0
    await wait_for(lambda: "shed_ended" in fired, what="shed_ended on the bus")
    assert fired == ["event_received", "shed_started", "shed_ended"]
    opts = [o for o in building.vtn.opts if o.ven_id == _ven_id(building)]
    assert opts
    assert opts[0].opt_type == "optIn"


@OPENADR_VERSIONS
async def test_cancel_releases(building: SimBuilding, init_integration: MockConfigEntry) -> None:
    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: _setpoints(building) == [78.0] * 4, what="shed")
    building.vtn.cancel_event(event_id)
    await wait_for(lambda: _setpoints(building) == [None] * 4, what="release after cancel")


@OPENADR_VERSIONS
async def test_modify_to_level_2_rewrites_values(
    building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: _setpoints(building) == [78.0] * 4, what="level 1")
    building.vtn.modify_event(event_id, level=2)
    await wait_for(lambda: _setpoints(building) == [80.0] * 4, what="level 2")


@OPENADR_VERSIONS
async def test_implied_cancel_releases(
    building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: _setpoints(building) == [78.0] * 4, what="shed")
    building.vtn.remove_event(event_id)
    await wait_for(lambda: _setpoints(building) == [None] * 4, what="release after removal")


@OPENADR_VERSIONS
async def test_event_starting_later_waits_for_its_start(
    building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    start = datetime.now(UTC) + timedelta(seconds=3)
    building.vtn.add_event(
        intervals=[(timedelta(seconds=2), 1), (timedelta(seconds=60), 3)], start=start
    )
    data: LoadshedData = init_integration.runtime_data
    await wait_for(lambda: data.current_event() is not None, what="event received")
    assert _setpoints(building) == [None] * 4  # nothing before the start
    await wait_for(lambda: _setpoints(building) == [78.0] * 4, what="first interval")
    assert datetime.now(UTC) >= start
    await wait_for(lambda: _setpoints(building) == [82.0] * 4, what="second interval")


async def test_test_events_are_logged_not_acted_on(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    received: list[Event] = []
    hass.bus.async_listen("loadshed_ven_event_received", received.append)
    building.vtn.add_event(level=3, duration=timedelta(minutes=5), test_event=True)
    await wait_for(lambda: bool(received), what="test event received")
    assert received[0].data["test_event"] is True
    await hass.async_block_till_done()
    assert _setpoints(building) == [None] * 4


async def test_meter_kw_reaches_the_vtn_as_report_values(
    building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    building.meter.set_base_kw(640.0)
    await wait_for(
        lambda: any(r.value == 640_000.0 for r in building.vtn.reports),
        timeout=20,
        what="a 640 kW report",
    )
    report = next(r for r in building.vtn.reports if r.value == 640_000.0)
    assert (report.measurement, report.unit) == ("RealPower", "W")


async def test_dead_meter_sends_no_made_up_values(
    building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    data: LoadshedData = init_integration.runtime_data
    await wait_for(lambda: bool(building.vtn.reports), timeout=20, what="a first report")
    building.meter.nan = True
    await wait_for(lambda: data.meter.latest_kw is None, what="meter unavailable")
    await asyncio.sleep(2.5)  # let a report already on its way arrive
    seen = len(building.vtn.reports)
    await asyncio.sleep(4.5)  # two more sampling periods (2 s)
    assert building.vtn.reports[seen:] == []


@OPENADR_VERSIONS
async def test_release_all_mid_event(
    building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    building.vtn.add_event(level=2, duration=timedelta(minutes=30))
    await wait_for(lambda: _setpoints(building) == [80.0] * 4, what="shed")
    data: LoadshedData = init_integration.runtime_data
    report = await data.actions.release_all()
    assert sorted(report.released) == sorted(s.point.key for s in data.point_states())
    assert _setpoints(building) == [None] * 4
    assert slot(building, IP_DEVICES[0], SHED_ENABLE, 12) is None


@OPENADR_VERSIONS
async def test_unload_releases_and_leaves_nothing_running(
    hass: HomeAssistant,
    building: SimBuilding,
    init_integration: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: _setpoints(building) == [78.0] * 4, what="shed")
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.NOT_LOADED
    assert _setpoints(building) == [None] * 4
    # A deliberate stop is not an outage: no warning about the VTN.
    assert "VTN unreachable" not in caplog.text
    # verify_cleanup (autouse) fails the test on any task, timer or thread left behind.


@OPENADR_VERSIONS
async def test_home_assistant_stopping_releases_everything(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    """HA does not unload entries when it stops; the integration releases on the stop event."""
    building.vtn.add_event(level=3, duration=timedelta(minutes=30))
    await wait_for(lambda: _setpoints(building) == [82.0] * 4, what="shed")
    await hass.async_stop()
    assert _setpoints(building) == [None] * 4
    assert slot(building, IP_DEVICES[0], SHED_ENABLE, 12) is None


async def test_release_all_ends_a_manual_shed(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    ended: list[Event] = []
    hass.bus.async_listen("loadshed_ven_shed_ended", ended.append)
    data: LoadshedData = init_integration.runtime_data
    await data.actions.shed(2, None)
    assert _setpoints(building) == [80.0] * 4
    assert data.shedding
    await data.actions.release_all()
    assert _setpoints(building) == [None] * 4
    assert not data.shedding
    assert data.level == 0
    await wait_for(lambda: bool(ended), what="shed_ended")


@OPENADR_VERSIONS
async def test_either_vtn_version_gives_the_same_entities(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Operators see the same entities, states and dashboard whichever VTN the entry uses."""
    registry = er.async_get(hass)
    entries = er.async_entries_for_config_entry(registry, init_integration.entry_id)
    keys = sorted((e.domain, e.translation_key or "") for e in entries)
    assert keys == EXPECTED_ENTITIES, keys


@OPENADR_VERSIONS
async def test_the_vtn_hears_the_buildings_status(
    building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    """TELEMETRY_STATUS (2.0b) or the status report (3.x): the level followed, then an
    operator's release of one point as a manual override."""
    data: LoadshedData = init_integration.runtime_data
    building.vtn.add_event(level=2, duration=timedelta(minutes=30))
    await wait_for(lambda: _setpoints(building) == [80.0] * 4, what="shed")

    def heard() -> list[tuple[bool, bool, int | None]]:
        return [(s.online, s.manual_override, s.level) for s in building.vtn.statuses]

    await wait_for(lambda: (True, False, 2) in heard(), timeout=20, what="level 2 at the VTN")
    key = data.point_states()[0].point.key
    await data.actions.release_point(key)
    await wait_for(lambda: heard()[-1] == (True, True, 2), timeout=20, what="manual override")
