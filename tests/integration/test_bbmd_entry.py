"""An entry registered as a foreign device with a BBMD: its binary sensor and its repair issue.

The simulated BBMD (sim/bbmd.py) forwards broadcasts only to the remote controllers behind it,
and they hear no other broadcast: they are found only through a registered BBMD. The upkeep's
timing and the repair's grace period are shortened; everything else runs for real.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.loadshed_ven import repair_issues
from custom_components.loadshed_ven.bacnet import BbmdTiming
from custom_components.loadshed_ven.bacnet import stack as bacnet_stack
from custom_components.loadshed_ven.const import DOMAIN
from custom_components.loadshed_ven.data import LoadshedData
from sim.bbmd import SIM_BBMD_PORT, SimRemoteSite
from sim.building import SimBuilding

from .conftest import BASE_IP, VEN_NAME, entry_data, slot, wait_for

_NET = BASE_IP.rsplit(".", 2)[0]
BBMD_IP = f"{_NET}.50.1"
REMOTE_IP = f"{_NET}.51.2"  # and .3
REMOTE_INSTANCES = {3851, 3852}
SENSOR = "binary_sensor.test_ven_bbmd_registration"
FAST = BbmdTiming(answer_seconds=0.3, tries=1, retry_seconds=0.3, renew_seconds=0.6)


@pytest.fixture
async def site(socket_enabled: None) -> AsyncIterator[SimRemoteSite]:
    """A BBMD and two controllers on their own subnet, reachable through it."""
    remote = SimRemoteSite(BBMD_IP, 2, base_ip=REMOTE_IP, first_device_instance=3851)
    await remote.start()
    yield remote
    await remote.stop()


@pytest.fixture(autouse=True)
def fast_upkeep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register, renew and retry within a second; raise the unreachable issue after 1 s."""
    monkeypatch.setattr(bacnet_stack, "BbmdTiming", lambda: FAST)
    monkeypatch.setattr(repair_issues, "BBMD_UNREACHABLE_GRACE", timedelta(seconds=1))


@pytest.fixture
async def bbmd_entry(
    hass: HomeAssistant, building: SimBuilding, site: SimRemoteSite
) -> AsyncIterator[MockConfigEntry]:
    """The building's entry with a BBMD and a point on a remote controller (not set up)."""
    data: dict[str, Any] = {
        **entry_data(building),
        "bbmd_address": BBMD_IP,
        "bbmd_port": SIM_BBMD_PORT,
        "bbmd_ttl": 30,
    }
    data["points"] = [
        *data["points"],
        {
            "address": REMOTE_IP,
            "object_type": "analog-value",
            "instance": 302,
            "priority": 10,
            "values": [78.0, 80.0, 82.0],
            "name": "Remote setpoint",
        },
    ]
    entry = MockConfigEntry(
        domain=DOMAIN, title=VEN_NAME, data=data, unique_id=f"{building.vtn.url}|{VEN_NAME}"
    )
    entry.add_to_hass(hass)
    yield entry
    if entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(entry.entry_id)


async def _set_up(hass: HomeAssistant, entry: MockConfigEntry) -> LoadshedData:
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    data: LoadshedData = entry.runtime_data
    return data


def _state(hass: HomeAssistant) -> str | None:
    state = hass.states.get(SENSOR)
    return None if state is None else state.state


def _issue(hass: HomeAssistant, entry: MockConfigEntry) -> ir.IssueEntry | None:
    issue_id = repair_issues.bbmd_issue_id(entry.entry_id)
    return ir.async_get(hass).async_get_issue(DOMAIN, issue_id)


async def test_registered_discovers_remote_controllers_and_recovers(
    hass: HomeAssistant,
    building: SimBuilding,
    site: SimRemoteSite,
    bbmd_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    data = await _set_up(hass, bbmd_entry)
    await wait_for(lambda: _state(hass) == STATE_ON, what="BBMD registered")
    state = hass.states.get(SENSOR)
    assert state is not None
    assert state.attributes["device_class"] == "connectivity"
    assert state.attributes["status"] == "registered"
    assert state.attributes["reason"] == f"registered with the BBMD at {BBMD_IP}:{SIM_BBMD_PORT}"
    entity = er.async_get(hass).async_get(SENSOR)
    assert entity is not None
    assert entity.entity_category is er.EntityCategory.DIAGNOSTIC
    stack = data.bacnet.stack
    assert site.bbmd.foreign_devices == [f"127.0.0.1:{stack.local_port}"]
    # The remote controllers hear a Who-Is only through the BBMD.
    answers = await stack.app.who_is(timeout=0.8)
    assert {a.iAmDeviceIdentifier[1] for a in answers} & REMOTE_INSTANCES == REMOTE_INSTANCES
    # A point on a remote controller is written like any other.
    report = await data.actions.shed(None, timedelta(minutes=5))
    assert not report.failed
    assert site.devices[0].priority_array("analog-value,302")[9] == 78.0
    assert slot(building, BASE_IP, "analog-value,302", 10) == 78.0

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, bbmd_entry)
    assert diagnostics["bbmd"] == {
        "address": f"{BBMD_IP}:{SIM_BBMD_PORT}",
        "ttl": 30,
        "status": "registered",
        "reason": f"registered with the BBMD at {BBMD_IP}:{SIM_BBMD_PORT}",
    }

    # The BBMD goes away: the sensor goes off at once, the issue only after the grace period.
    await site.bbmd.stop()
    await wait_for(lambda: _state(hass) == STATE_OFF, what="BBMD unreachable")
    assert hass.states.get(SENSOR).attributes["status"] == "unreachable"  # type: ignore[union-attr]
    assert _issue(hass, bbmd_entry) is None  # a blip raises nothing
    await wait_for(lambda: _issue(hass, bbmd_entry) is not None, what="unreachable issue")
    issue = _issue(hass, bbmd_entry)
    assert issue is not None
    assert issue.translation_key == "bbmd_unreachable"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["bbmd"] == f"{BBMD_IP}:{SIM_BBMD_PORT}"
    assert "did not answer" in issue.translation_placeholders["reason"]

    # Back: registered again, the issue goes.
    await site.bbmd.start()
    await wait_for(lambda: _state(hass) == STATE_ON, what="registered again")
    assert _issue(hass, bbmd_entry) is None


