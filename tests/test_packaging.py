"""What HACS, hassfest and Home Assistant's loader require of the package (see the docs)."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import yaml
from awesomeversion import AwesomeVersion

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "custom_components" / "loadshed_ven"

HACS_KEYS = {
    "name",
    "content_in_root",
    "zip_release",
    "filename",
    "hide_default_branch",
    "country",
    "homeassistant",
    "hacs",
    "persistent_directory",
    "render_readme",
}
QUALITY_RULES = {
    # Bronze
    "action-setup", "appropriate-polling", "brands", "common-modules", "config-flow",
    "config-flow-test-coverage", "dependency-transparency", "docs-actions", "docs-conditions",
    "docs-triggers", "docs-high-level-description", "docs-installation-instructions",
    "docs-removal-instructions", "entity-event-setup", "entity-unique-id", "has-entity-name",
    "runtime-data", "test-before-configure", "test-before-setup", "unique-config-entry",
    # Silver
    "action-exceptions", "config-entry-unloading", "docs-configuration-parameters",
    "docs-installation-parameters", "entity-unavailable", "integration-owner",
    "log-when-unavailable", "parallel-updates", "reauthentication-flow", "test-coverage",
    # Gold
    "devices", "diagnostics", "discovery", "discovery-update-info", "docs-data-update",
    "docs-examples", "docs-known-limitations", "docs-supported-devices",
    "docs-supported-functions", "docs-troubleshooting", "docs-use-cases", "dynamic-devices",
    "entity-category", "entity-device-class", "entity-disabled-by-default",
    "entity-translations", "exception-translations", "icon-translations",
    "reconfiguration-flow", "repair-issues", "stale-devices",
    # Platinum
    "async-dependency", "inject-websession", "strict-typing",
}  # fmt: skip


def _json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_hacs_json_uses_only_keys_hacs_accepts() -> None:
    hacs = _json(ROOT / "hacs.json")
    assert set(hacs) <= HACS_KEYS
    assert hacs["name"]
    assert AwesomeVersion(hacs["homeassistant"]) >= AwesomeVersion("2025.4.0")


def test_manifest_has_what_hacs_and_hassfest_need_in_their_order() -> None:
    manifest = _json(PACKAGE / "manifest.json")
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    for key in ("codeowners", "config_flow", "documentation", "integration_type", "iot_class",
                "issue_tracker", "loggers", "requirements", "version"):  # fmt: skip
        assert key in manifest, key
    assert manifest["domain"] == PACKAGE.name
    assert manifest["config_flow"] is True
    assert AwesomeVersion(manifest["version"]).valid
    assert manifest["documentation"].startswith("https://")
    assert manifest["issue_tracker"].startswith("https://")
    assert "quality_scale" not in manifest


def test_requirements_are_ranges_that_coexist_with_core() -> None:
    requirements = _json(PACKAGE / "manifest.json")["requirements"]
    assert "pymodbus>=3.8.3,<4" in requirements
    assert "openleadr==0.5.36" in requirements  # exact: the xmltodict fix is made for it
    bacpypes = next(r for r in requirements if r.startswith("bacpypes3"))
    assert ">=" in bacpypes
    assert "<" in bacpypes


def test_quality_scale_lists_every_rule_honestly() -> None:
    rules = yaml.safe_load((PACKAGE / "quality_scale.yaml").read_text())["rules"]
    assert set(rules) == QUALITY_RULES
    for rule, value in rules.items():
        status = value if isinstance(value, str) else value["status"]
        assert status in {"done", "todo", "exempt"}, rule
        if status == "exempt":
            assert value["comment"], f"{rule}: an exemption needs a reason"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_brand_images() -> None:
    for name, size in (("icon.png", 256), ("icon@2x.png", 512)):
        for prefix in ("", "dark_"):
            assert _png_size(PACKAGE / "brand" / f"{prefix}{name}") == (size, size)
    for prefix in ("", "dark_"):
        width, height = _png_size(PACKAGE / "brand" / f"{prefix}logo.png")
        assert height == 128
        assert width > height


def test_licence_is_osi_approved() -> None:
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_readme_starts_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```bash") + 1 : lines.index("```bash") + 3]
    assert [line.split()[0] for line in block] == ["scripts/demo", "scripts/test"]
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_the_safety_section_names_tests_that_exist() -> None:
    """Every test the README's Safety section cites as proof is a test in this repository."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    safety = readme.split("## Safety", 1)[1].split("\n## ", 1)[0]
    cited = set(re.findall(r"`(test_[a-z0-9_]+)`", safety))
    assert len(cited) >= 30
    defined = {
        name
        for path in (ROOT / "tests").rglob("test_*.py")
        for name in re.findall(r"^(?:async )?def (test_[a-z0-9_]+)", path.read_text(), re.M)
    }
    assert cited <= defined, sorted(cited - defined)
