"""A VTN refusing the VEN's client certificate is told apart from every other TLS failure.

The simulated VTN (asyncio) closes the connection without sending its TLS alert; a VTN on a
blocking TLS stack sends it. Both, and HTTP 401/403 to a registration, are a refusal.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from custom_components.loadshed_ven.openadr.errors import (
    CLIENT_CERT_ALERTS,
    http_status_error,
    transport_error,
)
from custom_components.loadshed_ven.openadr.ven import (
    VenSettings,
    VtnClientCertRefused,
    VtnTlsError,
    validate,
)
from sim.pki import SimTls, generate_pki

PATH = "/OpenADR2/Simple/2.0b"


class AlertingVtn:
    """A TLS server on a blocking socket: a refused client certificate gets its alert."""

    def __init__(self, tls: SimTls) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls.vtn_cert), str(tls.vtn_key), tls.passphrase)
        context.load_verify_locations(str(tls.ca_cert))
        context.verify_mode = ssl.CERT_REQUIRED
        self._context = context
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen()
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.refused: list[str] = []

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._sock.getsockname()[1]}{PATH}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            with self._context.wrap_socket(
                conn, server_side=True, do_handshake_on_connect=False
            ) as tls:
                try:
                    tls.do_handshake()  # a certificate it accepts: no test gets past this
                except (ssl.SSLError, OSError) as err:
                    self.refused.append(getattr(err, "reason", None) or repr(err))
                    _drain(tls)

    def __enter__(self) -> AlertingVtn:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


def _drain(tls: ssl.SSLSocket) -> None:
    """Read what the client sent (raw) until it closes: closing with unread data would reset
    the connection, and the client could see the reset before the alert."""
    try:
        while socket.socket.recv(tls, 65536):
            pass
    except OSError:
        pass


@pytest.fixture
def alerting_vtn(socket_enabled: None, pki: SimTls) -> Iterator[AlertingVtn]:
    with AlertingVtn(pki) as server:
        yield server


async def test_alerts_for_a_foreign_or_missing_certificate(
    alerting_vtn: AlertingVtn, pki: SimTls, tmp_path: Path
) -> None:
    other = await asyncio.to_thread(generate_pki, tmp_path / "other")
    foreign = VenSettings(
        alerting_vtn.url,
        "ven",
        cert_file=str(other.ven_cert),
        key_file=str(other.ven_key),
        ca_file=str(pki.ca_cert),
    )
    with pytest.raises(VtnClientCertRefused, match="TLSV1_ALERT_UNKNOWN_CA"):
        await validate(foreign, asyncio.to_thread)
    anonymous = VenSettings(alerting_vtn.url, "ven", ca_file=str(pki.ca_cert))
    with pytest.raises(VtnClientCertRefused, match="CERTIFICATE_REQUIRED"):
        await validate(anonymous, asyncio.to_thread)
    assert len(alerting_vtn.refused) == 2


@pytest.mark.parametrize("status", [401, 403])
async def test_not_authorised_registration_is_a_refusal(socket_enabled: None, status: int) -> None:
    async def refuse(_: web.Request) -> web.Response:
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post(f"{PATH}/{{service}}", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        with pytest.raises(VtnClientCertRefused, match=f"HTTP {status}"):
            await validate(VenSettings(f"http://127.0.0.1:{port}{PATH}", "ven"), asyncio.to_thread)
    finally:
        await runner.cleanup()


def test_other_statuses_and_alerts_are_no_refusal() -> None:
    url = f"https://vtn.example{PATH}/EiEvent"
    refusal = http_status_error(403, url)
    assert type(refusal) is VtnTlsError  # only a registration speaks for the certificate
    err = ssl.SSLError(1, "handshake failure")
    err.reason = "SSLV3_ALERT_HANDSHAKE_FAILURE"
    assert type(transport_error(err, url, had_contact=False)) is VtnTlsError
    for reason in CLIENT_CERT_ALERTS:
        alert = ssl.SSLError(1, reason.lower())
        alert.reason = reason
        assert isinstance(transport_error(alert, url, had_contact=True), VtnClientCertRefused)
