"""EDE point lists (engine/ede.py): skips with reasons, addresses by device, the demo file."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from custom_components.loadshed_ven.engine import ede
from custom_components.loadshed_ven.engine.ede import (
    EdeSkip,
    PointFileError,
    ede_devices,
    looks_like_ede,
    parse_ede,
)
from custom_components.loadshed_ven.engine.points import PointError
from custom_components.loadshed_ven.engine.units import PERCENT, LevelDefault
from sim.bacnet import SimBacnetNetwork
from sim.bacnet_objects import build_extras, build_points
from sim.building import BuildingConfig

from .test_point_files import _problems

DEMO_EDE = Path(__file__).resolve().parents[2] / "demo" / "building.ede.csv"


# --- EDE ----------------------------------------------------------------------------------

EDE_HEADER = (
    "keyname;device obj.-instance;object-name;object-type;object-instance;description;"
    "present-value-default;min-present-value;max-present-value;settable;supports COV;"
    "hi-limit;low-limit;state-text-reference;unit-code;vendor-specific-address"
)
EDE = """\
# Engineering data exchange - B.I.G.-EU;;;;;;;;;;;;;;;
PROJECT_NAME;Tower A;;;;;;;;;;;;;;
VERSION_OF_LAYOUT;2.2;;;;;;;;;;;;;;
{mandatory}
{header}
TowerA-VAV1;10;VAV1;8;10;Controller 10;;;;N;N;;;;;
TowerA-VAV1-ZoneTemp;10;ZoneTemp;0;1;Zone temperature;22;;;N;Y;;;;62;
TowerA-VAV1-ClgSp;10;ClgSp;2;302;Cooling setpoint;24;16;30;Y;Y;;;;62;