async def test_refused_raises_the_issue_at_once_and_unload_removes_it(
    hass: HomeAssistant, site: SimRemoteSite, bbmd_entry: MockConfigEntry
) -> None:
    site.bbmd.refuse_registrations = True
    await _set_up(hass, bbmd_entry)
    await wait_for(lambda: _issue(hass, bbmd_entry) is not None, what="refused issue")
    issue = _issue(hass, bbmd_entry)
    assert issue is not None
    assert issue.translation_key == "bbmd_refused"
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders is not None
    assert "NAK 0x0030" in issue.translation_placeholders["reason"]
    state = hass.states.get(SENSOR)
    assert state is not None
    assert (state.state, state.attributes["status"]) == (STATE_OFF, "refused")

    site.bbmd.refuse_registrations = False  # the BBMD's allow list now includes us
    await wait_for(lambda: _state(hass) == STATE_ON, what="registered")
    assert _issue(hass, bbmd_entry) is None

    site.bbmd.refuse_registrations = True
    await site.bbmd.stop()
    await site.bbmd.start()  # a rebooted BBMD that refuses: the renewal is refused
    await wait_for(lambda: _issue(hass, bbmd_entry) is not None, what="refused again")
    assert await hass.config_entries.async_unload(bbmd_entry.entry_id)
    assert _issue(hass, bbmd_entry) is None  # nothing runs that could clear it later


async def test_no_bbmd_no_sensor(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    assert hass.states.get(SENSOR) is None
    assert init_integration.runtime_data.bbmd is None
    assert init_integration.runtime_data.bacnet.stack.bbmd_status is None


async def test_a_new_vtn_outage_window_applies_live(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    """Counted from when the VTN was lost: shorter raises the issue, longer withdraws it."""
    data: LoadshedData = init_integration.runtime_data
    issue_id = repair_issues.vtn_unreachable_issue_id(init_integration.entry_id)
    await building.vtn.stop()
    await wait_for(lambda: not data.connected, what="VTN seen as down")
    registry = ir.async_get(hass)
    assert registry.async_get_issue(DOMAIN, issue_id) is None  # 30 minutes by default
    data.repairs.set_outage_after(timedelta(hours=1))
    assert registry.async_get_issue(DOMAIN, issue_id) is None
    data.repairs.set_outage_after(timedelta(seconds=1))
    await wait_for(lambda: registry.async_get_issue(DOMAIN, issue_id) is not None, 5, "issue")
    data.repairs.set_outage_after(timedelta(hours=1))
    assert registry.async_get_issue(DOMAIN, issue_id) is None
    data.repairs.set_outage_after(timedelta(seconds=1))  # already down longer than that
    issue = registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["minutes"] == "0"
    data.repairs.set_outage_after(timedelta(minutes=1))  # not yet: timed from the loss
    assert registry.async_get_issue(DOMAIN, issue_id) is None


async def test_removing_the_bbmd_removes_its_sensor(
    hass: HomeAssistant, site: SimRemoteSite, bbmd_entry: MockConfigEntry
) -> None:
    await _set_up(hass, bbmd_entry)
    await wait_for(lambda: _state(hass) == STATE_ON, what="BBMD registered")
    data = {k: v for k, v in bbmd_entry.data.items() if not k.startswith("bbmd_")}
    hass.config_entries.async_update_entry(bbmd_entry, data=data)  # as a reconfigure does
    await hass.async_block_till_done()
    assert bbmd_entry.state is ConfigEntryState.LOADED
    assert bbmd_entry.runtime_data.bbmd is None
    assert er.async_get(hass).async_get(SENSOR) is None
    assert hass.states.get(SENSOR) is None
