"""The simulated VTN over mutual TLS with a pinned fingerprint, and what it refuses."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openleadr import utils

from sim.pki import SimTls, fingerprint, generate_pki
from sim.vtn import SimVtn
from tests.sim.openleadr_ven import VenFactory
from tests.tls_helpers import ignore_failed_handshakes
from tests.vtn_fixtures import wait_for

pytestmark = pytest.mark.compat


def tls_kwargs(tls: SimTls, *, pin: str | None = None) -> dict[str, Any]:
    return {
        "cert": str(tls.ven_cert),
        "key": str(tls.ven_key),
        "passphrase": tls.passphrase,
        "ca_file": str(tls.ca_cert),
        "vtn_fingerprint": pin or tls.vtn_fingerprint,
    }


async def test_pki_fingerprint_matches_openleadr(pki: SimTls) -> None:
    assert fingerprint(pki.vtn_cert) == utils.certificate_fingerprint(pki.vtn_cert.read_text())


async def test_mutual_tls_with_pinning(tls_vtn: SimVtn, make_ven: VenFactory, pki: SimTls) -> None:
    assert tls_vtn.url.startswith("https://127.0.0.1:")
    ven = await make_ven(tls_vtn.url, **tls_kwargs(pki))
    assert tls_vtn.registered_vens()[0].fingerprint == pki.ven_fingerprint
    vtn_event = tls_vtn.add_event(level=1)
    await wait_for(lambda: ven.new)
    await wait_for(lambda: tls_vtn.opts)
    assert tls_vtn.opts[0].event_id == vtn_event


async def test_tls_rejections(
    tls_vtn: SimVtn, make_ven: VenFactory, pki: SimTls, tmp_path: Path
) -> None:
    with ignore_failed_handshakes():
        # No client certificate: the handshake fails before any OpenADR message.
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session:
            with pytest.raises(aiohttp.ClientError):
                async with session.post(f"{tls_vtn.url}/EiRegisterParty", data=b"") as response:
                    await response.read()
        # A client certificate from another CA.
        other = generate_pki(tmp_path / "other")
        foreign = {**tls_kwargs(pki), "cert": str(other.ven_cert), "key": str(other.ven_key)}
        foreign["passphrase"] = None
        assert not await (await make_ven(tls_vtn.url, register=False, **foreign)).run()
    assert tls_vtn.registered_vens() == []
    # A VTN that is not the pinned one: the VEN drops its answers.
    wrong_pin = tls_kwargs(pki, pin=other.vtn_fingerprint)
    assert not await (await make_ven(tls_vtn.url, register=False, **wrong_pin)).run()
