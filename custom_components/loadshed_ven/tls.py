"""The VEN's TLS material: PEM text in the config entry, files on disk for openleadr.

openleadr reads certificate, key and CA from file paths, so the PEM text the user pasted is
written (0600) under HA's storage directory when an entry starts, and into a temporary directory
while the config flow validates it. All file I/O runs in the executor.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import STORAGE_DIR

from .const import CONF_CA, CONF_CERT, CONF_KEY, DOMAIN


@dataclass(frozen=True, kw_only=True)
class TlsFiles:
    """Paths of the written files (all None when the VEN runs without a certificate)."""

    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None


_NAMES = {CONF_CERT: "ven.pem", CONF_KEY: "ven.key", CONF_CA: "ca.pem"}


def _write(directory: Path, data: Mapping[str, Any]) -> TlsFiles:
    paths: dict[str, str | None] = dict.fromkeys(_NAMES)
    if not any(str(data.get(key) or "").strip() for key in _NAMES):
        return TlsFiles()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for key, name in _NAMES.items():
        text = str(data.get(key) or "").strip()
        if not text:
            continue
        path = directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(text + "\n")
        paths[key] = str(path)
    return TlsFiles(cert_file=paths[CONF_CERT], key_file=paths[CONF_KEY], ca_file=paths[CONF_CA])


async def async_write_entry_files(
    hass: HomeAssistant, entry_id: str, data: Mapping[str, Any]
) -> TlsFiles:
    """Write the entry's TLS material to its own directory under ``.storage``."""
    directory = Path(hass.config.path(STORAGE_DIR, DOMAIN, entry_id))
    return await hass.async_add_executor_job(_write, directory, data)


async def async_remove_entry_files(hass: HomeAssistant, entry_id: str) -> None:
    """Delete the entry's TLS directory (when the entry is removed)."""
    directory = Path(hass.config.path(STORAGE_DIR, DOMAIN, entry_id))
    await hass.async_add_executor_job(shutil.rmtree, directory, True)


@asynccontextmanager
async def temporary_files(hass: HomeAssistant, data: Mapping[str, Any]) -> AsyncIterator[TlsFiles]:
    """Write the material to a private temporary directory for a check, then delete it."""
    directory = Path(await hass.async_add_executor_job(tempfile.mkdtemp))
    try:
        yield await hass.async_add_executor_job(_write, directory, data)
    finally:
        await hass.async_add_executor_job(shutil.rmtree, directory, True)
