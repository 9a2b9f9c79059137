"""The shipped strings cover every key the code uses, and follow hassfest's rules."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import yaml

from custom_components.loadshed_ven.bacnet import BbmdStatus
from custom_components.loadshed_ven.engine.overrides import FailureKind
from custom_components.loadshed_ven.repair_issues import stuck_points_translation_key

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


def test_every_point_failure_kind_is_translated() -> None:
    """An operator's failed write or release is told by failure kind: one message per kind."""
    exceptions = _load("strings.json")["exceptions"]
    for operation in ("write", "release"):
        for kind in FailureKind:
            message = exceptions[f"{operation}_failed_{kind}"]["message"]
            assert set(re.findall(r"{(\w+)}", message)) == {"point", "detail"}, message


def test_every_bbmd_status_is_translated() -> None:
    """The BBMD registration sensor's status attribute shows each status in words."""
    entity = _load("strings.json")["entity"]["binary_sensor"]["bbmd_registered"]
    states = entity["state_attributes"]["status"]["state"]
    assert set(states) == {str(status) for status in BbmdStatus}


def test_repair_issue_placeholders_match_the_code() -> None:
    """Every issue the code raises is translated, with exactly the placeholders it passes."""
    source = (PACKAGE / "repair_issues.py").read_text(encoding="utf-8")
    raised = re.findall(
        r'translation_key=("[a-z_]+"|stuck_points_translation_key\(kind\)),'
        r"\s*translation_placeholders=\{(.*?)\}",
        source,
        re.S,
    )
    keys: list[tuple[str, str]] = []
    for key, body in raised:
        if key.startswith('"'):
            keys.append((key.strip('"'), body))
        else:  # one issue per failure kind
            keys.extend((stuck_points_translation_key(kind), body) for kind in FailureKind)
    issues = _load("strings.json")["issues"]
    assert {key for key, _ in keys} == set(issues)
    for key, body in keys:
        passed = set(re.findall(r'"([a-z_]+)":', body))
        text = issues[key]["title"] + issues[key]["description"]
        assert set(re.findall(r"\{([a-z_]+)\}", text)) == passed, key


# Abort reasons HA's flow manager and ConfigFlow helpers raise on the flow's behalf, by the call
# that raises them (homeassistant/config_entries.py); the flow's dialog looks each one up under
# config.abort of this integration.
_HELPER_ABORTS = {
    "_abort_if_unique_id_configured": "already_configured",
    "_async_abort_entries_match": "already_configured",
    "_abort_if_unique_id_mismatch": "unique_id_mismatch",
    "async_update_reload_and_abort": "reconfigure_successful",  # in a reconfigure flow
    "async_update_and_abort": "reconfigure_successful",  # a subentry's reconfigure flow
    "async_set_unique_id": "already_in_progress",  # unless raise_on_progress=False
}


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


# Which modules each flow's dialogs are in (the translations have a section per flow).
_CONFIG_FLOW = [
    "config_flow.py",
    "config_flow_vtn.py",
    "config_flow_schemas.py",
    "validation.py",
    "validation_vtn3.py",
]
_CONTROLLER_FLOW = [
    "config_flow_controller.py",
    "config_flow_discovery.py",
    "config_flow_picks.py",
    "config_flow_import.py",
]
_OPTIONS_FLOW = ["config_flow_options.py"]


def _flow_reasons(modules: list[str]) -> tuple[set[str], set[str]]:
    """The error and abort keys a flow can show, read from its modules' source (AST)."""
    errors: set[str] = set()
    aborts: set[str] = set()
    for path in (PACKAGE / name for name in modules):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            # errors[field] = "key"
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                subscripts = [t.value for t in node.targets if isinstance(t, ast.Subscript)]
                if any(isinstance(t, ast.Name) and t.id == "errors" for t in subscripts):
                    errors.add(node.value.value)
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "FlowError":  # FlowError(field, "key", ...) becomes errors[field]
                key = node.args[1]
                assert isinstance(key, ast.Constant), ast.unparse(node)
                errors.add(key.value)
            elif name in {"async_abort", "AbortFlow"} or name in _HELPER_ABORTS:
                reason = _keyword(node, "reason") or (node.args[0] if name == "AbortFlow" else None)
                if name == "async_set_unique_id":
                    progress = _keyword(node, "raise_on_progress")
                    if isinstance(progress, ast.Constant) and progress.value is False:
                        continue
                if reason is None:
                    aborts.add(_HELPER_ABORTS[name])
                else:
                    assert isinstance(reason, ast.Constant), ast.unparse(node)
                    aborts.add(reason.value)
    return errors, aborts


def test_every_flow_module_is_checked() -> None:
    modules = {p.name for p in PACKAGE.glob("config_flow*.py")}
    assert modules == {*_CONFIG_FLOW, *_CONTROLLER_FLOW, *_OPTIONS_FLOW} - {
        "validation.py",
        "validation_vtn3.py",
    }


def test_every_config_flow_error_and_abort_is_translated() -> None:
    """Every key the flow's dialog can show is translated, and no translation is dead."""
    config = _load("strings.json")["config"]
    errors, aborts = _flow_reasons(_CONFIG_FLOW)
    assert {"cannot_connect", "normal_not_below_shed", "stack_identity_conflict"} <= errors
    assert errors == set(config["error"])
    # A second flow for the same VTN and VEN, and a flow for one already set up.
    aborts |= {"already_in_progress", "already_configured"}
    assert aborts == set(config["abort"])


def test_every_controller_flow_error_and_abort_is_translated() -> None:
    strings = _load("strings.json")["config_subentries"]["controller"]
    errors, aborts = _flow_reasons(_CONTROLLER_FLOW)
    errors |= {"invalid_points", "no_points"}  # validation.bulk_points
    assert errors == set(strings["error"])
    assert aborts == set(strings["abort"])
    assert set(strings["initiate_flow"]) == {"user", "reconfigure"}
    for step in strings["step"].values():
        assert set(step["data_description"]) == set(step["data"])


def test_every_options_flow_error_is_translated() -> None:
    strings = _load("strings.json")["options"]
    errors, aborts = _flow_reasons(_OPTIONS_FLOW)
    assert errors == set(strings["error"])
    assert not aborts
    for step in strings["step"].values():
        assert set(step["data_description"]) == set(step["data"])


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


def test_every_config_flow_field_has_a_description() -> None:
    """The quality scale's config-flow rule: each field explains itself."""
    for step_id, step in _load("strings.json")["config"]["step"].items():
        assert set(step.get("data_description", {})) == set(step.get("data", {})), step_id
