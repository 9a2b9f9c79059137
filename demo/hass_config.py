"""Home Assistant's configuration directory for the demo.

Only what the demo needs is loaded (no ``default_config``), so nothing discovers devices on
the network or sends analytics, and HTTP listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Final

from homeassistant.components.onboarding import STORAGE_KEY, STORAGE_VERSION
from homeassistant.components.onboarding.const import STEP_CORE_CONFIG

from .options import ROOT

INTEGRATION: Final = ROOT / "custom_components" / "loadshed_ven"
# Written by the demo into every directory it owns; only such a directory is ever deleted.
MARKER: Final = ".loadshed-demo.json"

CONFIGURATION: Final = """\
# Written by the loadshed_ven demo (scripts/demo) on every start: edits are overwritten.
# Only what the demo needs; no default_config, so nothing does network discovery.
homeassistant:
  name: Demo building
  latitude: 37.7793
  longitude: -122.4193
  elevation: 16
  unit_system: us_customary
  time_zone: America/Los_Angeles
  country: US
  currency: USD
  language: en
  internal_url: http://127.0.0.1:{port}

http:
  server_host: 127.0.0.1
  server_port: {port}

frontend:
api:
config:
# The controller flow's file import uploads through it.
file_upload:
onboarding:
lovelace:
logbook:
history:
recorder:
  commit_interval: 1
  purge_keep_days: 3

logger:
  default: warning
  logs:
    custom_components.loadshed_ven: info
    # The camera helper loads with the frontend and misses an optional JPEG library.
    homeassistant.components.camera.img_util: critical
"""


class ConfigDirError(RuntimeError):
    """The configuration directory cannot be used."""


def prepare_config_dir(config_dir: Path, port: int, *, fresh: bool) -> None:
    """Create or refresh the demo's configuration in ``config_dir``.

    A directory that holds another Home Assistant configuration is refused rather than
    overwritten. On a new directory, onboarding's core configuration step is marked done:
    location, units and time zone come from ``configuration.yaml``, and that step would
    otherwise add onboarding's default integrations, which reach the internet.
    """
    if config_dir.exists() and any(config_dir.iterdir()) and not (config_dir / MARKER).exists():
        raise ConfigDirError(
            f"{config_dir} holds files the demo did not create; give another --config-dir"
        )
    if fresh and config_dir.exists():
        shutil.rmtree(config_dir)
    config_dir.mkdir(parents=True, exist_ok=True)
    if not (config_dir / MARKER).exists():
        write_marker(config_dir, {})
    (config_dir / "configuration.yaml").write_text(CONFIGURATION.format(port=port))
    _link_integration(config_dir)
    onboarding = config_dir / ".storage" / STORAGE_KEY
    if not onboarding.exists():
        onboarding.parent.mkdir(exist_ok=True)
        onboarding.write_text(
            json.dumps(
                {
                    "version": STORAGE_VERSION,
                    "minor_version": 1,
                    "key": STORAGE_KEY,
                    "data": {"done": [STEP_CORE_CONFIG]},
                },
                indent=2,
            )
        )


def _link_integration(config_dir: Path) -> None:
    """``custom_components/loadshed_ven`` in the config directory is this checkout's."""
    link = config_dir / "custom_components" / "loadshed_ven"
    link.parent.mkdir(exist_ok=True)
    if link.is_symlink():
        if link.resolve() == INTEGRATION.resolve():
            return
        link.unlink()
    elif link.exists():
        raise ConfigDirError(f"{link} is not a link to {INTEGRATION}; remove it first")
    link.symlink_to(INTEGRATION, target_is_directory=True)


def read_marker(config_dir: Path) -> dict[str, Any]:
    """What the demo recorded about the entry it set up in ``config_dir``."""
    try:
        data = json.loads((config_dir / MARKER).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_marker(config_dir: Path, data: dict[str, Any]) -> None:
    """Record ``data`` (and that the demo owns ``config_dir``)."""
    (config_dir / MARKER).write_text(json.dumps(data, indent=1, sort_keys=True))
