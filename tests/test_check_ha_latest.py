"""Tests of scripts/check_ha_latest.py against a small fake Home Assistant release (no network)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

_SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _load(name: str) -> ModuleType:
    # `python scripts/check_ha_latest.py` puts scripts/ first on the path and its modules
    # import one another by plain name, so the tests do the same.
    if str(_SCRIPTS) not in sys.path:
        sys.path.insert(0, str(_SCRIPTS))
    return importlib.import_module(name)


chk = _load("check_ha_latest")
ha_source = _load("ha_source")
ha_uses = _load("ha_uses")
scan = _load("ha_api_scan")
req = _load("ha_requirements")

FAKE_HA = {
    "homeassistant/__init__.py": "",
    "homeassistant/helpers/__init__.py": "",
    "homeassistant/util/__init__.py": "",
    "homeassistant/helpers/deprecation.py": """
        class DeprecatedConstant: ...
        def check_if_deprecated_constant(name, module_globals): ...
        def deprecated_function(replacement, *, breaks_in_ha_version=None): ...
    """,
    "homeassistant/helpers/frame.py": "def report_usage(what, **kwargs): ...\n",
    "homeassistant/const.py": """
        from enum import StrEnum
        from functools import partial
        from .helpers.deprecation import DeprecatedConstant, check_if_deprecated_constant

        class UnitOfPower(StrEnum):
            WATT = "W"
            KILO_WATT = "kW"

        STATE_UNKNOWN = "unknown"
        _DEPRECATED_OLD_CONST = DeprecatedConstant("x", "STATE_UNKNOWN", "2027.1")
        __getattr__ = partial(check_if_deprecated_constant, module_globals=globals())
    """,
    "homeassistant/data_entry_flow.py": """
        class FlowResult(dict): ...

        class FlowHandler:
            hass = None

            def __init__(self):
                self.context = {}

            def async_show_form(self, **kwargs): ...
    """,
    "homeassistant/config_entries.py": """
        from typing import Generic, TypeVar
        from .data_entry_flow import FlowHandler, FlowResult as ConfigFlowResult
        from .helpers.frame import report_usage

        _T = TypeVar("_T")

        class ConfigEntry(Generic[_T]):
            runtime_data: _T

            def __init__(self):
                self.entry_id = "x"

            def async_on_unload(self, func): ...

        class ConfigFlow(FlowHandler):
            def _get_reconfigure_entry(self): ...

            def async_update_reload_and_abort(self, entry):
                if entry.update_listeners:
                    report_usage("has an update listener", breaks_in_ha_version="2026.12.0")
    """,
    # Python 3.14 only (PEP 758): parsed after adding the parentheses.
    "homeassistant/helpers/event.py": """
        def async_call_later(hass, delay, action):
            try:
                return action()
            except ValueError, TypeError:
                return None
    """,
    # A t-string (PEP 750): unparseable here, so names come from the regex fallback.
    "homeassistant/util/dt.py": """
        from datetime import UTC, datetime
        from homeassistant.helpers.deprecation import deprecated_function

        def utcnow():
            return datetime.now(UTC)

        def _render(value):
            return t"{value}"

        class Clock:
            def tick(self): ...

        @deprecated_function("utcnow", breaks_in_ha_version="2027.3")
        def old_now(): ...
    """,
    "homeassistant/components/rest/manifest.json": '{"domain": "rest", "requirements": '
    '["xmltodict==1.0.4"]}',
    "homeassistant/components/scrape/manifest.json": '{"domain": "scrape", "requirements": '
    '["lxml==6.1.3", "beautifulsoup4==4.13.3"]}',
    "homeassistant/package_constraints.txt": "# pins\naiohttp==3.14.5\n",
    "homeassistant-2099.1.0.dist-info/METADATA": "Name: homeassistant\nRequires-Python: >=3.14.2\n",
}

INTEGRATION = """
    from __future__ import annotations

    import homeassistant.const
    import homeassistant.helpers.event as ev
    from homeassistant.config_entries import ConfigEntry, ConfigFlow
    from homeassistant.const import MISSING_CONST, OLD_CONST, UnitOfPower
    from homeassistant.util import dt as dt_util

    from . import sibling

    type DemoEntry = ConfigEntry[int]


    async def setup(entry: DemoEntry, maybe: ConfigEntry | None) -> None:
        entry.async_on_unload(None)
        entry.async_gone()
        ev.async_call_later(None, 1, None)
        dt_util.utcnow()
        dt_util.old_now()
        dt_util.Clock.tick
        print(UnitOfPower.KILO_WATT, UnitOfPower.MEGA_WATT, homeassistant.const.STATE_UNKNOWN)
        maybe.runtime_data.value
        sibling.anything


    class Flow(ConfigFlow):
        def __init__(self) -> None:
            self._mine = 1

        async def step(self) -> None:
            print(self._mine, self.context, self.hass)
            self._get_reconfigure_entry()
            self.async_show_form()
            self.async_update_reload_and_abort(None)
            self.async_nope()