;;;;;;;;;;;;;;;
# a comment between rows
TowerA-VAV1-FanSpd;10;FanSpd;1;2;Fan speed;80;20,5;100;y;Y;;;;98;
TowerA-VAV1-OaDmp;10;OaDmp;1;3;Outside air damper;30;0;100;Y;Y;;;;98;
TowerA-VAV1-Shed;10;Shed;5;1;Shed request;inactive;;;Y;N;;;;;
TowerA-VAV1-Mode;10;Mode;19;1;Fan mode;1;1;3;Y;N;;;7;;
TowerA-VAV1-Flow;10;Flow;2;9;Airflow setpoint;300;;;Y;N;;;;84;
TowerA-VAV1-Odd;10;Odd;2;10;Unit as text;300;;;Y;N;;;;furlongs;
TowerA-VAV1-NoUnit;10;NoUnit;2;11;;300;;;Y;N;;;;;
TowerA-VAV1-HtgSp;10;HtgSp;2;303;Heating setpoint;20;;;Y;Y;;;;62;
TowerA-VAV1-RO;10;ReadOnlySp;2;304;Occupied setpoint;24;;;N;Y;;;;62;
TowerA-VAV1-Loop;10;Loop;12;1;PID;;;;Y;N;;;;;
TowerA-VAV1-Text;10;AsText;analog-value;305;typed by a person;;;;Y;N;;;;°F;
TowerA-VAV1-Cal;10;Cal;calendar;1;;;;;Y;N;;;;;
;20;;2;302;no names at all;;;;Y;N;;;;64;
"""
EDE = EDE.format(
    header="# " + EDE_HEADER, mandatory="#" + ";".join(["mandatory"] * 5 + ["optional"] * 11)
)
ADDRESSES = {10: "127.0.0.10", 20: "12345:0x14"}


def test_ede_import() -> None:
    result = parse_ede(EDE, addresses=ADDRESSES)
    assert result.project == "Tower A"
    assert result.device_names == {10: "VAV1"}
    assert [
        (p.key, p.values, p.offset, p.min_value, p.max_value, p.name, p.priority)
        for p in result.points
    ] == [
        ("127.0.0.10/analog-value,302", (1.0, 2.0, 3.0), True, 16.0, 30.0, "TowerA-VAV1-ClgSp", 10),
        (
            "127.0.0.10/analog-output,2",
            (-10.0, -20.0, -30.0),
            True,
            20.5,
            100.0,
            "TowerA-VAV1-FanSpd",
            10,
        ),
        ("127.0.0.10/analog-value,305", (2.0, 4.0, 6.0), True, None, None, "TowerA-VAV1-Text", 10),
        ("12345:20/analog-value,302", (2.0, 4.0, 6.0), True, None, None, None, 10),
    ]
    assert result.skipped == (
        EdeSkip(6, "TowerA-VAV1", "the device itself, not a point"),
        EdeSkip(7, "TowerA-VAV1-ZoneTemp", "object type 0 (analog-input) cannot be overridden"),
        EdeSkip(
            13,
            "TowerA-VAV1-OaDmp",
            "named like an outside-air damper, whose ventilation minimum must stay: "
            "give values in a point CSV",
        ),
        EdeSkip(
            14,
            "TowerA-VAV1-Shed",
            "no default for binary-value points: give their values in a point CSV",
        ),
        EdeSkip(
            15,
            "TowerA-VAV1-Mode",
            "no default for multi-state-value points: give their values in a point CSV",
        ),
        EdeSkip(
            16,
            "TowerA-VAV1-Flow",
            "no default for unit 84 (cubic-feet-per-minute): give values in a point CSV",
        ),
        EdeSkip(
            17,
            "TowerA-VAV1-Odd",
            "unit 'furlongs' is unknown, so there are no default values: give them in a point CSV",
        ),
        EdeSkip(
            18,
            "TowerA-VAV1-NoUnit",
            "no unit is given, so there are no default values: give them in a point CSV",
        ),
        EdeSkip(
            19,
            "TowerA-VAV1-HtgSp",
            "named like a heating setpoint, which a raise would not shed: "
            "give values in a point CSV",
        ),
        EdeSkip(20, "TowerA-VAV1-RO", "not settable (settable is 'N', not Y)"),
        EdeSkip(21, "TowerA-VAV1-Loop", "object type 12 cannot be overridden"),
        EdeSkip(23, "TowerA-VAV1-Cal", "object type 'calendar' cannot be overridden"),
    )
    assert ede_devices(EDE) == {10: "VAV1", 20: None}


def test_ede_options_and_quirks() -> None:
    """Windows line ends, BOM, quoted cells, no settable column, own defaults and priority."""
    text = (
        "\ufeff# PROJECT_NAME;;\r\n"
        '# keyname;device-obj-instance;object-name;object-type;object-instance;"unit-code"\r\n'
        '"AHU-1 ""supply"" fan";7;Fan;1;2;98\r\n'
    )
    assert ede_devices(text) == {}
    result = parse_ede(text, addresses={})
    assert result.project is None
    assert result.skipped == (
        EdeSkip(3, 'AHU-1 "supply" fan', "not settable (settable is '', not Y)"),
    )
    own = {PERCENT: LevelDefault((-5.0, -5.0, -5.0), offset=True)}
    text = "keyname,device obj.-instance,object-type,object-instance,settable,unit-code\n"
    text += "F,7,1,2,Y,98"
    [point] = parse_ede(text, addresses={7: "127.0.0.7:47809"}, priority=12, defaults=own).points
    assert (point.address, point.priority, point.values, point.min_value) == (
        "127.0.0.7:47809",
        12,
        (-5.0, -5.0, -5.0),
        None,
    )
    with pytest.raises(PointError, match="life safety"):
        parse_ede(text, addresses={}, priority=3)


def test_ede_problems_name_their_lines() -> None:
    rows = [
        "A;1;A;2;1;;;;;Y;;;;;64;",  # device 1 has no address (named once)
        "B;1;B;2;2;;;;;Y;;;;;64;",
        "C;2;C;2;1;;;;;Y;;;;;64;",  # device 2's address is bad
        "D;3;D;2;x;;;;;Y;;;;;64;",
        "E;4194303;E;2;1;;;;;Y;;;;;64;",
        "F;3;F;;1;;;;;Y;;;;;64;",
        "G;3;G;2;7;;;;;Y;;;;;64;",
        "H;3;H;2;7;;;;;N;;;;;64;",  # a duplicate even when not imported
        "I;3;I;2;8;;;abc;;Y;;;;;64;",
        "J;3;J;2;9;;;;1e999;Y;;;;;64;",
        "K;3;K;2;10;;;90;50;Y;;;;;64;",
        "L;3;L;8;z;;;;;N;;;;;;",
    ]
    header = f"#{EDE_HEADER}\n"
    text = header + "\n".join(rows)
    assert _problems(parse_ede, text, addresses={2: "host.example", 3: "127.0.0.3"}) == [
        (5, "object instance 'x' is not a whole number 0-4194302"),
        (6, "device instance '4194303' is not a whole number 0-4194302"),
        (7, "object-type is empty"),
        (9, "device 3 analog-value 7 is already on line 8"),
        (10, "min-present-value 'abc' is not a number"),
        (11, "max-present-value '1e999' is not a number"),
        (13, "device instance 'z' is not a whole number 0-4194302"),
    ]
    without_bad_rows = header + "\n".join(rows[:3] + rows[6:7] + rows[10:11])
    problems = _problems(parse_ede, without_bad_rows, addresses={2: "host.example"})
    assert [(line, why.split(":")[0]) for line, why in problems] == [
        (2, "device 1 has no address"),
        (4, "device 2"),
        (5, "device 3 has no address"),
    ]
    assert "device 2: address 'host.example'" in problems[1][1]
    problems = _problems(parse_ede, without_bad_rows, addresses={1: "1:1", 2: "2:2", 3: "3:3"})
    assert problems == [(6, "minimum 90 is above maximum 50")]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", (0, "no header row (keyname;device obj.-instance;object-name;object-type;")),
        ("a;b\n\nc;d\n", (0, "no header row")),
        ("x\n# keyname;object-type;object-instance\n", (2, "the header row lacks the device")),
    ],
)
def test_ede_without_a_header(text: str, problem: tuple[int, str]) -> None:
    [(line, why)] = _problems(parse_ede, text, addresses={})
    assert (line, why[: len(problem[1])]) == problem


def test_ede_size_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _problems(ede_devices, "#" * (ede.MAX_EDE_CHARS + 1))[0][0] == 0
    header = "keyname;device obj.-instance;object-type;object-instance;settable;unit-code\n"
    rows = "".join(f"P{n};1;2;{n};Y;64\n" for n in range(4))
    monkeypatch.setattr(ede, "MAX_POINTS", 3)
    assert _problems(ede_devices, header + rows) == [(0, "4 points to import; at most 3")]
    monkeypatch.setattr(ede, "MAX_EDE_ROWS", 2)
    assert _problems(ede_devices, header + rows) == [(4, "more than 2 rows: split the file")]


def test_demo_ede_matches_the_simulated_building() -> None:
    """demo/building.ede.csv lists every controller of `python -m sim` with its objects."""
    config = BuildingConfig()
    network = SimBacnetNetwork(config.devices, config.routed_devices, network=config.network)
    addresses = {device.instance: device.address for device in network.devices}
    text = DEMO_EDE.read_text(encoding="utf-8")
    objects = {
        str(obj.objectIdentifier): (str(obj.objectName), str(getattr(obj, "units", None)))
        for obj in [*build_points(), *build_extras()]
    }
    rows = [row for row in csv.reader(text.splitlines(), delimiter=";") if row[0][:1] != "#"]
    listed = {
        (int(row[1]), row[2]) for row in rows if len(row) > 4 and row[4].isdigit() and row[3] != "8"
    }
    assert listed == {(d, name) for d in addresses for name, _ in objects.values()}
    result = parse_ede(text, addresses=addresses)
    assert result.device_names == {d.instance: d.name for d in network.devices}
    assert {(p.address, p.object_type, p.instance) for p in result.points} == {
        (address, object_type, instance)
        for address in addresses.values()
        for object_type, instance in (("analog-value", 302), ("analog-output", 2))
    }
    assert objects["analog-value,302"] == ("Zone Cooling Setpoint", "degrees-fahrenheit")
    assert objects["analog-output,2"] == ("Supply Fan Speed Command", "percent")


@pytest.mark.parametrize(
    ("text", "is_ede"),
    [
        (EDE, True),
        ("\ufeffkeyname,Device-Instance,object-type,object-instance\n", True),
        ("x\ty\n# keyname\tdevice obj.-instance\n", True),
        ("name,address,object_type,instance,level_1\n127.0.0.5,AV,1,80\n", False),
        ("", False),
        ("\n" * 100 + "keyname;device obj.-instance\n", False),  # beyond the lines looked at
    ],
)
def test_looks_like_ede(text: str, is_ede: bool) -> None:
    assert looks_like_ede(text) is is_ede


def test_ede_devices_without_an_address_can_be_skipped() -> None:
    result = parse_ede(EDE, addresses={20: "12345:20"}, skip_unaddressed=True)
    assert [p.key for p in result.points] == ["12345:20/analog-value,302"]
    lines = [skip.line for skip in result.skipped]
    assert lines == sorted(lines)
    unaddressed = [s for s in result.skipped if s.reason == "no address was given for its device"]
    assert [s.name for s in unaddressed] == [
        "TowerA-VAV1-ClgSp",
        "TowerA-VAV1-FanSpd",
        "TowerA-VAV1-Text",
    ]
    with pytest.raises(PointFileError):  # a bad address is still refused
        parse_ede(EDE, addresses={20: "host.example"}, skip_unaddressed=True)
