"""An import may give every controller it creates one OpenADR group id."""

from __future__ import annotations

from datetime import timedelta

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from sim.building import SimBuilding

from .conftest import IP_DEVICES, SETPOINT, slot, wait_for
from .test_import_flow import HEADER, Upload, _import_file, _submit
from .test_import_flow import mock_config_entry as mock_config_entry  # noqa: PLC0414
from .test_import_flow import upload as upload  # noqa: PLC0414


async def test_the_group_id_goes_to_every_imported_controller(
    hass: HomeAssistant,
    building: SimBuilding,
    init_integration: MockConfigEntry,
    upload: Upload,
) -> None:
    entry = init_integration
    rows = [
        f"Zone 1,{IP_DEVICES[0]},AV,302,10,absolute,78,80,82,55,90",
        f"Zone 2,{IP_DEVICES[1]},AV,302,10,absolute,78,80,82,55,90",
    ]
    result = await _import_file(hass, entry, upload("\n".join([HEADER, *rows])))
    assert result["step_id"] == "import_confirm"
    result = await _submit(hass, result["flow_id"], {"group_id": "x" * 200})
    assert result["errors"] == {"group_id": "invalid_target_id"}
    result = await _submit(hass, result["flow_id"], {"group_id": "north"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert {s.data.get("group_id") for s in entry.subentries.values()} == {"north"}
    assert all("resource_id" not in s.data for s in entry.subentries.values())
    building.vtn.add_event(level=2, duration=timedelta(minutes=30), targets={"group_id": ["north"]})
    await wait_for(
        lambda: [slot(building, a, SETPOINT, 10) for a in IP_DEVICES[:2]] == [80.0, 80.0],
        what="group north shed",
    )
