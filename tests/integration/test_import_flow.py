"""Importing controllers from a point file in the UI, and exporting them as one.

Against the simulated building on loopback: the demo EDE's devices are looked for on the running
entry's stack (the entry cannot broadcast, so only the routed network is asked), the user
completes the addresses, and the imported points shed and release on the simulated devices. A
refused file creates nothing; an exported file imports again to the same points.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import Any

import pytest
from bacpypes3.primitivedata import ObjectIdentifier
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState, ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven import config_flow_import, services, settings
from custom_components.loadshed_ven.bacnet import DiscoveredDevice, DiscoveryError
from custom_components.loadshed_ven.engine.point_files import parse_points_csv
from custom_components.loadshed_ven.engine.points import point_from_dict
from sim.bacnet_objects import FAN_SPEED_COMMAND, slot_values
from sim.building import SimBuilding

from . import conftest
from .conftest import IP_DEVICES, ROUTED_DEVICE, SETPOINT, slot, wait_for

DEMO_EDE = Path(__file__).resolve().parents[2] / "demo" / "building.ede.csv"
# The test building's controllers by device instance (IP first, then the routed one).
INSTANCES = dict(zip(range(1001, 1005), [*IP_DEVICES, ROUTED_DEVICE], strict=True))
HEADER = "name,address,object_type,instance,priority,mode,level_1,level_2,level_3,min,max"


@pytest.fixture
def mock_config_entry(building: SimBuilding, monkeypatch: pytest.MonkeyPatch) -> MockConfigEntry:
    """The shared entry without a controller: the imports add them."""
    monkeypatch.setattr(conftest, "point_dicts", list)
    monkeypatch.setattr(config_flow_import, "EDE_WAIT", 1.0)
    return MockConfigEntry(
        domain=conftest.DOMAIN,
        title=conftest.VEN_NAME,
        data=conftest.entry_data(building),
        unique_id=f"{building.vtn.url.lower()}|{conftest.VEN_NAME}",
    )


type Upload = Callable[[str | bytes], str]


@pytest.fixture
def upload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Upload:
    """Store a file as uploaded and return its id, as the file_upload integration hands it on."""
    files: dict[str, Path] = {}

    @contextmanager
    def process_uploaded_file(hass: HomeAssistant, file_id: str) -> Iterator[Path]:
        if file_id not in files:
            raise ValueError("File does not exist")
        yield files.pop(file_id)

    def add(content: str | bytes) -> str:
        file_id = str(uuid.uuid4())
        path = tmp_path / file_id
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        files[file_id] = path
        return file_id

    monkeypatch.setattr(config_flow_import, "process_uploaded_file", process_uploaded_file)
    return add


async def _submit(hass: HomeAssistant, flow_id: str, user_input: dict[str, Any]) -> dict[str, Any]:
    """Submit a form; through a progress step, return what follows it."""
    result = dict(await hass.config_entries.subentries.async_configure(flow_id, user_input))
    while result["type"] is FlowResultType.SHOW_PROGRESS:
        await hass.async_block_till_done()
        result = dict(await hass.config_entries.subentries.async_configure(flow_id))
    return result


async def _import_file(hass: HomeAssistant, entry: MockConfigEntry, file_id: str) -> dict[str, Any]:
    """Start the controller flow, choose the import and upload ``file_id``."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "controller"), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert "import_file" in result["menu_options"]
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"next_step_id": "import_file"}
    )
    assert result["step_id"] == "import_file"
    return await _submit(hass, result["flow_id"], {"file": file_id})


def _suggested(result: dict[str, Any], field: str) -> Any:
    for key in result["data_schema"].schema:
        if str(key) == field:
            return key.description["suggested_value"]
    raise AssertionError(f"no field {field}")


def _stored(entry: MockConfigEntry) -> dict[str, list[dict[str, Any]]]:
    """Each controller subentry's points, by address."""
    return {s.unique_id or "": list(s.data["points"]) for s in entry.subentries.values()}


def _fan(building: SimBuilding, address: str) -> object:
    """Slot 10 of the supply fan speed command (the sim's helpers cover its points only)."""
    app = building.bacnet.device(address).app
    return slot_values(app.get_object_id(ObjectIdentifier(FAN_SPEED_COMMAND)))[9]


