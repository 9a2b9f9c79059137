"""Every config flow path against the simulated building: real registration, binds and reads."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven.const import DOMAIN
from sim.building import SimBuilding
from sim.pki import generate_pki
from sim.vtn import SimVtn
from tests.tls_helpers import ignore_failed_handshakes

from .conftest import IP_DEVICES, NETWORK, ROUTED_DEVICE, ROUTER_IP, VEN_NAME, start_vtn_flow

BULK = "\n".join(
    [
        "# address, type, instance, priority, level 1, 2, 3, name",
        *(f"{a}, analogValue, 302, 10, 78, 80, 82, VAV {a}" for a in IP_DEVICES),
        f"{ROUTED_DEVICE}, AV, 302, 10, 78",
    ]
)


@pytest.fixture(autouse=True)
async def unload_entries(hass: HomeAssistant, building: SimBuilding) -> AsyncIterator[None]:
    """Entries created by a flow run for real; unload them while the building still runs."""
    yield
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            await hass.config_entries.async_unload(entry.entry_id)


def _points(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every point of a created entry, from its controller subentries."""
    return [p for sub in result["subentries"] for p in sub["data"]["points"]]


def _vtn_input(building: SimBuilding, **extra: Any) -> dict[str, Any]:
    return {"vtn_url": building.vtn.url, "ven_name": VEN_NAME, **extra}


def _bacnet_input(**extra: Any) -> dict[str, Any]:
    return {
        "interface": "127.0.0.1/32",
        "port": 0,
        "device_instance": 3990001,
        "routers": f"{NETWORK}={ROUTER_IP}",
        "point_mode": "bulk",
        "check_reachable": False,
        **extra,
    }


def _meter_input(building: SimBuilding, **extra: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "modbus_port": building.meter.port,
        "unit_id": 1,
        "register": 17,
        "register_type": "input",
        "data_type": "float32",
        "word_order": "big",
        "scale": 1.0,
        "meter_interval": 5,
        **extra,
    }


async def _to_bacnet(hass: HomeAssistant, building: SimBuilding) -> str:
    result = await start_vtn_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "openadr2"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _vtn_input(building))
    assert result["step_id"] == "bacnet", result.get("errors")
    return str(result["flow_id"])


async def _finish(hass: HomeAssistant, flow_id: str, building: SimBuilding) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_configure(flow_id, {"meter_source": "modbus"})
    assert result["step_id"] == "meter_modbus"
    result = await hass.config_entries.flow.async_configure(flow_id, _meter_input(building))
    assert result["step_id"] == "policy", result.get("errors")
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"shed_level": 1, "normal_level": 0, "act_on_test_events": False}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    return dict(result)


async def test_bulk_points_full_flow_creates_a_working_entry(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    flow_id = await _to_bacnet(hass, building)
    result = await hass.config_entries.flow.async_configure(flow_id, _bacnet_input())
    assert result["step_id"] == "points_bulk"
    result = await hass.config_entries.flow.async_configure(flow_id, {"bulk": BULK})
    assert result["step_id"] == "meter"
    result = await _finish(hass, flow_id, building)

    assert result["title"] == VEN_NAME
    data = result["data"]
    assert data["vtn_url"] == building.vtn.url
    assert "points" not in data
    assert "bulk" not in data  # the form's text is not kept
    points = _points(result)
    assert [p["address"] for p in points] == [*IP_DEVICES, ROUTED_DEVICE]
    assert points[0]["values"] == [78.0, 80.0, 82.0]
    assert points[3]["values"] == [78.0, 78.0, 78.0]
    # One subentry per controller, identified by its address; the policy in the options.
    assert [(s["unique_id"], s["title"]) for s in result["subentries"]] == [
        (a, a) for a in [*IP_DEVICES, ROUTED_DEVICE]
    ]
    assert {s["subentry_type"] for s in result["subentries"]} == {"controller"}
    assert result["options"]["shed_level"] == 1
    assert result["options"]["meter_interval"] == 5
    assert "shed_level" not in data
    assert "check_reachable" not in data
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert entry.version == 2
    assert len(entry.subentries) == 4
    assert entry.unique_id == f"{building.vtn.url.lower()}|{VEN_NAME}"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def test_seed_points_with_reachability_check(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    building.bacnet.device(IP_DEVICES[2]).offline = True
    flow_id = await _to_bacnet(hass, building)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _bacnet_input(point_mode="seed", check_reachable=True)
    )
    assert result["step_id"] == "points_seed"
    seed = {
        "addresses": f"{IP_DEVICES[0]}, {IP_DEVICES[1]}\n{IP_DEVICES[2]}\n{ROUTED_DEVICE}",
        "object_type": "analog-value",
        "instance": 302,
        "priority": 10,
        "value": "80",
    }
    result = await hass.config_entries.flow.async_configure(flow_id, seed)
    assert result["step_id"] == "reachability"
    assert result["description_placeholders"]["count"] == "1"
    assert IP_DEVICES[2] in result["description_placeholders"]["points"]
    result = await hass.config_entries.flow.async_configure(flow_id, {})
    assert result["step_id"] == "meter"
    result = await _finish(hass, flow_id, building)
    assert len(_points(result)) == 4
    assert {tuple(p["values"]) for p in _points(result)} == {(80.0, 80.0, 80.0)}


async def test_meter_from_a_home_assistant_sensor(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    hass.states.async_set("sensor.main_power", "512000", {"unit_of_measurement": "W"})
    hass.states.async_set("sensor.no_unit", "5", {})
    flow_id = await _to_bacnet(hass, building)
    await hass.config_entries.flow.async_configure(flow_id, _bacnet_input())
    await hass.config_entries.flow.async_configure(flow_id, {"bulk": BULK})
    result = await hass.config_entries.flow.async_configure(flow_id, {"meter_source": "entity"})
    assert result["step_id"] == "meter_entity"
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"meter_entity": "sensor.no_unit"}
    )
    assert result["errors"] == {"meter_entity": "meter_entity_unit"}
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"meter_entity": "sensor.main_power"}
    )
    assert result["step_id"] == "policy"
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"shed_level": 2, "normal_level": 2, "act_on_test_events": True}
    )
    assert result["errors"] == {"normal_level": "normal_not_below_shed"}
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"shed_level": 2, "normal_level": 0, "act_on_test_events": True}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["meter_entity"] == "sensor.main_power"
    assert result["options"]["shed_level"] == 2


