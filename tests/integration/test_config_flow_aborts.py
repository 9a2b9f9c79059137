"""The aborts Home Assistant's flow manager raises for this flow reach the user translated."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.translation import async_get_translations

from custom_components.loadshed_ven.const import DOMAIN
from sim.building import SimBuilding

from .conftest import VEN_NAME, start_vtn_flow


async def _shown_text(hass: HomeAssistant, result: Any) -> str:
    """What the frontend shows for an abort: the integration's string for its reason."""
    assert result["type"] is FlowResultType.ABORT
    assert result.get("translation_domain") in (None, DOMAIN)
    strings = await async_get_translations(hass, "en", "config", [DOMAIN])
    return strings.get(f"component.{DOMAIN}.config.abort.{result['reason']}", "")


async def test_second_flow_for_the_same_vtn_aborts_translated(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    vtn = {"vtn_url": building.vtn.url, "ven_name": VEN_NAME}
    first = await start_vtn_flow(hass)
    first = await hass.config_entries.flow.async_configure(first["flow_id"], vtn)
    assert first["step_id"] == "bacnet", first.get("errors")

    second = await start_vtn_flow(hass)
    second = await hass.config_entries.flow.async_configure(second["flow_id"], vtn)
    assert second["reason"] == "already_in_progress"
    assert await _shown_text(hass, second) == (
        "A setup of this VEN for this VTN is already in progress."
    )
    hass.config_entries.flow.async_abort(first["flow_id"])


async def test_every_abort_reason_resolves_to_text(hass: HomeAssistant) -> None:
    """The strings the frontend looks up exist in the shipped translations/en.json."""
    strings = await async_get_translations(hass, "en", "config", [DOMAIN])
    for reason in ("already_configured", "already_in_progress", "reconfigure_successful"):
        assert strings.get(f"component.{DOMAIN}.config.abort.{reason}"), reason
