"""What HACS, hassfest and Home Assistant's loader require of the package (see the docs)."""

from __future__ import annotations

import ast
import json
import struct
from pathlib import Path
from typing import Any

import yaml
from awesomeversion import AwesomeVersion
from homeassistant.const import Platform
from homeassistant.requirements import DISCOVERY_INTEGRATIONS

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


# hassfest's dependency rule (script/hassfest/dependencies.py in home-assistant/core), which the
# hassfest action applies to this integration: every `homeassistant.components.X` it imports must be
# in `dependencies` or `after_dependencies`, apart from the components listed here. Its
# IGNORE_VIOLATIONS exceptions only name pairs of core integrations and are left out.
ALLOWED_USED_COMPONENTS = {
    *(platform.value for platform in Platform),
    "alert", "automation", "conversation", "default_config", "device_automation", "frontend",
    "group", "homeassistant", "input_boolean", "input_button", "input_datetime", "input_number",
    "input_select", "input_text", "media_source", "onboarding", "panel_custom",
    "persistent_notification", "person", "script", "shopping_list", "sun", "system_health",
    "system_log", "timer", "webhook", "websocket_api", "zone", "mjpeg", "stream",
}  # fmt: skip


class _ImportCollector(ast.NodeVisitor):
    """The components one module imports, as hassfest's ImportCollector finds them."""

    def __init__(self) -> None:
        self.referenced: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module is None:
            return
        if node.module == "homeassistant.components.http.auth" and [
            alias.name for alias in node.names
        ] == ["async_sign_path"]:
            return
        if node.module.startswith("homeassistant.components."):
            self.referenced.add(node.module.split(".")[2])
        elif node.module == "homeassistant.components":
            self.referenced.update(alias.name for alias in node.names)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.startswith("homeassistant.components."):
                self.referenced.add(alias.name.split(".")[2])


def _components_not_declared(manifest: dict[str, Any]) -> set[str]:
    """What hassfest reports as "Using component X but it's not in 'dependencies' ...".

    Run on this integration alone (as the hassfest action does), so no module of it is the
    platform of another integration in the run.
    """
    allowed = (
        ALLOWED_USED_COMPONENTS
        | set(manifest.get("dependencies", []))
        | set(manifest.get("after_dependencies", []))
    )
    if "bluetooth_adapters" in allowed:
        allowed.add("bluetooth")
    for domain, keys in DISCOVERY_INTEGRATIONS.items():
        if any(key in manifest for key in keys):
            allowed.add(domain)
    undeclared: set[str] = set()
    for path in PACKAGE.glob("**/*.py"):
        collector = _ImportCollector()
        collector.visit(ast.parse(path.read_text(encoding="utf-8")))
        for ref in collector.referenced - allowed - {manifest["domain"]}:
            # A component this integration has a platform for (diagnostics.py, logbook.py).
            if not ((PACKAGE / f"{ref}.py").is_file() or (PACKAGE / ref).is_dir()):
                undeclared.add(ref)
    return undeclared


def test_hassfest_dependency_rule() -> None:
    manifest = _json(PACKAGE / "manifest.json")
    assert _components_not_declared(manifest) == set()
    # The rule bites: validation.py reads HA's network adapters when network is loaded, and
    # the import step sets up file_upload only when a file is imported.
    without = {k: v for k, v in manifest.items() if k != "after_dependencies"}
    assert _components_not_declared(without) == {"file_upload", "network"}
    assert not set(manifest["dependencies"]) & set(manifest.get("after_dependencies", []))


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