async def test_vtn_errors_then_recovery(hass: HomeAssistant, building: SimBuilding) -> None:
    result = await start_vtn_flow(hass)
    flow_id = result["flow_id"]

    result = await hass.config_entries.flow.async_configure(
        flow_id, {"vtn_url": "ftp://vtn", "ven_name": VEN_NAME}
    )
    assert result["errors"] == {"vtn_url": "invalid_url"}

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/OpenADR2/Simple/2.0b"
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"vtn_url": dead, "ven_name": VEN_NAME}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    assert dead.split("/")[2] in result["description_placeholders"]["error"]

    result = await hass.config_entries.flow.async_configure(
        flow_id, _vtn_input(building, cert="-----BEGIN CERTIFICATE-----")
    )
    assert result["errors"] == {"key": "cert_and_key"}

    result = await hass.config_entries.flow.async_configure(
        flow_id, _vtn_input(building, vtn_fingerprint="not a fingerprint")
    )
    assert result["errors"] == {"vtn_fingerprint": "invalid_fingerprint"}

    result = await hass.config_entries.flow.async_configure(flow_id, _vtn_input(building))
    assert result["step_id"] == "bacnet"


async def test_bacnet_errors_then_recovery(hass: HomeAssistant, building: SimBuilding) -> None:
    flow_id = await _to_bacnet(hass, building)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _bacnet_input(interface="bacnet.local")
    )
    assert result["errors"] == {"interface": "invalid_interface"}
    result = await hass.config_entries.flow.async_configure(
        flow_id, _bacnet_input(routers="12345 via 10.0.0.1")
    )
    assert result["errors"] == {"routers": "invalid_routes"}

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = await hass.config_entries.flow.async_configure(flow_id, _bacnet_input(port=port))
    assert result["errors"] == {"port": "port_in_use"}
    assert result["description_placeholders"]["port"] == str(port)

    result = await hass.config_entries.flow.async_configure(flow_id, _bacnet_input())
    assert result["step_id"] == "points_bulk"
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"bulk": BULK + f"\n{IP_DEVICES[0]}, analogValue, 303, 5, 78"}
    )
    assert result["errors"] == {"bulk": "invalid_points"}
    assert "line 6" in result["description_placeholders"]["errors"]
    assert "life safety" in result["description_placeholders"]["errors"]
    result = await hass.config_entries.flow.async_configure(flow_id, {"bulk": "# nothing"})
    assert result["errors"] == {"bulk": "no_points"}
    result = await hass.config_entries.flow.async_configure(flow_id, {"bulk": BULK})
    assert result["step_id"] == "meter"


async def test_meter_errors_then_recovery(hass: HomeAssistant, building: SimBuilding) -> None:
    flow_id = await _to_bacnet(hass, building)
    await hass.config_entries.flow.async_configure(flow_id, _bacnet_input())
    await hass.config_entries.flow.async_configure(flow_id, {"bulk": BULK})
    await hass.config_entries.flow.async_configure(flow_id, {"meter_source": "modbus"})
    result = await hass.config_entries.flow.async_configure(
        flow_id, _meter_input(building, register=900)
    )
    assert result["errors"] == {"base": "meter_failed"}
    assert "register 900" in result["description_placeholders"]["error"]
    result = await hass.config_entries.flow.async_configure(flow_id, _meter_input(building))
    assert result["step_id"] == "policy"