"""

XML_CONFLICT = """
Collecting openleadr==0.5.36
ERROR: Cannot install openleadr==0.5.36 and xmltodict==1.0.4 because these package versions \
have conflicting dependencies.

The conflict is caused by:
    The user requested xmltodict==1.0.4
    openleadr 0.5.36 depends on xmltodict==0.13.0

ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/
"""
XML_CONSTRAINT_CONFLICT = """
The conflict is caused by:
    openleadr 0.5.36 depends on xmltodict==0.13.0
    The user requested (constraint) xmltodict==1.0.4
"""
LXML_CONFLICT = """
The conflict is caused by:
    The user requested lxml==4.9.0
    signxml 4.5.1 depends on lxml<7,>=5.2.1
"""
MIXED_CONFLICT = """
The conflict is caused by:
    The user requested xmltodict==1.0.4
    openleadr 0.5.36 depends on xmltodict==0.13.0
    otherlib 2.0 depends on xmltodict<1
"""


@pytest.fixture
def ha_tree(tmp_path: Path) -> Path:
    root = tmp_path / "ha"
    for rel, text in FAKE_HA.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


@pytest.fixture
def integration(tmp_path: Path) -> Path:
    package = tmp_path / "repo" / "custom_components" / "demo"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(INTEGRATION).lstrip(), encoding="utf-8")
    (package / "sibling.py").write_text("anything = 1\n", encoding="utf-8")
    (package / "manifest.json").write_text('{"requirements": ["openleadr==0.5.36"]}', "utf-8")
    return package


def _wheel(tree: Path, dest: Path) -> Path:
    wheel = dest / "homeassistant-2099.1.0-py3-none-any.whl"
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel, "w") as archive:
        for path in sorted(tree.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(tree).as_posix())
    return wheel


def _statuses(src: object, uses: list[object]) -> dict[str, str]:
    return {u.dotted: scan.locate(src, u.module, u.attrs).status for u in uses}  # type: ignore[attr-defined]


def test_collects_imports_chains_annotations_and_self(integration: Path) -> None:
    uses = ha_uses.collect_uses(integration)
    names = {u.dotted for u in uses}
    assert {
        "homeassistant.const",
        "homeassistant.helpers.event",
        "homeassistant.helpers.event.async_call_later",
        "homeassistant.config_entries.ConfigEntry.async_on_unload",  # via `type DemoEntry = ...`
        "homeassistant.config_entries.ConfigEntry.runtime_data.value",  # via `ConfigEntry | None`
        "homeassistant.const.UnitOfPower.MEGA_WATT",
        "homeassistant.const.STATE_UNKNOWN",  # import homeassistant.const + full chain
        "homeassistant.util.dt.Clock.tick",
        "homeassistant.config_entries.ConfigFlow.async_show_form",  # self.<inherited>
        "homeassistant.config_entries.ConfigFlow.async_nope",
    } <= names
    assert not any(
        "_mine" in n or "sibling" in n for n in names
    )  # own attributes, relative imports
    unload = next(u for u in uses if u.dotted.endswith("async_on_unload"))
    assert (unload.file, unload.line) == ("custom_components/demo/__init__.py", 15)


def test_resolution_against_release_tree(ha_tree: Path, integration: Path) -> None:
    src = ha_source.HaSource(ha_tree)
    found = _statuses(src, ha_uses.collect_uses(integration))
    for name in (
        "homeassistant.config_entries.ConfigEntry.async_on_unload",
        "homeassistant.config_entries.ConfigEntry.runtime_data.value",
        "homeassistant.config_entries.ConfigFlow.async_show_form",  # inherited from FlowHandler
        "homeassistant.config_entries.ConfigFlow.context",  # self.context set in a base __init__
        "homeassistant.const.UnitOfPower.KILO_WATT",
        "homeassistant.const.STATE_UNKNOWN",
        "homeassistant.helpers.event.async_call_later",  # PEP 758 file
        "homeassistant.util.dt.utcnow",  # t-string file
        "homeassistant.util.dt.Clock.tick",
    ):
        assert found[name] == "ok", name
    for name in (
        "homeassistant.const.MISSING_CONST",
        "homeassistant.const.UnitOfPower.MEGA_WATT",
        "homeassistant.config_entries.ConfigEntry.async_gone",
        "homeassistant.config_entries.ConfigFlow.async_nope",
    ):
        assert found[name] == "missing", name
    assert found["homeassistant.const.OLD_CONST"] == "dynamic"
    # a StrEnum member lookup that HA does not define falls through to the stdlib class
    assert scan.locate(src, "homeassistant.const", ("UnitOfPower", "upper")).status == "ok"
    reexport = scan.locate(src, "homeassistant.config_entries", ("ConfigFlowResult",))
    assert (reexport.status, reexport.where) == ("ok", "homeassistant/data_entry_flow.py:1")


def test_newer_syntax_is_parsed_or_marked_weaker(ha_tree: Path) -> None:
    src = ha_source.HaSource(ha_tree)
    event = src.module("homeassistant.helpers.event")
    dt = src.module("homeassistant.util.dt")
    assert (event.parse, dt.parse) == ("rewritten", "regex")
    assert {"utcnow", "_render", "Clock", "old_now", "UTC"} <= set(dt.defs)
    assert dt.defs["old_now"].deprecated == "deprecated_function"
    loc = scan.locate(src, "homeassistant.util.dt", ("utcnow",))
    assert loc.weak
    assert not scan.locate(src, "homeassistant.helpers.event", ("async_call_later",)).weak


def test_report_lists_problems_with_locations_and_warnings(
    ha_tree: Path, integration: Path
) -> None:
    out = scan.check_api(ha_source.HaSource(ha_tree), ha_uses.collect_uses(integration))
    text = "\n".join(out.lines)
    assert out.problems == 4
    missing = "MISSING    homeassistant.const.UnitOfPower.MEGA_WATT  <- custom_components/demo/"
    assert f"{missing}__init__.py:21" in text
    assert "deprecated in this release: DeprecatedConstant, breaks in 2027.1" in text  # OLD_CONST
    assert "deprecated in this release: deprecated_function" in text  # old_now, regex fallback
    assert "report_usage (line 20: 'has an update listener', breaks in '2026.12.0')" in text
    assert "weaker: homeassistant/util/dt.py" in text
    assert "ok~" in text
    assert out.warnings == 2


@pytest.mark.parametrize(
    ("output", "known"),
    [
        (XML_CONFLICT, True),
        (XML_CONSTRAINT_CONFLICT, True),
        (LXML_CONFLICT, False),
        (MIXED_CONFLICT, False),
        ("ERROR: No matching distribution found for lxml==4.9.0", False),
    ],
)
def test_allowlist_matches_only_the_known_conflict(output: str, known: bool) -> None:
    match = req.known_conflict(output)
    assert (match is not None) is known
    if known:
        assert "xml_compat" in match.reason


def _fake_resolve(conflicts: dict[str, str]) -> object:
    def resolve(reqs: list[str], constraints: Path, python: str) -> tuple[object, str]:
        assert python == "3.14.2"
        assert "aiohttp==3.14.5" in constraints.read_text(encoding="utf-8")
        extra = [r for r in reqs if r not in {"openleadr==0.5.36"}]
        if extra and extra[0] in conflicts:
            return None, conflicts[extra[0]]
        return {"openleadr": "0.5.36", "xmltodict": "0.13.0", "lxml": "6.1.3"}, ""

    return resolve


def test_requirements_report_known_conflict_and_fail_on_others(
    ha_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = ha_source.HaSource(_wheel(ha_tree, tmp_path / "cache"))
    python = chk.wheel_python(src)
    assert python == "3.14.2"
    assert req.core_pins(src)["xmltodict"] == {"xmltodict==1.0.4": ["rest"]}

    monkeypatch.setattr(req, "resolve", _fake_resolve({"xmltodict==1.0.4": XML_CONFLICT}))
    out = req.check_requirements(src, ["openleadr==0.5.36"], python)
    text = "\n".join(out.lines)
    assert (out.problems, out.warnings) == (0, 1)
    assert "KNOWN      core pin xmltodict==1.0.4 (rest)" in text
    assert "known, handled by xml_compat" in text
    assert "ok         core pin lxml==6.1.3 (scrape)" in text
    assert "beautifulsoup4" not in text  # not in our dependency tree
    assert "--constraint homeassistant/package_constraints.txt" in text

    conflicts = {"xmltodict==1.0.4": XML_CONFLICT, "lxml==6.1.3": LXML_CONFLICT}
    monkeypatch.setattr(req, "resolve", _fake_resolve(conflicts))
    out = req.check_requirements(src, ["openleadr==0.5.36"], python)
    assert out.problems == 1
    assert any(line.startswith("  CONFLICT   core pin lxml==6.1.3") for line in out.lines)


def test_network_errors_become_index_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        stderr = "WARNING: Retrying after NewConnectionError(host='pypi.example', port=443)"
        return subprocess.CompletedProcess([], 1, "", stderr)

    monkeypatch.setattr(req.subprocess, "run", run)
    with pytest.raises(req.IndexUnreachable, match=r"NewConnectionError, host pypi\.example"):
        req.latest_version()


def test_main_skips_when_index_unreachable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def unreachable() -> str:
        raise chk.IndexUnreachable("pip index: NewConnectionError")

    monkeypatch.setattr(chk, "latest_version", unreachable)
    assert chk.main([]) == 0
    assert capsys.readouterr().out.startswith("skipped: cannot reach the package index (pip index")


def test_main_with_cached_wheel_fails_on_missing_names(
    ha_tree: Path, integration: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    _wheel(ha_tree, cache)
    argv = ["--version", "2099.1.0", "--cache", str(cache), "--integration", str(integration)]
    assert chk.main([*argv, "--no-requirements"]) == 1
    out = capsys.readouterr().out
    assert "Home Assistant 2099.1.0 (Requires-Python >=3.14.2)" in out
    assert "custom_components/demo/__init__.py:" in out
    assert "FAILED: HA 2099.1.0: 4 problem(s)" in out
