"""An OpenADR 3.x entry end to end: the config flow's version menu and 3.x form, checked by a
real login with the simulated 3.x VTN; rotated client credentials start reauthentication; the
meter reaches the VTN as the event's DEMAND report. The event life cycle itself runs against
both VTNs in the tests marked ``OPENADR_VERSIONS``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven.const import DOMAIN
from custom_components.loadshed_ven.openadr3.errors import VtnCredentialsRefused
from sim.building import SimBuilding
from sim.vtn3 import SimVtn3

from .conftest import (
    TEST_CLIENT_ID,
    TEST_CLIENT_SECRET,
    VEN_NAME,
    setpoints,
    start_entry,
    start_vtn_flow,
    wait_for,
)

pytestmark = pytest.mark.parametrize("openadr", ["3"], indirect=True)


@pytest.fixture(autouse=True)
async def unload_entries(hass: HomeAssistant, building: SimBuilding) -> AsyncIterator[None]:
    """Entries run for real; unload them while the building still runs."""
    yield
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            await hass.config_entries.async_unload(entry.entry_id)


def _vtn3(building: SimBuilding) -> SimVtn3:
    assert isinstance(building.vtn, SimVtn3)
    return building.vtn


def _input(building: SimBuilding, **extra: Any) -> dict[str, Any]:
    vtn = _vtn3(building)
    return {
        "vtn_url": vtn.url,
        "ven_name": VEN_NAME,
        "client_id": TEST_CLIENT_ID,
        "client_secret": TEST_CLIENT_SECRET,
        "poll_interval": 1,
        **extra,
    }


async def test_the_3x_form_is_checked_by_a_real_login(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    vtn = _vtn3(building)
    result = await start_vtn_flow(hass, "openadr3")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "openadr3"
    flow_id = result["flow_id"]

    result = await hass.config_entries.flow.async_configure(
        flow_id, _input(building, vtn_url="ftp://vtn")
    )
    assert result["errors"] == {"vtn_url": "invalid_url"}
    result = await hass.config_entries.flow.async_configure(
        flow_id, _input(building, client_secret="wrong")
    )
    assert result["errors"] == {"client_secret": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        flow_id, _input(building, program="no-such-program")
    )
    assert result["errors"] == {"program": "program_not_found"}
    vtn.auth_mode = "403"
    result = await hass.config_entries.flow.async_configure(flow_id, _input(building))
    assert result["errors"] == {"base": "forbidden"}
    vtn.auth_mode = "ok"
    await vtn.stop()
    result = await hass.config_entries.flow.async_configure(flow_id, _input(building))
    assert result["errors"] == {"base": "cannot_connect"}
    await vtn.start()

    result = await hass.config_entries.flow.async_configure(
        flow_id, _input(building, program=vtn.program_name)
    )
    assert result["step_id"] == "bacnet", result.get("errors")
    assert vtn.tokens_issued >= 1


async def test_rotated_credentials_start_reauth_and_new_ones_reconnect(
    hass: HomeAssistant, building: SimBuilding, added_entry: MockConfigEntry
) -> None:
    vtn = _vtn3(building)
    data = await start_entry(hass, added_entry)
    # The VTN operator rotates the secret and revokes the tokens issued so far.
    vtn.request_reregistration(VEN_NAME)
    vtn.add_client(TEST_CLIENT_ID, "rotated-secret", VEN_NAME)
    await wait_for(
        lambda: any(
            f["context"].get("source") == SOURCE_REAUTH
            for f in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        ),
        what="reauth started",
    )
    assert isinstance(data.ven.last_error, VtnCredentialsRefused)
    (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["step_id"] == "reauth_openadr3"

    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {"client_id": TEST_CLIENT_ID, "client_secret": TEST_CLIENT_SECRET}
    )
    assert result["errors"] == {"client_secret": "invalid_auth"}  # the old one, refused
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {"client_id": TEST_CLIENT_ID, "client_secret": "rotated-secret"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert added_entry.data["client_secret"] == "rotated-secret"
    await hass.async_block_till_done()
    await wait_for(lambda: added_entry.runtime_data.connected, what="logged in again")
    vtn.add_event(level=1, duration=timedelta(minutes=5))
    await wait_for(lambda: setpoints(building) == [78.0] * 4, what="shed after reauth")


async def test_the_meter_reaches_the_vtn_as_the_events_demand_report(
    hass: HomeAssistant, building: SimBuilding, added_entry: MockConfigEntry
) -> None:
    vtn = _vtn3(building)
    data = await start_entry(hass, added_entry)
    building.meter.set_base_kw(640.0)
    await wait_for(lambda: data.meter.latest_kw == 640.0, what="the meter read")
    assert vtn.reports == []  # no event asks for a report yet
    vtn.add_event(level=1, duration=timedelta(minutes=5))
    await wait_for(lambda: bool(vtn.reports), timeout=20, what="a DEMAND report")
    report = vtn.reports[0]
    assert (report.ven_id, report.measurement, report.unit) == (VEN_NAME, "DEMAND", "KW")
    assert report.value >= 640.0  # the shed's own overrides add to the simulated load

    building.meter.nan = True
    await wait_for(lambda: data.meter.latest_kw is None, what="meter unavailable")
    await asyncio.sleep(1.5)  # a report already on its way may still arrive
    seen = len(vtn.reports)
    await asyncio.sleep(3)  # three more polls: no value, no report
    assert vtn.reports[seen:] == []
