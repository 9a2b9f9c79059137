"""The shipped strings cover every key the code uses, and follow hassfest's rules."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

PACKAGE = Path(__file__).resolve().parents[1] / "custom_components" / "loadshed_ven"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PACKAGE / name).read_text(encoding="utf-8"))
    return data


def _source() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py"))


def _leaves(node: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(node, dict):
        return [leaf for key, value in node.items() for leaf in _leaves(value, f"{path}.{key}")]
    return [(path, node)]


def test_translations_en_is_strings_json() -> None:
    assert _load("strings.json") == _load("translations/en.json")


def test_every_exception_key_used_is_translated() -> None:
    exceptions = _load("strings.json")["exceptions"]
    used = set(re.findall(r'translation_key="([a-z0-9_]+)"', _source()))
    used |= set(re.findall(r"translation_key=([A-Z_]+)", _source())) and set()
    missing = {key for key in used if key not in exceptions}
    # Entity and repair-issue translation keys have sections of their own.
    strings = _load("strings.json")
    other_keys = {key for platform in strings["entity"].values() for key in platform}
    other_keys |= set(strings["issues"])
    assert missing <= other_keys, missing - other_keys


def test_repair_issue_placeholders_match_the_code() -> None:
    """Every issue the code raises is translated, with exactly the placeholders it passes."""
    source = (PACKAGE / "repair_issues.py").read_text(encoding="utf-8")
    raised = re.findall(
        r'translation_key="([a-z_]+)",\s*translation_placeholders=\{(.*?)\}', source, re.S
    )
    issues = _load("strings.json")["issues"]
    assert {key for key, _ in raised} == set(issues)
    for key, body in raised:
        passed = set(re.findall(r'"([a-z_]+)":', body))
        text = issues[key]["title"] + issues[key]["description"]
        assert set(re.findall(r"\{([a-z_]+)\}", text)) == passed, key


def test_every_config_flow_error_is_translated() -> None:
    config = _load("strings.json")["config"]
    source = (PACKAGE / "validation.py").read_text() + (PACKAGE / "config_flow.py").read_text()
    used = set(re.findall(r'FlowError\(\s*[A-Za-z_."]+,\s*"([a-z0-9_]+)"', source))
    used |= set(re.findall(r'errors\[[A-Z_]+\] = "([a-z0-9_]+)"', source))
    assert used
    assert used <= set(config["error"]), used - set(config["error"])
    aborts = set(re.findall(r'reason="([a-z0-9_]+)"', source)) | {"already_configured"}
    assert aborts <= set(config["abort"]), aborts - set(config["abort"])


def test_services_yaml_matches_the_strings() -> None:
    services = yaml.safe_load((PACKAGE / "services.yaml").read_text())
    strings = _load("strings.json")["services"]
    assert set(services) == set(strings)
    for name, service in services.items():
        assert set(service.get("fields", {})) == set(strings[name].get("fields", {})), name
        assert strings[name]["name"]
        assert strings[name]["description"]


def test_hassfest_string_rules() -> None:
    for path, text in _leaves(_load("strings.json")):
        assert isinstance(text, str), path
        assert text == text.strip(), f"{path}: leading or trailing space"
        assert not re.search(r"https?://", text), f"{path}: no URLs in strings"
        assert not re.search(r"<[a-z/][^>]*>", text), f"{path}: no HTML"
        assert all(
            re.fullmatch(r"[a-z0-9_-]+", key) for key in path.strip(".").split(".")[:-1] if key
        ), path
