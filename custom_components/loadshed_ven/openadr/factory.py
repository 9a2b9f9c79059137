"""Settings, client construction without blocking the event loop, and config-flow validation."""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import openleadr.messaging
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from openleadr import utils

from .client import VenClient
from .errors import VtnCannotConnect, VtnTlsError
from .registration import RegistrationInfo

type RunBlocking = Callable[[Callable[[], Any]], Awaitable[Any]]

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=5, sock_read=10)
VALIDATE_TIMEOUT_SECONDS = 15.0
_FINGERPRINT_HEX = re.compile(r"[0-9A-F]{20}")
# Imported on first use by APScheduler (triggers, executor, job store): do it off the loop.
_SCHEDULER_MODULES = (
    "apscheduler.triggers.interval",
    "apscheduler.triggers.cron",
    "apscheduler.triggers.date",
    "apscheduler.executors.asyncio",
    "apscheduler.jobstores.memory",
)


@dataclass(frozen=True, slots=True)
class VenSettings:
    """How to reach the VTN and who this VEN is. File paths are read in an executor."""

    vtn_url: str
    ven_name: str
    ven_id: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    key_passphrase: str | None = None
    ca_file: str | None = None
    vtn_fingerprint: str | None = None


def normalise_fingerprint(value: str | None) -> str | None:
    """Return a fingerprint in openleadr's form (``AA:BB:...``, 10 bytes), or None if blank.

    Accepts lower case, spaces, and the 20 hex digits without separators.
    """
    if value is None or not value.strip():
        return None
    text = re.sub(r"[\s:-]", "", value).upper()
    if not _FINGERPRINT_HEX.fullmatch(text):
        return value.strip().upper()
    return ":".join(text[i : i + 2] for i in range(0, 20, 2))


def ven_fingerprint(cert_path: str | Path) -> str:
    """Return the OpenADR fingerprint of a PEM (or DER) certificate file, as openleadr prints it.

    Blocking (reads the file): call it through the executor. Raises :class:`VtnTlsError`.
    """
    try:
        data = Path(cert_path).read_bytes()
    except OSError as err:
        raise VtnTlsError(f"Cannot read the certificate {cert_path}: {err.strerror}.") from err
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        try:
            cert = x509.load_der_x509_certificate(data)
        except ValueError as err:
            raise VtnTlsError(f"{cert_path} is not a PEM or DER certificate.") from err
    der = cert.public_bytes(serialization.Encoding.DER)
    return str(utils.certificate_fingerprint_from_der(der))


def _check_signing_key(settings: VenSettings) -> None:
    """Fail early, with a clear message, on a key openleadr could not sign with."""
    if not settings.cert_file and not settings.key_file:
        return
    if not (settings.cert_file and settings.key_file):
        raise VtnTlsError("A client certificate needs both the certificate and the key file.")
    ven_fingerprint(settings.cert_file)
    try:
        data = Path(settings.key_file).read_bytes()
    except OSError as err:
        raise VtnTlsError(f"Cannot read the key {settings.key_file}: {err.strerror}.") from err
    password = settings.key_passphrase.encode() if settings.key_passphrase else None
    try:
        try:
            serialization.load_pem_private_key(data, password)
        except ValueError:
            serialization.load_der_private_key(data, password)
    except (ValueError, TypeError) as err:
        raise VtnTlsError(
            f"Cannot load the private key {settings.key_file}: {err} (wrong passphrase?)"
        ) from err


def ssl_context(
    vtn_url: str,
    cert_file: str | None,
    key_file: str | None,
    passphrase: str | None,
    ca_file: str | None,
) -> ssl.SSLContext | None:
    """Build the client TLS context (blocking: reads files). None for a plain-HTTP URL.

    Unlike openleadr, a CA file is honoured without a client certificate, and a client
    certificate without a CA file uses the system CAs.
    """
    if not vtn_url.lower().startswith("https:"):
        return None
    try:
        context = ssl.create_default_context(cafile=ca_file or None)
        if cert_file:
            context.load_cert_chain(cert_file, key_file or None, passphrase or None)
    except FileNotFoundError as err:
        raise VtnTlsError(f"Cannot read {err.filename}: file not found.") from err
    except (ssl.SSLError, OSError) as err:
        raise VtnTlsError(
            f"Cannot load the CA file or client certificate/key: {err}. Check the files and "
            "the key passphrase."
        ) from err
    return context


_warmed_up = False


def _warm_up() -> None:
    """Do the first-use file reads of APScheduler, the message templates and signxml."""
    global _warmed_up  # noqa: PLW0603 - a process-wide, idempotent cache fill
    if _warmed_up:
        return
    for module in _SCHEDULER_MODULES:
        importlib.import_module(module)
    templates = openleadr.messaging.TEMPLATES
    for name in templates.list_templates():
        templates.get_template(name)
    # signxml loads its XSDs on the first signature check (signxml/processor.py:24).
    openleadr.messaging.VERIFIER.schemas()
    _warmed_up = True


def _build(settings: VenSettings) -> tuple[VenClient, ssl.SSLContext | None]:
    """Everything blocking about a new client: files, TLS context, tzlocal, templates."""
    _warm_up()
    _check_signing_key(settings)
    context = ssl_context(
        settings.vtn_url,
        settings.cert_file,
        settings.key_file,
        settings.key_passphrase,
        settings.ca_file,
    )
    client = VenClient(
        ven_name=settings.ven_name,
        vtn_url=settings.vtn_url,
        ven_id=settings.ven_id or None,
        cert=settings.cert_file or None,
        key=settings.key_file or None,
        passphrase=settings.key_passphrase or None,
        ca_file=settings.ca_file or None,
        vtn_fingerprint=normalise_fingerprint(settings.vtn_fingerprint),
        show_fingerprint=False,
    )
    return client, context


async def create_client(settings: VenSettings, run_blocking: RunBlocking) -> VenClient:
    """Build a :class:`VenClient` without blocking the loop; its HTTP session is pre-set.

    Raises :class:`VtnTlsError` for unreadable certificate, key or CA files.
    """
    if not settings.vtn_url.lower().startswith(("http://", "https://")):
        raise VtnCannotConnect(
            f"The VTN URL must start with http:// or https://: {settings.vtn_url}"
        )
    # openleadr's import forces its logger to INFO (client.py:38: three lines per report
    # sample); the level goes back to the logging configuration here, when a client is built,
    # not at import, so that importing the core changes no library state. A level set with
    # Home Assistant's ``logger:`` stays: HA ignores setLevel on the loggers it configured.
    logging.getLogger("openleadr").setLevel(logging.NOTSET)
    built: tuple[VenClient, ssl.SSLContext | None] = await run_blocking(lambda: _build(settings))
    client, context = built
    client.run_blocking = run_blocking
    # openleadr keeps a pre-set session (client.py:1316) instead of building its own context.
    client.client_session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context if context is not None else True),
        headers={"content-type": "application/xml"},
        timeout=REQUEST_TIMEOUT,
    )
    return client


async def validate(
    settings: VenSettings,
    run_blocking: RunBlocking,
    *,
    limit_seconds: float = VALIDATE_TIMEOUT_SECONDS,
) -> RegistrationInfo:
    """Register once with the VTN, then stop; raise a :class:`VtnError` subclass on failure.

    No events are requested, so the VTN sees no opt responses from the validation.
    """
    client = await create_client(settings, run_blocking)
    try:
        async with asyncio.timeout(limit_seconds):
            return await client.register()
    except TimeoutError as err:
        raise VtnCannotConnect(
            f"The VTN did not complete the registration within {limit_seconds:g} s."
        ) from err
    finally:
        await client.stop()
