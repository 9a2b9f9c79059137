"""Version 1 entries (everything in ``data``) migrate to subentries per controller, and the
override ledger keeps every override it tracks across the migration."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven.const import DOMAIN
from sim.building import SimBuilding

from .conftest import (
    ALL_DEVICES,
    IP_DEVICES,
    SETPOINT,
    SHED_ENABLE,
    VEN_NAME,
    crash_entry,
    entry_data,
    ledger_records,
    point_dicts,
    point_key,
    setpoints,
    slot,
    start_entry,
    wait_for,
)

POLICY = {"shed_level": 1, "normal_level": 0, "act_on_test_events": False, "meter_interval": 1}


def _keys(points: list[dict[str, Any]]) -> set[str]:
    return {f"{p['address']}/{p['object_type']},{p['instance']}" for p in points}


async def test_v1_entry_becomes_one_subentry_per_controller(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    entry = init_integration  # built as version 1 (conftest), migrated when set up
    v1 = entry_data(building)
    assert entry.version == 2
    assert entry.minor_version == 1
    # Nothing else changed: the data lost its points and policy keys only.
    assert dict(entry.data) == {k: v for k, v in v1.items() if k != "points" and k not in POLICY}
    assert dict(entry.options) == POLICY
    subentries = sorted(entry.subentries.values(), key=lambda s: ALL_DEVICES.index(s.title))
    assert [s.unique_id for s in subentries] == ALL_DEVICES
    assert [s.title for s in subentries] == ALL_DEVICES
    assert {s.subentry_type for s in subentries} == {"controller"}
    # Every point dict is kept exactly as it was stored: same keys, same values.
    by_address = {s.unique_id: list(s.data["points"]) for s in subentries}
    assert by_address[IP_DEVICES[0]] == [v1["points"][0], v1["points"][4]]
    assert _keys([p for pts in by_address.values() for p in pts]) == _keys(point_dicts())
    # The running entry has every point, each switch on its controller's subentry.
    data = entry.runtime_data
    assert {s.point.key for s in data.point_states()} == _keys(point_dicts())
    assert {data.settings.subentry_of[k] for k in _keys(point_dicts())} == set(entry.subentries)


async def test_newer_version_is_refused(hass: HomeAssistant) -> None:
    entry = MockConfigEntry(domain=DOMAIN, title=VEN_NAME, data={}, version=3)
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.version == 3


@pytest.mark.usefixtures("quick_recovery")
async def test_ledger_keeps_every_override_across_the_migration(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    added_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Overrides held when Home Assistant dies are settled as the ledger says after migrating.

    The entry sheds, then dies mid-shed without releasing; its stored configuration is put
    back into the version 1 shape an older release left (the ledger file is the same in both
    versions), without the third controller. Starting again migrates it: the override on the
    controller no longer configured is released, the others are held to the event's end and
    then released, and the ledger ends empty.
    """
    entry = added_entry
    await start_entry(hass, entry)
    event_id = building.vtn.add_event(level=2, duration=timedelta(seconds=12))
    await wait_for(lambda: setpoints(building) == [80.0] * 4, what="shed")
    await wait_for(
        lambda: [r["status"] for r in ledger_records(hass_storage, entry)] == ["held"] * 5,
        what="the pass saved",
    )
    await crash_entry(hass, entry, monkeypatch)
    assert setpoints(building) == [80.0] * 4  # a dead process releases nothing
    before = {r["point"]["address"] for r in ledger_records(hass_storage, entry)}
    assert before == set(ALL_DEVICES)

    # The stored entry as version 1 left it, the third controller removed from it.
    removed = IP_DEVICES[2]
    for subentry_id in list(entry.subentries):
        hass.config_entries.async_remove_subentry(entry, subentry_id)
    v1 = entry_data(building)
    v1["points"] = [p for p in v1["points"] if p["address"] != removed]
    hass.config_entries.async_update_entry(entry, data=v1, options={}, version=1)
    assert not entry.subentries

    data = await start_entry(hass, entry)
    assert entry.version == 2
    assert sorted(s.unique_id or "" for s in entry.subentries.values()) == sorted(
        a for a in ALL_DEVICES if a != removed
    )
    # Released at start: the ledger's own copy of the point still reached it.
    assert slot(building, removed, SETPOINT, 10) is None
    kept = [a for a in ALL_DEVICES if a != removed]
    await wait_for(lambda: all(slot(building, a, SETPOINT, 10) == 80.0 for a in kept), what="held")
    assert slot(building, IP_DEVICES[0], SHED_ENABLE, 12) == "active"
    await wait_for(
        lambda: (
            {point_key(a) for a in kept} | {point_key(IP_DEVICES[0], SHED_ENABLE)}
            == {_record_key(r) for r in ledger_records(hass_storage, entry)}
        ),
        what="the ledger tracks exactly the configured overrides",
    )

    building.vtn.cancel_event(event_id)
    await wait_for(lambda: setpoints(building) == [None] * 4, what="released", timeout=20)
    assert slot(building, IP_DEVICES[0], SHED_ENABLE, 12) is None
    await wait_for(lambda: ledger_records(hass_storage, entry) == [], what="the ledger emptied")
    assert not data.shedding


def _record_key(record: dict[str, Any]) -> str:
    point = record["point"]
    return f"{point['address']}/{point['object_type']},{point['instance']}"
