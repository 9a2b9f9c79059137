"""The diagnostics download during a shed: ledger, events, reports and verification, redacted."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.loadshed_ven.data import LoadshedData
from custom_components.loadshed_ven.openadr.ven import RECENT_REPORTS
from sim.building import SimBuilding

from .conftest import ALL_DEVICES, IP_DEVICES, SETPOINT, SHED_ENABLE, VEN_NAME, slot, wait_for

SECRETS = {
    "cert": "-----BEGIN CERTIFICATE-----",
    "key": "-----BEGIN PRIVATE KEY-----",
    "passphrase": "hunter2",
    "ca": "-----BEGIN CERTIFICATE-----",
    "ven_id": "ven-secret",
    "vtn_fingerprint": "AA:BB:CC",
}
DENIED = f"{IP_DEVICES[1]}/{SETPOINT}"


async def test_diagnostics_during_a_shed(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    building: SimBuilding,
    init_integration: MockConfigEntry,
) -> None:
    entry = init_integration
    data: LoadshedData = entry.runtime_data
    # Stored secrets the running entry counts as built from, so the update listener (which
    # compares with the runtime shape) has nothing to apply and does not reload it.
    data.shape = replace(data.shape, data={**data.shape.data, **SECRETS})
    hass.config_entries.async_update_entry(entry, data={**entry.data, **SECRETS})
    building.bacnet.device(IP_DEVICES[1]).deny_writes(SETPOINT)
    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    held = [a for a in ALL_DEVICES if a != IP_DEVICES[1]]
    await wait_for(lambda: all(slot(building, a, SETPOINT, 10) == 78.0 for a in held), what="shed")
    await wait_for(lambda: data.ledger.retry_delay is not None, what="a retry armed")
    await wait_for(lambda: len(data.ven.recent_reports) >= 2, what="reports sent")

    diag = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert entry.runtime_data is data  # not reloaded

    # Secrets and where the VTN and the meter are: redacted. The title and VEN name stay.
    settings = diag["entry"]["data"]
    for key in (*SECRETS, "vtn_url", "host"):
        assert settings[key] == "**REDACTED**", key
    assert diag["entry"]["title"] == VEN_NAME
    assert settings["ven_name"] == VEN_NAME
    text = json.dumps(diag)
    assert "hunter2" not in text
    assert building.vtn.url not in text
    assert f":{building.vtn.port}" not in text

    # The ledger tracks every held point and the one whose write was refused.
    ledger = diag["ledger"]
    records = {record["key"]: record for record in ledger["records"]}
    held_keys = {f"{a}/{SETPOINT}" for a in held} | {f"{IP_DEVICES[0]}/{SHED_ENABLE}"}
    assert set(records) == held_keys | {DENIED}
    assert records[DENIED]["failure"] == "access_denied"
    assert records[f"{IP_DEVICES[0]}/{SETPOINT}"]["status"] == "held"
    assert records[f"{IP_DEVICES[0]}/{SETPOINT}"]["written_value"] == 78.0
    assert ledger["pending"] == []
    assert ledger["retry_delay_seconds"] > 0

    events = diag["runtime"]["recent_events"]
    assert [event["event_id"] for event in events] == [event_id]
    assert events[0]["status"] == "active"
    assert diag["verification"]["event_id"] == event_id
    assert diag["verification"]["ended"] is None

    # The report values are what was sent: each one reaches the VTN.
    reports = diag["reports"]
    assert 2 <= len(reports) <= RECENT_REPORTS
    assert all(report["watts"] > 0 for report in reports)
    sent = {(datetime.fromisoformat(r["time"]), r["watts"]) for r in reports}
    await wait_for(
        lambda: sent <= {(r.dtstart, r.value) for r in building.vtn.reports},
        what="reported values at the VTN",
    )


async def test_diagnostics_before_any_event(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, init_integration: MockConfigEntry
) -> None:
    data: LoadshedData = init_integration.runtime_data
    before = data.ven.recent_reports
    # What is sent but cannot be read as a report adds nothing (and breaks nothing).
    data.ven._record_report("<oadrUpdateReport>not OpenADR")
    data.ven._record_report(
        '<?xml version="1.0"?><oadrPayload xmlns="http://openadr.org/oadr-2.0b/2012/07">'
        "<oadrSignedObject><oadrPoll><venID>oadrUpdateReport</venID></oadrPoll>"
        "</oadrSignedObject></oadrPayload>"
    )
    assert data.ven.recent_reports[: len(before)] == before
    diag = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    assert diag["runtime"]["recent_events"] == []
    assert diag["verification"] is None
    assert diag["ledger"] == {"records": [], "pending": [], "retry_delay_seconds": None}
    assert isinstance(diag["reports"], list)
