"""Reauthentication: started when the VTN refuses the VEN's certificate, finished for real."""

from __future__ import annotations

from pathlib import Path

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState, ConfigFlowResult
from homeassistant.core import DOMAIN as HOMEASSISTANT_DOMAIN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven.const import DOMAIN
from custom_components.loadshed_ven.data import LoadshedData
from custom_components.loadshed_ven.openadr.ven import VtnClientCertRefused
from sim.building import SimBuilding
from sim.pki import SimTls, generate_pki
from sim.vtn import SimVtn
from tests.tls_helpers import ignore_failed_handshakes

from .conftest import tls_entry, wait_for


def _reauth_flows(hass: HomeAssistant, entry: MockConfigEntry) -> list[ConfigFlowResult]:
    return [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"].get("source") == SOURCE_REAUTH
        and flow["context"].get("entry_id") == entry.entry_id
    ]


async def test_a_refused_client_certificate_starts_reauth(
    hass: HomeAssistant, building: SimBuilding, tls_vtn: SimVtn, pki: SimTls, tmp_path: Path
) -> None:
    """A VTN whose CA does not trust the VEN's certificate: reauth, then a trusted one loads."""
    assert pki.ven_cert is not None
    assert pki.ven_key is not None
    other = generate_pki(tmp_path / "other")  # a CA the VTN does not trust
    assert other.ven_cert is not None
    assert other.ven_key is not None
    entry = tls_entry(building, tls_vtn, pki, vtn_fingerprint=pki.vtn_fingerprint)
    stale = {**entry.data, "cert": other.ven_cert.read_text(), "key": other.ven_key.read_text()}
    stale.pop("passphrase", None)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, data=stale)  # not set up: nothing reloads
    with ignore_failed_handshakes():
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED  # the ledger and the building still run
        await wait_for(lambda: bool(_reauth_flows(hass, entry)), what="reauth started")
        assert not entry.runtime_data.connected
        assert isinstance(entry.runtime_data.ven.last_error, VtnClientCertRefused)
        (flow,) = _reauth_flows(hass, entry)
        assert flow["step_id"] == "reauth_confirm"

        # The same untrusted certificate again: refused by a real registration.
        result = await hass.config_entries.flow.async_configure(
            flow["flow_id"],
            {"cert": other.ven_cert.read_text(), "key": other.ven_key.read_text()},
        )
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"base": "tls_failed"}
        assert result["description_placeholders"]["vtn_url"] == tls_vtn.url
        new = {"cert": pki.ven_cert.read_text(), "key": pki.ven_key.read_text()}
        if pki.passphrase:
            new["passphrase"] = pki.passphrase
        result = await hass.config_entries.flow.async_configure(result["flow_id"], new)
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "reauth_successful"
        assert entry.data["cert"] == new["cert"].strip()
        assert entry.data["vtn_url"] == tls_vtn.url  # nothing else changed
        # The update listener reloads the entry with the new certificate.
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED
        data: LoadshedData = entry.runtime_data
        await wait_for(lambda: data.connected, what="registered with the new certificate")
        assert _reauth_flows(hass, entry) == []
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_registering_after_all_aborts_the_reauth_flow(
    hass: HomeAssistant, building: SimBuilding, tls_vtn: SimVtn, pki: SimTls
) -> None:
    """A refusal the VTN's side fixed (it trusts the certificate again): no new one is needed."""
    entry = tls_entry(building, tls_vtn, pki, vtn_fingerprint=pki.vtn_fingerprint)
    entry.add_to_hass(hass)
    with ignore_failed_handshakes():
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        data: LoadshedData = entry.runtime_data
        await wait_for(lambda: data.connected, what="VEN registered")
        data.vtn.handle_auth_refused(VtnClientCertRefused("The VTN refused it."))
        await hass.async_block_till_done()
        assert len(_reauth_flows(hass, entry)) == 1
        data.vtn.handle_auth_refused(VtnClientCertRefused("The VTN refused it."))
        await hass.async_block_till_done()
        assert len(_reauth_flows(hass, entry)) == 1  # one flow, however many refusals
        issues = ir.async_get(hass)
        reauth_issue = (HOMEASSISTANT_DOMAIN, f"config_entry_reauth_{DOMAIN}_{entry.entry_id}")
        assert issues.async_get_issue(*reauth_issue) is not None
        data.vtn.handle_connection(False)
        data.vtn.handle_connection(True)
        assert _reauth_flows(hass, entry) == []
        assert issues.async_get_issue(*reauth_issue) is None
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_reauth_of_an_entry_that_is_not_loaded_starts_it(
    hass: HomeAssistant, building: SimBuilding, tls_vtn: SimVtn, pki: SimTls
) -> None:
    assert pki.ven_cert is not None
    assert pki.ven_key is not None
    entry = tls_entry(building, tls_vtn, pki, vtn_fingerprint=pki.vtn_fingerprint)
    entry.add_to_hass(hass)  # not set up: no update listener runs
    result = await entry.start_reauth_flow(hass)
    new = {"cert": pki.ven_cert.read_text(), "key": pki.ven_key.read_text()}
    if pki.passphrase:
        new["passphrase"] = pki.passphrase
    result = await hass.config_entries.flow.async_configure(result["flow_id"], new)
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    # Registered before unloading: a handshake cut short would be the VTN's error to report.
    data: LoadshedData = entry.runtime_data
    await wait_for(lambda: data.connected, what="registered with the new certificate")
    assert await hass.config_entries.async_unload(entry.entry_id)
