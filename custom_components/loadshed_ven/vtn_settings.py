"""Which VTN an entry talks to, with which OpenADR version, and as whom.

An entry without ``openadr_version`` is an OpenADR 2.0b entry (every entry made before 3.x
was supported). Both versions keep the VTN's URL in ``vtn_url`` and the VEN's name in
``ven_name``: for 3.x they are the VTN's base URL and the VEN name the VTN knows this client by.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Self

from .const import (
    CONF_CLIENT_ID,
    CONF_CLIENT_SECRET,
    CONF_OPENADR_VERSION,
    CONF_PASSPHRASE,
    CONF_POLL_INTERVAL,
    CONF_PROGRAM,
    CONF_SCOPE,
    CONF_TOKEN_URL,
    CONF_VEN_ID,
    CONF_VEN_NAME,
    CONF_VTN_FINGERPRINT,
    CONF_VTN_URL,
    DEFAULT_POLL_INTERVAL,
    OPENADR_2,
    OPENADR_3,
)
from .openadr.factory import VenSettings
from .openadr3.ven import Ven3Settings
from .tls import TlsFiles


def vtn_url(data: Mapping[str, Any]) -> str:
    """The VTN's URL as configured (for 3.x its base URL)."""
    return str(data[CONF_VTN_URL]).strip()


def openadr_version(data: Mapping[str, Any]) -> str:
    """``"3"`` for an OpenADR 3.x entry, else ``"2.0b"``."""
    return OPENADR_3 if str(data.get(CONF_OPENADR_VERSION) or "") == OPENADR_3 else OPENADR_2


def token_url(data: Mapping[str, Any]) -> str:
    """The OAuth2 token endpoint: as configured, else the base URL's ``/auth/token``."""
    explicit = str(data.get(CONF_TOKEN_URL) or "").strip()
    return explicit or f"{vtn_url(data).rstrip('/')}/auth/token"


def ven3_settings(data: Mapping[str, Any]) -> Ven3Settings:
    """How a 3.x VEN reaches its VTN (the config flow's check and the running entry)."""
    seconds = int(data.get(CONF_POLL_INTERVAL) or DEFAULT_POLL_INTERVAL)
    return Ven3Settings(
        base_url=vtn_url(data).rstrip("/"),
        token_url=token_url(data),
        client_id=str(data.get(CONF_CLIENT_ID) or "").strip(),
        client_secret=str(data.get(CONF_CLIENT_SECRET) or ""),
        scope=str(data.get(CONF_SCOPE) or "").strip() or None,
        ven_name=str(data[CONF_VEN_NAME]).strip(),
        program=str(data.get(CONF_PROGRAM) or "").strip() or None,
        poll_interval=timedelta(seconds=max(1, seconds)),
    )


@dataclass(frozen=True, kw_only=True)
class VtnSettings:
    """Which VTN this VEN registers with, and as whom (2.0b PEM texts live in TLS files)."""

    url: str
    ven_name: str
    ven_id: str | None
    key_passphrase: str | None
    vtn_fingerprint: str | None
    version: str = OPENADR_2
    ven3: Ven3Settings | None = None  # set for a 3.x entry

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Self:
        """Parse the VTN step's fields."""
        version = openadr_version(data)
        return cls(
            url=vtn_url(data),
            ven_name=str(data[CONF_VEN_NAME]).strip(),
            ven_id=str(data.get(CONF_VEN_ID) or "").strip() or None,
            key_passphrase=str(data.get(CONF_PASSPHRASE) or "") or None,
            vtn_fingerprint=str(data.get(CONF_VTN_FINGERPRINT) or "").strip() or None,
            version=version,
            ven3=ven3_settings(data) if version == OPENADR_3 else None,
        )

    def ven(self, files: TlsFiles) -> VenSettings:
        """How a 2.0b VEN reaches the VTN, with the TLS material at ``files``."""
        return VenSettings(
            vtn_url=self.url,
            ven_name=self.ven_name,
            ven_id=self.ven_id,
            cert_file=files.cert_file,
            key_file=files.key_file,
            key_passphrase=self.key_passphrase,
            ca_file=files.ca_file,
            vtn_fingerprint=self.vtn_fingerprint,
        )
