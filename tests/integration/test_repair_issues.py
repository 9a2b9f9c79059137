"""Repair issues against the simulated building: stuck points, a VTN outage, a wrong VTN pin.

Each test drives a real fault on the simulated peers and reads HA's issue registry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.loadshed_ven.const import DOMAIN
from custom_components.loadshed_ven.data import LoadshedData
from custom_components.loadshed_ven.engine.overrides import (
    FailureKind,
    PointState,
    PointStatus,
)
from custom_components.loadshed_ven.engine.points import OverridePoint
from custom_components.loadshed_ven.openadr.errors import VtnFingerprintMismatch
from custom_components.loadshed_ven.override_ledger import storage_key
from custom_components.loadshed_ven.repair_issues import (
    LISTED_POINTS,
    describe_stuck,
    removed_with_overrides_issue_id,
    stuck_points_issue_id,
    vtn_fingerprint_issue_id,
    vtn_unreachable_issue_id,
)
from sim.building import SimBuilding
from sim.pki import SimTls, generate_pki
from sim.vtn import SimVtn

from .conftest import IP_DEVICES, SETPOINT, VEN_NAME, entry_data, slot, tls_entry, wait_for

# Retries in seconds, not minutes, and a silent controller given up after 1 s.
pytestmark = pytest.mark.usefixtures("quick_recovery")


def _issue(hass: HomeAssistant, issue_id: str) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, issue_id)


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> LoadshedData:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    data: LoadshedData = entry.runtime_data
    return data


@pytest.fixture
async def outage_entry(
    hass: HomeAssistant, building: SimBuilding
) -> AsyncIterator[MockConfigEntry]:
    """An entry that reports a VTN outage after one minute; unloaded while the building runs."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=VEN_NAME,
        data={**entry_data(building), "vtn_outage_minutes": 1},
        unique_id=f"{building.vtn.url.lower()}|{VEN_NAME}",
    )
    yield entry
    if entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_stuck_points_issues_say_why_and_clear_themselves(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    """An offline controller and a refusing one: one issue per reason, until they verify."""
    data: LoadshedData = init_integration.runtime_data
    offline_id = stuck_points_issue_id(init_integration.entry_id, FailureKind.OFFLINE)
    refused_id = stuck_points_issue_id(init_integration.entry_id, FailureKind.ACCESS_DENIED)
    offline, refusing = (building.bacnet.device(a) for a in IP_DEVICES[1:3])
    offline.offline = True
    refusing.deny_writes(SETPOINT)
    assert _issue(hass, offline_id) is None

    building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(
        lambda: _issue(hass, offline_id) is not None and _issue(hass, refused_id) is not None,
        what="a stuck-points issue for each reason",
    )
    for issue_id, kind, address in (
        (offline_id, "offline", IP_DEVICES[1]),
        (refused_id, "access_denied", IP_DEVICES[2]),
    ):
        issue = _issue(hass, issue_id)
        assert issue is not None
        assert issue.severity is ir.IssueSeverity.ERROR
        # The reason is the translation, not English text in a placeholder.
        assert issue.translation_key == f"stuck_points_{kind}"
        placeholders = issue.translation_placeholders or {}
        assert placeholders["count"] == "1"
        assert f"({address}/{SETPOINT})" in placeholders["points"]
    assert slot(building, IP_DEVICES[0], SETPOINT, 10) == 78.0  # the others shed meanwhile

    offline.offline = False
    refusing.allow_writes(SETPOINT)
    # The refused write is retried at the backoff cap; both verify and the issues go.
    await wait_for(
        lambda: _issue(hass, offline_id) is None and _issue(hass, refused_id) is None,
        timeout=20,
        what="issues cleared",
    )
    assert slot(building, IP_DEVICES[1], SETPOINT, 10) == 78.0
    assert slot(building, IP_DEVICES[2], SETPOINT, 10) == 78.0
    assert not [s for s in data.point_states() if s.status is PointStatus.FAILED]


async def test_release_that_fails_on_unload_stays_listed(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    """Unloading cannot release an offline controller: the issue outlives the entry."""
    issue_id = stuck_points_issue_id(init_integration.entry_id, FailureKind.OFFLINE)
    building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: slot(building, IP_DEVICES[1], SETPOINT, 10) == 78.0, what="shed")
    building.bacnet.device(IP_DEVICES[1]).offline = True

    assert await hass.config_entries.async_unload(init_integration.entry_id)
    issue = _issue(hass, issue_id)
    assert issue is not None
    assert issue.translation_key == "stuck_points_offline"
    assert (issue.translation_placeholders or {})["points"].endswith(
        f"({IP_DEVICES[1]}/{SETPOINT}): 78.0"
    )
    assert slot(building, IP_DEVICES[1], SETPOINT, 10) == 78.0  # the building still holds it
    assert slot(building, IP_DEVICES[0], SETPOINT, 10) is None

    # The next start settles it from the ledger and the issue goes.
    building.bacnet.device(IP_DEVICES[1]).offline = False
    assert await hass.config_entries.async_setup(init_integration.entry_id)
    await hass.async_block_till_done()
    await wait_for(lambda: _issue(hass, issue_id) is None, what="issue cleared after restart")
    assert slot(building, IP_DEVICES[1], SETPOINT, 10) is None


async def test_vtn_outage_issue_after_the_configured_time(
    hass: HomeAssistant, building: SimBuilding, outage_entry: MockConfigEntry
) -> None:
    """The VTN stops answering: no issue at first, one after a minute, gone when it is back."""
    data = await _setup(hass, outage_entry)
    await wait_for(lambda: data.connected, what="VEN registered")
    issue_id = vtn_unreachable_issue_id(outage_entry.entry_id)

    await building.vtn.stop()
    await wait_for(lambda: not data.connected, what="VTN seen as down")
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=30))
    await hass.async_block_till_done()
    assert _issue(hass, issue_id) is None  # not yet: half the configured time

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=61))
    await hass.async_block_till_done()
    issue = _issue(hass, issue_id)
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.WARNING
    placeholders = issue.translation_placeholders or {}
    assert placeholders["url"] == building.vtn.url
    assert placeholders["minutes"] == "1"

    await building.vtn.start()
    await wait_for(lambda: data.connected, timeout=30, what="VEN back")
    assert _issue(hass, issue_id) is None


