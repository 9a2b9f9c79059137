"""The HA-free core can be lifted out unchanged, and the simulator and tools stay apart from HA.

The core is ``engine``, ``openadr``, ``bacnet`` and ``modbus`` under the integration's package.
Each probe runs in a fresh interpreter: this process already holds Home Assistant.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "custom_components" / "loadshed_ven"
CORE = ("engine", "openadr", "bacnet", "modbus")
HA_MODULES = ("homeassistant", "pytest_homeassistant_custom_component")

# Run as ``python -c PROBE ROOT PACKAGE...``: imports every module of the packages with Home
# Assistant (and the integration's HA layer) made unimportable, comparing library state before
# and after. Prints a JSON report.
_PROBE = r'''
import importlib, importlib.abc, json, logging, pkgutil, sys, types, warnings

root, packages = sys.argv[1], sys.argv[2:]
CORE = {"engine", "openadr", "bacnet", "modbus"}
BLOCKED = {"homeassistant", "pytest_homeassistant_custom_component"}
LIBRARIES = ("openleadr", "xmltodict", "bacpypes3", "pymodbus", "apscheduler", "aiohttp", "lxml")


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        parts = name.split(".")
        if parts[0] in BLOCKED:
            raise ImportError(f"refused: {name}")
        if parts[:2] == ["custom_components", "loadshed_ven"] and len(parts) > 2:
            if parts[2] not in CORE:
                raise ImportError(f"refused (the integration's HA layer): {name}")
        return None


sys.path.insert(0, root)
sys.meta_path.insert(0, Refuse())
# The integration's __init__ is its HA layer: a bare package stands in for it.
import custom_components
stand_in = types.ModuleType("custom_components.loadshed_ven")
stand_in.__path__ = [f"{root}/custom_components/loadshed_ven"]
sys.modules[stand_in.__name__] = stand_in

import openleadr, openleadr.client, openleadr.messaging, openleadr.service  # noqa: E401
import bacpypes3, pymodbus, xmltodict  # noqa: E401


def library_state():
    """Every attribute of the loaded library modules and their classes, and logging levels."""
    state = {}
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in LIBRARIES:
            continue
        for attr, value in list(vars(module).items()):
            state[(name, attr)] = value
            if isinstance(value, type) and value.__module__ == name:
                for key, member in list(vars(value).items()):
                    state[(name, f"{attr}.{key}")] = member
    loggers = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    return state, loggers, list(logging.root.handlers), logging.root.level, list(warnings.filters)


before, loggers, handlers, root_level, filters = library_state()
openleadr_level = logging.getLogger("openleadr").level
messaging_xmltodict = openleadr.messaging.xmltodict
imported, errors = [], []
for package in packages:
    module = importlib.import_module(package)
    imported.append(package)
    def failed(name):
        errors.append(f"{name}: {sys.exc_info()[1]!r}")
    for info in pkgutil.walk_packages(module.__path__, f"{package}.", onerror=failed):
        try:
            importlib.import_module(info.name)
            imported.append(info.name)
        except Exception as err:
            errors.append(f"{info.name}: {err!r}")
after, loggers_after, handlers_after, root_after, filters_after = library_state()
changed = sorted(
    f"{module}.{attr}" for key, value in before.items()
    if (module := key[0]) and (attr := key[1]) and (key not in after or after[key] is not value)
)
changed += [
    f"logger {name}: {level} -> {loggers_after.get(name)}"
    for name, level in loggers.items() if loggers_after.get(name) != level
]
if handlers_after != handlers or root_after != root_level:
    changed.append("the root logger")
if filters_after != filters:
    changed.append("warnings.filters")
print(json.dumps({
    "imported": imported,
    "errors": errors,
    "changed": changed,
    "openleadr_level": [openleadr_level, logging.getLogger("openleadr").level],
    "messaging_xmltodict_same": openleadr.messaging.xmltodict is messaging_xmltodict,
    "ha_loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
}))
'''


def _probe(*packages: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(ROOT), *packages],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def core() -> dict[str, object]:
    return _probe(*(f"custom_components.loadshed_ven.{name}" for name in CORE))


def test_core_imports_without_home_assistant(core: dict[str, object]) -> None:
    assert core["errors"] == []
    assert core["ha_loaded"] == []
    expected = {
        f"custom_components.loadshed_ven.{package}.{path.stem}"
        for package in CORE
        for path in (PACKAGE / package).glob("*.py")
        if path.stem != "__init__"
    }
    assert expected <= set(core["imported"])  # type: ignore[arg-type]


def test_importing_the_core_changes_no_library_state(core: dict[str, object]) -> None:
    assert core["changed"] == []
    # The two the core does change, on purpose and only when a VEN client is built (factory).
    level_before, level_after = core["openleadr_level"]  # type: ignore[misc]
    assert level_before == level_after
    assert core["messaging_xmltodict_same"] is True


def test_the_simulator_runs_without_the_integration() -> None:
    sim = _probe("sim")
    assert sim["errors"] == []
    assert sim["ha_loaded"] == []
    assert not [m for m in sim["imported"] if m.startswith("custom_components")]  # type: ignore[attr-defined]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("folder", ["sim", "bench", "demo"])
def test_tools_use_only_the_core_of_the_integration(folder: str) -> None:
    """The simulator, the benchmark and the demo reach the product through the core only.

    The benchmark's Home Assistant part (``bench/ha.py``, ``bench/lag.py``) and the demo drive
    a real Home Assistant, so they may import it, but never the test harness.
    """
    may_use_ha = {"bench/ha.py", "bench/lag.py"} | {
        str(p.relative_to(ROOT)) for p in (ROOT / "demo").glob("*.py")
    }
    wrong = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        relative = str(path.relative_to(ROOT))
        for name in _imports(path):
            parts = name.split(".")
            if (
                parts[0] == "pytest_homeassistant_custom_component"
                or (parts[0] == "homeassistant" and relative not in may_use_ha)
                or (
                    parts[:2] == ["custom_components", "loadshed_ven"]
                    and (len(parts) < 3 or parts[2] not in CORE)
                )
            ):
                wrong.append(f"{relative}: {name}")
    assert wrong == []
