"""Errors only an OpenADR 3.x VTN causes; every one is a :class:`~..openadr.errors.VtnError`.

The config flow and the integration already tell the 2.0b kinds apart, so 3.x failures reuse
them (:class:`VtnCannotConnect`, :class:`VtnUnknownError`, :class:`VtnMessageRefused`) and add
only what OAuth2 brings.
"""

from __future__ import annotations

from ..openadr.errors import VtnError


class VtnCredentialsRefused(VtnError):  # noqa: N818 - reads like its siblings
    """The VTN refused this VEN's client id and secret: new credentials are needed.

    Raised for a refusal at the token endpoint (401, or 400 ``invalid_client``) and for a
    resource that keeps answering 401 to a freshly issued token.
    """


class VtnForbidden(VtnError):  # noqa: N818 - reads like its siblings
    """The VTN knows this client but does not let it do that (HTTP 403: not enrolled, scope)."""


class VtnProgramNotFound(VtnError):  # noqa: N818 - reads like its siblings
    """The VTN lists no program with the configured name or id."""