async def test_vtn_outage_issue_goes_with_the_entry(
    hass: HomeAssistant, building: SimBuilding, outage_entry: MockConfigEntry
) -> None:
    """A VTN that never answers raises the issue; unloading the entry removes it."""
    await building.vtn.stop()
    await _setup(hass, outage_entry)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=61))
    await hass.async_block_till_done()
    issue_id = vtn_unreachable_issue_id(outage_entry.entry_id)
    assert _issue(hass, issue_id) is not None
    assert await hass.config_entries.async_unload(outage_entry.entry_id)
    assert _issue(hass, issue_id) is None


async def test_vtn_fingerprint_mismatch_is_refused_and_raised(
    hass: HomeAssistant,
    building: SimBuilding,
    tls_vtn: SimVtn,
    pki: SimTls,
    tmp_path: Path,
) -> None:
    """A pinned fingerprint that does not match the VTN's signature: no registration, an issue."""
    vtn = tls_vtn  # the suite's https VTN, which signs its messages
    stranger = generate_pki(tmp_path / "stranger")
    entry = tls_entry(building, vtn, pki, vtn_fingerprint=stranger.vtn_fingerprint)
    data = await _setup(hass, entry)
    try:
        await wait_for(
            lambda: isinstance(data.ven.last_error, VtnFingerprintMismatch),
            timeout=20,
            what="the VTN's signature refused",
        )
        async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=16))
        await hass.async_block_till_done()
        issue = _issue(hass, vtn_fingerprint_issue_id(entry.entry_id))
        assert issue is not None
        assert issue.severity is ir.IssueSeverity.ERROR
        assert (issue.translation_placeholders or {})["url"] == vtn.url
        assert not data.connected
        # Refused means not acted on: an event offered by this VTN writes nothing.
        vtn.add_event(level=1, duration=timedelta(minutes=30))
        async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=16))
        await hass.async_block_till_done()
        assert slot(building, IP_DEVICES[0], SETPOINT, 10) is None
    finally:
        assert await hass.config_entries.async_unload(entry.entry_id)
    assert _issue(hass, vtn_fingerprint_issue_id(entry.entry_id)) is None


def test_issue_text_names_each_point_and_counts_the_rest() -> None:
    """The description lists LISTED_POINTS points with the value each may hold, then "…"."""
    states = [
        PointState(
            point=OverridePoint(
                address=f"127.0.0.{i + 2}",
                object_type="analog-value",
                instance=302,
                priority=10,
                values=(78.0, 80.0, 82.0),
                name=f"VAV {i}",
            ),
            status=PointStatus.FAILED,
            written_value=None if i % 2 else 78.0,
            failure=FailureKind.NOT_VERIFIED if i == 0 else None,
            owner_priority=8 if i == 0 else None,
        )
        for i in range(LISTED_POINTS + 3)
    ]
    text = describe_stuck(states)
    lines = text.splitlines()
    assert len(lines) == LISTED_POINTS + 1
    assert lines[0] == "- VAV 0 (127.0.0.2/analog-value,302): 78.0"
    assert lines[1] == "- VAV 1 (127.0.0.3/analog-value,302)"
    assert lines[-1] == "- …"


async def test_deleting_an_entry_names_what_it_could_not_release(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    init_integration: MockConfigEntry,
) -> None:
    """Deleted with a controller offline: the ledger goes, a lasting issue names the point."""
    entry_id = init_integration.entry_id
    building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: slot(building, IP_DEVICES[1], SETPOINT, 10) == 78.0, what="shed")
    building.bacnet.device(IP_DEVICES[1]).offline = True

    assert (await hass.config_entries.async_remove(entry_id))["require_restart"] is False
    assert storage_key(entry_id) not in hass_storage
    assert not [k for k in FailureKind if _issue(hass, stuck_points_issue_id(entry_id, k))]
    issue = _issue(hass, removed_with_overrides_issue_id(entry_id))
    assert issue is not None
    assert issue.is_persistent
    placeholders = issue.translation_placeholders or {}
    assert placeholders["count"] == "1"
    assert f"{IP_DEVICES[1]}/{SETPOINT}" in placeholders["points"]
    assert slot(building, IP_DEVICES[1], SETPOINT, 10) == 78.0  # what the issue warns about
    assert slot(building, IP_DEVICES[0], SETPOINT, 10) is None


async def test_deleting_a_released_entry_leaves_nothing(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    building: SimBuilding,
    init_integration: MockConfigEntry,
) -> None:
    """Everything released on unload: no issue, no ledger file."""
    entry_id = init_integration.entry_id
    building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: slot(building, IP_DEVICES[1], SETPOINT, 10) == 78.0, what="shed")
    await hass.config_entries.async_remove(entry_id)
    assert storage_key(entry_id) not in hass_storage
    assert _issue(hass, removed_with_overrides_issue_id(entry_id)) is None
    assert all(slot(building, a, SETPOINT, 10) is None for a in IP_DEVICES)
