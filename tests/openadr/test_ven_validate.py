"""Config-flow validation against the simulated VTN: one real registration, classified errors."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from custom_components.loadshed_ven.openadr.ven import (
    RegistrationInfo,
    VenSettings,
    VtnCannotConnect,
    VtnClientCertRefused,
    VtnError,
    VtnFingerprintMismatch,
    VtnTlsError,
    normalise_fingerprint,
    validate,
    ven_fingerprint,
)
from sim.pki import SimTls, fingerprint, generate_pki
from sim.vtn import SimVtn
from tests.tls_helpers import ignore_failed_handshakes

pytestmark = pytest.mark.compat

VEN_NAME = "validate-building"


def tls_settings(url: str, tls: SimTls, **changes: Any) -> VenSettings:
    settings = VenSettings(
        vtn_url=url,
        ven_name=VEN_NAME,
        cert_file=str(tls.ven_cert),
        key_file=str(tls.ven_key),
        key_passphrase=tls.passphrase,
        ca_file=str(tls.ca_cert),
        vtn_fingerprint=tls.vtn_fingerprint,
    )
    return replace(settings, **changes)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_validate_returns_vtn_assigned_ids(vtn: SimVtn) -> None:
    info = await validate(VenSettings(vtn.url, VEN_NAME), asyncio.to_thread)
    [record] = vtn.registered_vens()
    assert info == RegistrationInfo(record.ven_id, record.registration_id, timedelta(seconds=1))
    assert info.ven_id == SimVtn.ven_id_for(VEN_NAME)
    # Validation does not ask for events, so it sends no opt to the VTN.
    vtn.add_event(level=1)
    await validate(VenSettings(vtn.url, VEN_NAME, ven_id=info.ven_id), asyncio.to_thread)
    assert vtn.opts == []
    assert vtn.registered_vens()[0].registrations == 2


async def test_vtn_down_is_cannot_connect_quickly(socket_enabled: None) -> None:
    url = f"http://127.0.0.1:{free_port()}/OpenADR2/Simple/2.0b"
    started = time.monotonic()
    with pytest.raises(VtnCannotConnect, match="Cannot connect"):
        await validate(VenSettings(url, VEN_NAME), asyncio.to_thread)
    assert time.monotonic() - started < 2


async def test_wrong_path_is_cannot_connect(vtn: SimVtn) -> None:
    url = vtn.url.replace("/OpenADR2/Simple/2.0b", "/wrong")
    with pytest.raises(VtnCannotConnect, match="404"):
        await validate(VenSettings(url, VEN_NAME), asyncio.to_thread)


async def test_mutual_tls_with_pinning(tls_vtn: SimVtn, pki: SimTls) -> None:
    info = await validate(tls_settings(tls_vtn.url, pki), asyncio.to_thread)
    [record] = tls_vtn.registered_vens()
    assert info.ven_id == record.ven_id
    assert record.fingerprint == pki.ven_fingerprint


async def test_fingerprint_is_normalised(tls_vtn: SimVtn, pki: SimTls) -> None:
    pin = pki.vtn_fingerprint.replace(":", "").lower()
    assert normalise_fingerprint(pin) == pki.vtn_fingerprint
    assert normalise_fingerprint("  ") is None
    await validate(tls_settings(tls_vtn.url, pki, vtn_fingerprint=pin), asyncio.to_thread)


async def test_tls_failures(tls_vtn: SimVtn, pki: SimTls, tmp_path: Path) -> None:
    other = await asyncio.to_thread(generate_pki, tmp_path / "other")
    with ignore_failed_handshakes():
        with pytest.raises(VtnTlsError, match="could not be verified") as untrusted:
            await validate(
                tls_settings(tls_vtn.url, pki, ca_file=str(other.ca_cert)), asyncio.to_thread
            )
        # Our side distrusting the VTN is no refusal of our certificate: no new one helps.
        assert not isinstance(untrusted.value, VtnClientCertRefused)
        with pytest.raises(VtnClientCertRefused, match="client certificate"):
            await validate(
                tls_settings(tls_vtn.url, pki, cert_file=None, key_file=None), asyncio.to_thread
            )
        foreign = tls_settings(
            tls_vtn.url,
            pki,
            cert_file=str(other.ven_cert),
            key_file=str(other.ven_key),
            key_passphrase=None,
        )
        with pytest.raises(VtnClientCertRefused):
            await validate(foreign, asyncio.to_thread)
    assert tls_vtn.registered_vens() == []


async def test_wrong_fingerprint(tls_vtn: SimVtn, pki: SimTls, tmp_path: Path) -> None:
    other = await asyncio.to_thread(generate_pki, tmp_path / "other")
    settings = tls_settings(tls_vtn.url, pki, vtn_fingerprint=other.vtn_fingerprint)
    with pytest.raises(VtnFingerprintMismatch, match="another certificate"):
        await validate(settings, asyncio.to_thread)


async def test_unsigned_vtn_with_pinned_fingerprint(vtn: SimVtn, pki: SimTls) -> None:
    settings = VenSettings(vtn.url, VEN_NAME, vtn_fingerprint=pki.vtn_fingerprint)
    with pytest.raises(VtnFingerprintMismatch, match="does not sign"):
        await validate(settings, asyncio.to_thread)


async def test_http_url_for_https_vtn(tls_vtn: SimVtn, pki: SimTls) -> None:
    url = tls_vtn.url.replace("https://", "http://")
    with ignore_failed_handshakes(), pytest.raises(VtnCannotConnect, match="https://"):
        await validate(VenSettings(url, VEN_NAME), asyncio.to_thread)


async def test_bad_key_material_fails_before_connecting(pki: SimTls, tmp_path: Path) -> None:
    url = "https://127.0.0.1:9/OpenADR2/Simple/2.0b"  # never contacted
    with pytest.raises(VtnTlsError, match="passphrase"):
        await validate(tls_settings(url, pki, key_passphrase="wrong"), asyncio.to_thread)
    with pytest.raises(VtnTlsError, match="Cannot read"):
        await validate(
            tls_settings(url, pki, cert_file=str(tmp_path / "missing.pem")), asyncio.to_thread
        )
    with pytest.raises(VtnTlsError, match="both"):
        await validate(tls_settings(url, pki, key_file=None), asyncio.to_thread)
    with pytest.raises(VtnCannotConnect, match="http"):
        await validate(VenSettings("ftp://127.0.0.1/x", VEN_NAME), asyncio.to_thread)


async def test_ven_fingerprint(pki: SimTls, tmp_path: Path) -> None:
    assert pki.ven_cert is not None
    assert ven_fingerprint(pki.ven_cert) == fingerprint(pki.ven_cert) == pki.ven_fingerprint
    with pytest.raises(VtnTlsError):
        ven_fingerprint(pki.ven_key or tmp_path)
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate")
    with pytest.raises(VtnError, match="not a PEM"):
        ven_fingerprint(bogus)
