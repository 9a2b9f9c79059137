"""OAuth2 client credentials for a 3.x VTN: one cached bearer token, renewed ahead of expiry.

Field quirks accepted: ``token`` instead of ``access_token``, a missing or textual
``expires_in`` (3600 s assumed), the id and secret in the form body (sent) or as HTTP Basic
(not needed: every VTN we know reads the form). A refusal of the credentials (401, or 400
``invalid_client``) is :class:`VtnCredentialsRefused`, the one failure new credentials fix.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping

import aiohttp

from ..openadr.errors import VtnUnknownError, transport_error
from .errors import VtnCredentialsRefused
from .http import (
    REQUEST_TIMEOUT,
    SMALL_BODY_BYTES,
    decode_json,
    problem_detail,
    read_body,
    status_error,
    where,
)

DEFAULT_LIFETIME = 3600.0
# Renew this long before expiry (at most a fifth of a short lifetime).
REFRESH_AHEAD_SECONDS = 60.0
_MAX_TOKEN_CHARS = 8192
_CREDENTIAL_ERRORS = frozenset({"invalid_client", "unauthorized_client", "invalid_grant"})


class TokenSource:
    """Hands out a valid access token, asking the token endpoint only when needed."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
    ) -> None:
        self._session = session
        self.token_url = token_url
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        if scope:
            self._form["scope"] = scope
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()
        self.issued = 0  # tokens obtained, for diagnostics

    async def token(self) -> str:
        """A token that is not about to expire (fetched when there is none)."""
        async with self._lock:  # concurrent callers share one fetch
            loop = asyncio.get_running_loop()
            if self._token is None or loop.time() >= self._renew_at:
                self._token = None
                token, lifetime = await self._fetch()
                margin = min(REFRESH_AHEAD_SECONDS, lifetime / 5)
                self._token, self._renew_at = token, loop.time() + lifetime - margin
                self.issued += 1
            return self._token

    def invalidate(self, token: str) -> None:
        """The VTN refused ``token``: the next :meth:`token` call fetches a new one."""
        if self._token == token:
            self._token = None

    async def _fetch(self) -> tuple[str, float]:
        try:
            async with self._session.post(
                self.token_url,
                data=self._form,
                headers={"Accept": "application/json"},
                timeout=REQUEST_TIMEOUT,
                allow_redirects=False,
            ) as response:
                status = response.status
                body = await read_body(response, SMALL_BODY_BYTES)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise transport_error(err, self.token_url, had_contact=True) from err
        document: object = None
        try:
            document = decode_json(body) if body.strip() else None
        except VtnUnknownError:
            if status == 200:
                raise
        error = document.get("error") if isinstance(document, Mapping) else None
        if status == 401 or (status == 400 and error in _CREDENTIAL_ERRORS):
            raise VtnCredentialsRefused(
                f"The token endpoint at {where(self.token_url)} refused this VEN's client id "
                "and secret. Enter the credentials the VTN operator issued."
            )
        if status == 400 and error == "invalid_scope":
            raise VtnCredentialsRefused(
                f"The token endpoint at {where(self.token_url)} refused the requested scope. "
                "Clear the scope or enter the one the VTN operator gave."
            )
        if status != 200:
            raise status_error(
                status, "the token request", self.token_url, problem_detail(document)
            )
        return _read_token(document, self.token_url)


def _read_token(document: object, url: str) -> tuple[str, float]:
    if not isinstance(document, Mapping):
        raise VtnUnknownError(f"The token endpoint at {where(url)} did not answer a JSON object.")
    token = document.get("access_token", document.get("token"))
    if not isinstance(token, str) or not token.strip() or len(token) > _MAX_TOKEN_CHARS:
        raise VtnUnknownError(f"The token endpoint at {where(url)} sent no usable access token.")
    if any(not c.isprintable() or c.isspace() for c in token):
        raise VtnUnknownError(f"The token endpoint at {where(url)} sent a malformed token.")
    lifetime = document.get("expires_in")
    try:
        seconds = float(lifetime) if lifetime is not None else DEFAULT_LIFETIME
    except (TypeError, ValueError, OverflowError):
        seconds = DEFAULT_LIFETIME
    if isinstance(lifetime, bool) or not math.isfinite(seconds) or seconds <= 0:
        seconds = DEFAULT_LIFETIME
    # A lifetime of a few seconds still gets used; more than a day is renewed daily anyway.
    return token, min(max(seconds, 1.0), 86400.0)
