"""Errors raised by the OpenADR VEN adapter, and the mapping from transport failures to them.

Every failure the VTN side can cause is one of four kinds, so the config flow can show a precise
message and the integration can log a readable reason:

* :class:`VtnCannotConnect` - nothing usable answered (refused, timed out, wrong URL path).
* :class:`VtnTlsError` - the TLS handshake, a certificate, a key or an authorisation failed;
  :class:`VtnClientCertRefused` when it was the VTN that refused this VEN's client certificate
  (the one failure a new certificate can fix, so the integration asks for one).
* :class:`VtnFingerprintMismatch` - the VTN's messages are not signed by the pinned certificate.
* :class:`VtnUnknownError` - the VTN answered, but not in a way the VEN can use
  (:class:`VtnMessageRefused`: a message refused unparsed, see ``guard.py``).
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from openleadr import errors as openleadr_errors
from openleadr.messaging import validate_xml_signature
from signxml.exceptions import InvalidSignature


class VtnError(Exception):
    """Base class: the VTN could not be used. ``str(err)`` is a readable explanation."""


class VtnCannotConnect(VtnError):  # noqa: N818 - name used by the config flow
    """The VTN could not be reached, did not answer in time or is not at that URL."""


class VtnTlsError(VtnError):
    """TLS handshake, certificate, private key or VTN-side authorisation failure."""


class VtnClientCertRefused(VtnTlsError):  # noqa: N818 - reads like its siblings
    """The VTN refused this VEN's client certificate (missing, untrusted, expired or revoked)."""


class VtnFingerprintMismatch(VtnError):  # noqa: N818 - name used by the config flow
    """The VTN's message signatures do not come from the certificate that was pinned."""


class VtnUnknownError(VtnError):
    """The VTN answered with something the VEN cannot use."""


class VtnMessageRefused(VtnUnknownError):  # noqa: N818 - reads like its siblings
    """A VTN message was refused before parsing (size, DTD, encoding, too many items).

    ``reason`` says why in a few words; ``str(err)`` is the whole sentence.
    """

    def __init__(self, reason: str, kind: str = "refused") -> None:
        super().__init__(f"The VTN's message was refused unparsed: {reason}.")
        self.reason = reason
        # What was wrong, in one word (size, encoding, declaration, events, report_requests).
        self.kind = kind


class VtnRegistrationRejected(VtnTlsError):  # noqa: N818 - reads like its siblings
    """The VTN answered the registration request but did not register this VEN.

    Grouped with the authorisation failures: a VTN usually refuses a VEN whose name or
    certificate fingerprint it has not been told about.
    """


# TLS alerts a server sends a client whose certificate it refuses, as OpenSSL names them.
CLIENT_CERT_ALERTS = frozenset(
    {
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "TLSV1_ALERT_UNKNOWN_CA",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
    }
)


def _endpoint(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


def _ssl_cause(err: BaseException) -> ssl.SSLError | None:
    """Return the ``ssl.SSLError`` behind an aiohttp error, if there is one."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return current
        os_error = getattr(current, "os_error", None)
        if isinstance(os_error, ssl.SSLError):
            return os_error
        current = current.__cause__ or current.__context__
    return None


def transport_error(  # noqa: PLR0911 - one return per failure kind
    err: BaseException, url: str, *, had_contact: bool
) -> VtnError:
    """Translate a failed HTTP exchange into a :class:`VtnError`.

    ``had_contact`` tells whether this client has exchanged messages with the VTN before. Over
    TLS 1.3 a server that refuses the client certificate just closes the connection after the
    handshake, so a disconnect on the very first HTTPS request most likely means exactly that,
    whereas later it is an ordinary connection drop.
    """
    where = _endpoint(url)
    https = url.lower().startswith("https:")
    if isinstance(err, aiohttp.ClientConnectorCertificateError):
        return VtnTlsError(
            f"The VTN at {where} presented a certificate that could not be verified "
            f"({err.certificate_error}). Check the CA file and that the URL's host name "
            "matches the certificate."
        )
    cause = _ssl_cause(err)
    if cause is not None:
        reason = getattr(cause, "reason", None) or str(cause)
        if reason in CLIENT_CERT_ALERTS:
            return VtnClientCertRefused(
                f"The VTN at {where} refused this VEN's client certificate ({reason}). "
                "Enter a certificate the VTN accepts."
            )
        return VtnTlsError(f"The TLS handshake with the VTN at {where} failed: {reason}.")
    if isinstance(err, aiohttp.ServerDisconnectedError) and not had_contact:
        if https:
            # What a TLS 1.3 server that refuses the certificate without an alert looks like.
            return VtnClientCertRefused(
                f"The VTN at {where} closed the connection during TLS set-up. It most likely "
                "does not accept this VEN's client certificate (missing, or not issued by a CA "
                "it trusts)."
            )
        return VtnCannotConnect(
            f"The server at {where} closed the connection without answering. If the VTN "
            "serves HTTPS, use an https:// URL."
        )
    if isinstance(err, TimeoutError):
        return VtnCannotConnect(f"The VTN at {where} did not answer in time.")
    if isinstance(err, aiohttp.ClientConnectorError):
        reason = err.os_error.strerror or str(err.os_error) or type(err.os_error).__name__
        return VtnCannotConnect(f"Cannot connect to the VTN at {where}: {reason}.")
    return VtnCannotConnect(f"The connection to the VTN at {where} failed: {err or type(err)}.")


def http_status_error(status: int, url: str, *, registration: bool = False) -> VtnError:
    """Translate a non-200 HTTP status from the VTN into a :class:`VtnError`.

    401 or 403 to a registration request means the VTN does not accept this VEN's client
    certificate; to any other request it may be about that request alone.
    """
    if status in (401, 403):
        if registration:
            return VtnClientCertRefused(
                f"The VTN refused the registration with HTTP {status} (not authorised). "
                "It does not accept this VEN's client certificate."
            )
        return VtnTlsError(f"The VTN refused the request with HTTP {status} (not authorised).")
    if status in (404, 405):
        return VtnCannotConnect(
            f"The VTN answered HTTP {status} for {url}. Check the URL path; it usually ends "
            "in /OpenADR2/Simple/2.0b."
        )
    return VtnUnknownError(f"The VTN answered HTTP {status} for {url}.")


def check_signature(tree: Any, fingerprint: str) -> None:
    """Verify a VTN message's XML signature against the pinned certificate fingerprint."""
    try:
        validate_xml_signature(tree, cert_fingerprint=fingerprint)
    except openleadr_errors.FingerprintMismatch as err:
        raise VtnFingerprintMismatch(
            f"The VTN's messages are signed by another certificate than the pinned one. {err}"
        ) from err
    except InvalidSignature as err:
        raise VtnTlsError(f"The VTN's message signature is invalid: {err}") from err
    except (AttributeError, TypeError) as err:
        # utils.extract_pem_cert finds no X509Certificate element in an unsigned message.
        raise VtnFingerprintMismatch(
            "The VTN does not sign its messages, so its certificate fingerprint cannot be "
            "checked. Clear the VTN fingerprint or enable message signing at the VTN."
        ) from err
    except ValueError as err:
        raise VtnTlsError(
            f"The VTN's message signature was rejected: {err} Check that the clocks of the "
            "VTN and this system are synchronised (5 s tolerance)."
        ) from err