async def test_second_entry_for_the_same_ven_aborts(
    hass: HomeAssistant, building: SimBuilding
) -> None:
    MockConfigEntry(
        domain=DOMAIN, unique_id=f"{building.vtn.url.lower()}|{VEN_NAME}", data={}
    ).add_to_hass(hass)
    result = await start_vtn_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _vtn_input(building))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_reconfigure_edits_vtn_bacnet_and_meter_only(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    subentries = dict(init_integration.subentries)
    options = dict(init_integration.options)
    result = await init_integration.start_reconfigure_flow(hass)
    assert result["step_id"] == "openadr2"
    flow_id = result["flow_id"]
    result = await hass.config_entries.flow.async_configure(flow_id, _vtn_input(building))
    assert result["step_id"] == "bacnet"
    # No point fields: the points are edited per controller.
    assert "point_mode" not in result["data_schema"].schema
    bacnet = {
        k: v for k, v in _bacnet_input().items() if k not in ("point_mode", "check_reachable")
    }
    result = await hass.config_entries.flow.async_configure(flow_id, bacnet)
    assert result["step_id"] == "meter"
    result = await hass.config_entries.flow.async_configure(flow_id, {"meter_source": "modbus"})
    result = await hass.config_entries.flow.async_configure(
        flow_id, _meter_input(building, scale=2.0)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert init_integration.data["scale"] == 2.0
    assert "points" not in init_integration.data
    assert dict(init_integration.subentries) == subentries
    assert init_integration.options == {**options, "meter_interval": 5}
    # The update listener reloads the entry with the new data.
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.LOADED
    assert init_integration.runtime_data.settings.meter.modbus is not None
    assert init_integration.runtime_data.settings.meter.modbus.scale == 2.0


async def test_reconfigure_cannot_switch_to_another_ven(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    result = await init_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _vtn_input(building, ven_name="another-ven")
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_vtn"


async def test_tls_vtn_shows_the_ven_fingerprint(
    hass: HomeAssistant, building: SimBuilding, tmp_path: Path
) -> None:
    pki = generate_pki(tmp_path)
    vtn = SimVtn(tls=pki)
    await vtn.start()
    try:
        assert pki.ven_cert is not None
        assert pki.ven_key is not None
        tls_input = {
            "vtn_url": vtn.url,
            "ven_name": "sim-ven",
            "cert": pki.ven_cert.read_text(),
            "key": pki.ven_key.read_text(),
            "ca": pki.ca_cert.read_text(),
        }
        result = await start_vtn_flow(hass)
        flow_id = result["flow_id"]
        result = await hass.config_entries.flow.async_configure(flow_id, {**tls_input, "ca": ""})
        assert result["errors"] == {"ca": "ca_required"}
        result = await hass.config_entries.flow.async_configure(
            flow_id, {**tls_input, "vtn_fingerprint": "00:11:22:33:44:55:66:77:88:99"}
        )
        assert result["errors"] == {"vtn_fingerprint": "fingerprint_mismatch"}
        other = generate_pki(tmp_path / "other")
        with ignore_failed_handshakes():
            result = await hass.config_entries.flow.async_configure(
                flow_id, {**tls_input, "ca": other.ca_cert.read_text()}
            )
        assert result["errors"] == {"base": "tls_failed"}
        result = await hass.config_entries.flow.async_configure(
            flow_id, {**tls_input, "vtn_fingerprint": pki.vtn_fingerprint}
        )
        assert result["step_id"] == "bacnet"
        assert result["description_placeholders"]["ven_fingerprint"] == pki.ven_fingerprint
    finally:
        await vtn.stop()


async def test_second_entry_on_a_shared_stack_must_use_the_same_identity(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry, tmp_path: Path
) -> None:
    vtn = SimVtn()
    await vtn.start()
    try:
        result = await start_vtn_flow(hass)
        flow_id = result["flow_id"]
        result = await hass.config_entries.flow.async_configure(
            flow_id, {"vtn_url": vtn.url, "ven_name": "second-building"}
        )
        assert result["step_id"] == "bacnet"
        # The first entry's stack runs on 127.0.0.1:0 as device 3990001.
        result = await hass.config_entries.flow.async_configure(
            flow_id, _bacnet_input(device_instance=3990002)
        )
        assert result["errors"] == {"device_instance": "stack_identity_conflict"}
        result = await hass.config_entries.flow.async_configure(flow_id, _bacnet_input())
        assert result["step_id"] == "points_bulk"
    finally:
        await vtn.stop()