async def test_import_the_demo_ede_then_shed_and_release(
    hass: HomeAssistant,
    building: SimBuilding,
    init_integration: MockConfigEntry,
    upload: Upload,
) -> None:
    """The routed controller is found; the user adds the IP ones and leaves the rest out."""
    entry = init_integration
    file_id = upload(DEMO_EDE.read_bytes())
    result = await _import_file(hass, entry, file_id)
    assert result["step_id"] == "ede_addresses", result
    assert result["description_placeholders"] == {"devices": "54", "found": "1"}
    lines = _suggested(result, "addresses").splitlines()
    assert len(lines) == 54
    assert lines[3] == f"1004 = {ROUTED_DEVICE}  # Sim Controller 1004"
    assert lines[0] == "1001 =  # Sim Controller 1001"

    # A typo is named by its line; nothing moves on.
    typed = [f"{n} = {address}" for n, address in INSTANCES.items()]
    wrong = [*typed, "1005 = x", f"1006 = {IP_DEVICES[0]}"]
    result = await _submit(hass, result["flow_id"], {"addresses": "\n".join(wrong)})
    assert result["errors"] == {"base": "invalid_addresses"}
    problems = result["description_placeholders"]["problems"].splitlines()
    assert problems[0].startswith("line 5: device 1005: address 'x'")
    assert problems[1] == f"line 6: {IP_DEVICES[0]} is device 1001's address already"

    result = await _submit(hass, result["flow_id"], {"addresses": "\n\n".join(typed)})
    assert result["step_id"] == "import_confirm", result
    placeholders = result["description_placeholders"]
    assert (placeholders["controllers"], placeholders["points"]) == ("4", "8")
    assert int(placeholders["skipped"]) > 50 * 2  # 50 devices' rows, and what is never imported
    skips = placeholders["skips"].splitlines()
    assert skips[0] == "54 x the device itself, not a point (line 9: Sim 1001)"
    assert "100 x no address was given for its device (line 46: Sim 1005 " in placeholders["skips"]
    assert not entry.subentries  # nothing exists before the confirmation

    result = await _submit(hass, result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Sim Controller 1004"
    await hass.async_block_till_done()
    stored = _stored(entry)
    assert set(stored) == set(INSTANCES.values())
    assert {s.title for s in entry.subentries.values()} == {
        f"Sim Controller {n}" for n in INSTANCES
    }
    registry = er.async_get(hass)
    for address in INSTANCES.values():
        for obj in (SETPOINT, FAN_SPEED_COMMAND):
            unique_id = f"{entry.entry_id}_{address}/{obj}"
            assert registry.async_get_entity_id("switch", "loadshed_ven", unique_id), unique_id

    # °F setpoints are raised 2 °F at level 1, fan speeds lowered 10 % (the EDE defaults).
    def shed() -> list[object]:
        return [(slot(building, a, SETPOINT, 10), _fan(building, a)) for a in INSTANCES.values()]

    event_id = building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    await wait_for(lambda: shed() == [(74.0, 90.0)] * 4, what="shed")
    building.vtn.cancel_event(event_id)
    await wait_for(lambda: shed() == [(None, None)] * 4, what="release")


async def test_a_bad_csv_line_is_named_and_nothing_created(
    hass: HomeAssistant,
    building: SimBuilding,
    init_integration: MockConfigEntry,
    upload: Upload,
) -> None:
    entry = init_integration
    rows = [
        f"Zone 1,{IP_DEVICES[0]},AV,302,10,absolute,78,80,82,55,90",
        f"Zone 2,{IP_DEVICES[1]},AV,302,10,absolute,78,80,95,55,90",
        f"Shed,{IP_DEVICES[0]},BV,1,12,,active,,,,",
    ]
    bad = upload("\n".join([HEADER, *rows]))
    result = await _import_file(hass, entry, bad)
    assert (result["step_id"], result["errors"]) == ("import_file", {"base": "invalid_file"})
    assert result["description_placeholders"] == {
        "problems": "line 3: level 3 value 95 is above the point's maximum 90",
        "count": "1",
    }
    assert not entry.subentries

    rows[1] = rows[1].replace(",95,", ",84,")
    good = upload("\n".join([HEADER, *rows]))
    result = await _submit(hass, result["flow_id"], {"file": good})
    assert result["step_id"] == "import_confirm"
    assert result["description_placeholders"] == {
        "controllers": "2",
        "points": "3",
        "skipped": "0",
        "skips": "-",
    }
    result = await _submit(hass, result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == IP_DEVICES[1]
    await hass.async_block_till_done()
    stored = _stored(entry)
    assert [len(stored[a]) for a in IP_DEVICES[:2]] == [2, 1]

    event_id = building.vtn.add_event(level=3, duration=timedelta(minutes=30))

    def written() -> list[object]:
        return [
            *(slot(building, a, SETPOINT, 10) for a in IP_DEVICES[:2]),
            slot(building, IP_DEVICES[0], "binary-value,1", 12),
        ]

    await wait_for(lambda: written() == [82.0, 84.0, "active"], what="shed")
    building.vtn.cancel_event(event_id)
    await wait_for(lambda: written() == [None, None, None], what="release")

    # The same file again: the configured controllers are named, nothing changes.
    again = upload("\n".join([HEADER, *rows]))
    result = await _import_file(hass, entry, again)
    assert result["errors"] == {"base": "controllers_configured"}
    assert result["description_placeholders"] == {
        "controllers": f"{IP_DEVICES[0]}\n{IP_DEVICES[1]}",
        "count": "2",
    }
    assert _stored(entry) == stored


async def test_unusable_uploads_are_refused(
    hass: HomeAssistant,
    added_entry: MockConfigEntry,
    upload: Upload,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Gone, too large, not a point file, nothing importable; an EDE with the entry not loaded
    gets the address form empty, and Windows-1252 text is read."""
    result = await _import_file(hass, added_entry, str(uuid.uuid4()))
    assert result["errors"] == {"base": "file_unreadable"}
    flow_id = result["flow_id"]
    with monkeypatch.context() as patch:
        patch.setattr(config_flow_import, "MAX_FILE_BYTES", 10)
        result = await _submit(hass, flow_id, {"file": upload(HEADER)})
    assert result["errors"] == {"base": "file_too_large"}
    result = await _submit(hass, flow_id, {"file": upload("")})
    assert result["errors"] == {"base": "invalid_file"}
    ede = (
        "keyname;device obj.-instance;object-name;object-type;object-instance;settable;unit-code\n"
        "Temp \xb0F;7;T;0;1;N;64\n"
    )
    result = await _submit(hass, flow_id, {"file": upload(ede.encode("cp1252"))})
    assert result["errors"] == {"base": "nothing_to_import"}
    assert result["description_placeholders"]["skipped"] == (
        "1 x object type 0 (analog-input) cannot be overridden (line 2: Temp °F)"
    )
    ede += "Sp;7;Sp;2;302;Y;64\n"
    result = await _submit(hass, flow_id, {"file": upload(ede)})
    assert result["step_id"] == "ede_addresses"
    assert result["description_placeholders"] == {"devices": "1", "found": "0"}
    assert _suggested(result, "addresses") == "7 ="
    result = await _submit(hass, flow_id, {"addresses": "x\n8 = 127.0.0.8\n7 = 127.0.0.7\n7 ="})
    assert result["errors"] == {"base": "invalid_addresses"}
    assert result["description_placeholders"]["problems"].splitlines() == [
        "line 1: 'x': write device instance = address",
        "line 2: device 8 has no points in the file",
        "line 4: device 7 is given twice",
    ]
    result = await _submit(hass, flow_id, {"addresses": "7 =  # left out"})
    assert result["errors"] == {"base": "nothing_to_import"}
    result = await _submit(hass, flow_id, {"addresses": "7 = 127.0.0.7"})
    assert result["step_id"] == "import_confirm"
    # Configured while the summary was open: nothing is created.
    hass.config_entries.async_add_subentry(added_entry, _controller("127.0.0.7"))
    result = await _submit(hass, flow_id, {})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "import_configured_meanwhile"
    assert [s.unique_id for s in added_entry.subentries.values()] == ["127.0.0.7"]


def _controller(address: str) -> ConfigSubentry:
    """A controller subentry without points, as the manual step would store it."""
    data = settings.controller_data(address, "", [])
    return ConfigSubentry(
        data=MappingProxyType(data),
        subentry_type="controller",
        title=address,
        unique_id=address,
    )


@pytest.mark.usefixtures("quick_recovery")
async def test_export_imports_again_to_the_same_points(
    hass: HomeAssistant,
    building: SimBuilding,
    init_integration: MockConfigEntry,
    upload: Upload,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shared building's points, exported with units, into a fresh entry (not loaded)."""
    entry = init_integration
    rows = [
        f"Zone,{IP_DEVICES[0]},AV,302,10,offset,2,4,6,55,90",
        f"'=Fan,{IP_DEVICES[0]},AO,2,9,absolute,50,40,30,0,100",
        f"Shed,{ROUTED_DEVICE},BV,1,12,,active,,,,",
        f"No such object,{IP_DEVICES[1]},AV,999,10,offset,1,1,1,,",
        f"Silent,{IP_DEVICES[2]},AV,302,10,offset,1,1,1,,",
    ]
    building.bacnet.device(IP_DEVICES[2]).offline = True
    result = await _import_file(hass, entry, upload("\n".join([HEADER, *rows])))
    await _submit(hass, result["flow_id"], {})
    await hass.async_block_till_done()

    # Units are read within a deadline: what has not answered by then is left empty.
    with monkeypatch.context() as patch:
        patch.setattr(services, "UNITS_DEADLINE", 0.3)
        hurried = await _export(hass, entry)
    text = await _export(hass, entry)
    exported = parse_points_csv(text)
    assert parse_points_csv(hurried) == exported
    stored = [point_from_dict(p) for points in _stored(entry).values() for p in points]
    assert sorted(exported, key=lambda p: p.key) == sorted(stored, key=lambda p: p.key)
    assert "Zone,127" in text
    assert text.count("degrees-fahrenheit") == 1
    assert ",percent\r\n" in text
    assert "'=Fan" in text

    data, options, _ = settings.split_v1(conftest.entry_data(building))
    fresh = MockConfigEntry(
        domain=conftest.DOMAIN, data=data, options=options, version=2, unique_id="fresh"
    )
    fresh.add_to_hass(hass)
    result = await _import_file(hass, fresh, upload(text))
    assert result["step_id"] == "import_confirm"
    result = await _submit(hass, result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert _stored(fresh) == _stored(entry)
    assert fresh.state is ConfigEntryState.NOT_LOADED
    text = await _export(hass, fresh)
    assert parse_points_csv(text) == exported
    assert "percent" not in text  # units are read from running controllers only


async def _export(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    response = await hass.services.async_call(
        "loadshed_ven",
        "export_points",
        {"config_entry_id": entry.entry_id},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    return str(response["csv"])


async def test_where_the_ede_devices_are_looked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """Everywhere when the stack can broadcast; a failed Who-Is or a stray answer is ignored."""
    asked: list[dict[str, Any]] = []

    async def discover(stack: Any, **kwargs: Any) -> list[DiscoveredDevice]:
        asked.append(kwargs)
        if kwargs["network"] == 2:
            raise DiscoveryError("no route")
        return [
            DiscoveredDevice(5, "127.0.0.5"),
            DiscoveredDevice(6, "127.0.0.6"),  # in the range, not in the file
            DiscoveredDevice(5, "127.0.0.50"),  # answers twice: the first is kept
        ]

    monkeypatch.setattr(config_flow_import, "discover_devices", discover)
    stack = SimpleNamespace(interface=SimpleNamespace(can_broadcast=True), routes={2: "x"})
    assert await config_flow_import.find_addresses(stack, [7, 5]) == {5: "127.0.0.5"}  # type: ignore[arg-type]
    assert [(a["network"], a["low_limit"], a["high_limit"]) for a in asked] == [(None, 5, 7)]
    stack.interface.can_broadcast = False
    asked.clear()
    assert await config_flow_import.find_addresses(stack, [5]) == {}  # type: ignore[arg-type]
    assert [a["network"] for a in asked] == [2]
    assert config_flow_import.listed([str(n) for n in range(12)]).splitlines()[-2:] == [
        "9",
        "... and 2 more",
    ]
