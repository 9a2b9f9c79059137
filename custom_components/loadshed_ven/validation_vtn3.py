"""The config flow's check of an OpenADR 3.x VTN: a real login and program listing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .const import CONF_CLIENT_SECRET, CONF_PROGRAM, CONF_TOKEN_URL, CONF_VTN_URL
from .openadr.errors import VtnCannotConnect, VtnError
from .openadr3.errors import VtnCredentialsRefused, VtnForbidden, VtnProgramNotFound
from .openadr3.ven import validate
from .validation import BASE, FlowError, VtnInfo
from .vtn_settings import ven3_settings


def _url_ok(value: object) -> bool:
    url = urlparse(str(value or ""))
    return url.scheme in ("http", "https") and bool(url.hostname)


async def validate_vtn3(hass: HomeAssistant, vtn: Mapping[str, Any]) -> VtnInfo:
    """Log in with the client credentials and find the program, exactly as the VEN will."""
    if not _url_ok(vtn.get(CONF_VTN_URL)):
        raise FlowError(CONF_VTN_URL, "invalid_url")
    if vtn.get(CONF_TOKEN_URL) and not _url_ok(vtn.get(CONF_TOKEN_URL)):
        raise FlowError(CONF_TOKEN_URL, "invalid_url")
    try:
        info = await validate(ven3_settings(vtn), async_get_clientsession(hass))
    except VtnCredentialsRefused as err:
        raise FlowError(CONF_CLIENT_SECRET, "invalid_auth", {"error": str(err)}) from None
    except VtnProgramNotFound as err:
        raise FlowError(CONF_PROGRAM, "program_not_found", {"error": str(err)}) from None
    except VtnForbidden as err:
        raise FlowError(BASE, "forbidden", {"error": str(err)}) from None
    except VtnCannotConnect as err:
        raise FlowError(BASE, "cannot_connect", {"error": str(err)}) from None
    except VtnError as err:
        raise FlowError(BASE, "unknown_3", {"error": str(err)}) from None
    return VtnInfo(ven_id=info.ven_id, ven_fingerprint=None)
