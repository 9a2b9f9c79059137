"""Checks behind each config flow step, with errors as translation keys on a form field.

Every check talks to the real peer (VTN registration, a BACnet bind and reads, a Modbus read);
each failure becomes a :class:`FlowError` naming the form field, the translation key and any
placeholders for the message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any
from urllib.parse import urlparse

from homeassistant.components import network
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

from . import settings, tls
from .bacnet import (
    BacnetOverrideWriter,
    BacnetStackError,
    InterfaceConflictError,
    LocalInterface,
    PortInUseError,
)
from .bacnet import check_port_free as _check_port_free
from .bacnet.interface import MAX_TTL, MIN_TTL
from .building_meter import KW_PER_UNIT
from .const import (
    CONF_ADDRESSES,
    CONF_BBMD_ADDRESS,
    CONF_BBMD_PORT,
    CONF_BBMD_TTL,
    CONF_BULK,
    CONF_CA,
    CONF_CERT,
    CONF_CHECK_REACHABLE,
    CONF_DEVICE_INSTANCE,
    CONF_INSTANCE,
    CONF_INTERFACE,
    CONF_KEY,
    CONF_MAX_KW,
    CONF_METER_INTERVAL,
    CONF_OBJECT_TYPE,
    CONF_POINT_MODE,
    CONF_PORT,
    CONF_PRIORITY,
    CONF_ROUTERS,
    CONF_VALUE,
    CONF_VEN_NAME,
    CONF_VTN_FINGERPRINT,
    CONF_VTN_URL,
    DEFAULT_BACNET_PORT,
    DEFAULT_BBMD_TTL,
)
from .data import stack_registry
from .engine.point_text import expand_seed, parse_bulk
from .engine.points import OverridePoint, PointError
from .modbus.meter import ImplausibleReadingError, MeterError, ModbusMeter, check_plausible
from .openadr.ven import (
    VtnCannotConnect,
    VtnError,
    VtnFingerprintMismatch,
    VtnTlsError,
    normalise_fingerprint,
    ven_fingerprint,
)
from .openadr.ven import validate as openadr_validate

BASE = "base"
_FINGERPRINT = re.compile(r"([0-9A-F]{2}:){9}[0-9A-F]{2}")
MAX_LISTED_ERRORS = 10


class FlowError(Exception):
    """A check failed: show ``key`` on ``field`` with ``placeholders``."""

    def __init__(self, field: str, key: str, placeholders: dict[str, str] | None = None) -> None:
        """Remember where and what to show."""
        super().__init__(key)
        self.field = field
        self.key = key
        self.placeholders = placeholders or {}


def unique_id(vtn: Mapping[str, Any]) -> str:
    """One entry per VEN: the VTN URL and the VEN name."""
    return f"{str(vtn[CONF_VTN_URL]).rstrip('/').lower()}|{str(vtn[CONF_VEN_NAME]).strip()}"


# ---- VTN --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class VtnInfo:
    """What a successful registration told us."""

    ven_id: str
    ven_fingerprint: str | None


async def validate_vtn(hass: HomeAssistant, vtn: Mapping[str, Any]) -> VtnInfo:
    """Register once with the VTN using exactly these settings."""
    url = urlparse(str(vtn[CONF_VTN_URL]))
    if url.scheme not in ("http", "https") or not url.hostname:
        raise FlowError(CONF_VTN_URL, "invalid_url")
    has_cert, has_key = bool(vtn.get(CONF_CERT)), bool(vtn.get(CONF_KEY))
    if has_cert != has_key:
        raise FlowError(CONF_KEY if has_cert else CONF_CERT, "cert_and_key")
    if has_cert and not vtn.get(CONF_CA):
        raise FlowError(CONF_CA, "ca_required")
    fingerprint = vtn.get(CONF_VTN_FINGERPRINT)
    if fingerprint and not _FINGERPRINT.fullmatch(normalise_fingerprint(fingerprint) or ""):
        raise FlowError(CONF_VTN_FINGERPRINT, "invalid_fingerprint")
    async with tls.temporary_files(hass, vtn) as files:
        try:
            info = await openadr_validate(
                settings.ven_settings(vtn, files), hass.async_add_executor_job
            )
            own = (
                await hass.async_add_executor_job(ven_fingerprint, files.cert_file)
                if files.cert_file
                else None
            )
        except VtnFingerprintMismatch as err:
            raise FlowError(CONF_VTN_FINGERPRINT, "fingerprint_mismatch", _err(err)) from None
        except VtnTlsError as err:
            raise FlowError(BASE, "tls_failed", _err(err)) from None
        except VtnCannotConnect as err:
            raise FlowError(BASE, "cannot_connect", _err(err)) from None
        except VtnError as err:
            raise FlowError(BASE, "unknown", _err(err)) from None
    return VtnInfo(ven_id=info.ven_id, ven_fingerprint=own)


def _err(err: Exception) -> dict[str, str]:
    return {"error": str(err)}


# ---- BACnet -----------------------------------------------------------------------------


async def default_interface(hass: HomeAssistant) -> str:
    """HA's primary IPv4 address with its prefix (``192.168.1.5/24``), or ``""``.

    Only when HA's ``network`` integration already runs (it does with ``default_config``);
    loading it just for a default would be out of proportion.
    """
    if "network" not in hass.config.components:
        return ""
    try:
        adapters = await network.async_get_adapters(hass)
    except HomeAssistantError:
        return ""
    for adapter in adapters:
        if not adapter["enabled"]:
            continue
        for ipv4 in adapter["ipv4"]:
            return f"{ipv4['address']}/{ipv4['network_prefix']}"
    return ""


def validate_bacnet(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """Normalise the BACnet step's fields."""
    try:
        interface = settings.parse_interface(str(user_input[CONF_INTERFACE]))
    except settings.SettingsError:
        raise FlowError(CONF_INTERFACE, "invalid_interface") from None
    try:
        routes = settings.parse_routes(user_input.get(CONF_ROUTERS))
    except settings.SettingsError as err:
        raise FlowError(CONF_ROUTERS, "invalid_routes", {"error": str(err)}) from None
    port = int(user_input[CONF_PORT])
    return {
        CONF_INTERFACE: interface,
        CONF_PORT: port,
        CONF_DEVICE_INSTANCE: int(user_input[CONF_DEVICE_INSTANCE]),
        CONF_ROUTERS: "\n".join(f"{net}={ip}" for net, ip in routes.items()),
        **_validate_bbmd(user_input, interface, port),
        CONF_POINT_MODE: user_input.get(CONF_POINT_MODE),  # absent when reconfiguring
        CONF_CHECK_REACHABLE: bool(user_input.get(CONF_CHECK_REACHABLE, False)),
    }


def _validate_bbmd(user_input: Mapping[str, Any], interface: str, port: int) -> dict[str, Any]:
    """The BBMD fields, normalised; all None without a BBMD address (port and TTL unused)."""
    address = str(user_input.get(CONF_BBMD_ADDRESS) or "").strip()
    if not address:
        return {CONF_BBMD_ADDRESS: None, CONF_BBMD_PORT: None, CONF_BBMD_TTL: None}
    try:
        ip = IPv4Address(address)
    except ValueError:
        raise FlowError(CONF_BBMD_ADDRESS, "bbmd_invalid_address", {"address": address}) from None
    own = IPv4Interface(interface)
    if ip.is_unspecified or ip.is_multicast or ip == IPv4Address("255.255.255.255"):
        raise FlowError(CONF_BBMD_ADDRESS, "bbmd_not_a_device", {"address": address})
    if own.network.prefixlen < 32 and ip == own.network.broadcast_address:
        raise FlowError(CONF_BBMD_ADDRESS, "bbmd_not_a_device", {"address": address})
    bbmd_port = _int_or(user_input.get(CONF_BBMD_PORT), DEFAULT_BACNET_PORT)
    if not 1 <= bbmd_port <= 65535:
        raise FlowError(CONF_BBMD_PORT, "bbmd_invalid_port")
    if (ip, bbmd_port) == (own.ip, port):
        raise FlowError(CONF_BBMD_ADDRESS, "bbmd_is_self", {"address": f"{ip}:{bbmd_port}"})
    ttl = _int_or(user_input.get(CONF_BBMD_TTL), DEFAULT_BBMD_TTL)
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise FlowError(
            CONF_BBMD_TTL, "bbmd_invalid_ttl", {"min": str(MIN_TTL), "max": str(MAX_TTL)}
        )
    return {CONF_BBMD_ADDRESS: str(ip), CONF_BBMD_PORT: bbmd_port, CONF_BBMD_TTL: ttl}


def _int_or(value: Any, default: int) -> int:
    return default if value is None else int(value)


async def check_port_free(
    hass: HomeAssistant,
    bacnet: Mapping[str, Any],
    *,
    replacing: Mapping[str, Any] | None = None,
) -> None:
    """The UDP port is free, or already held by this integration's own shared stack.

    ``replacing``: the data of the entry being reconfigured. When the stack running here is
    its own and has no other user, the reload restarts it with the new settings: no conflict.
    """
    interface = settings.bacnet_interface(bacnet)
    registry = stack_registry(hass)
    running = registry.running(interface)
    if running is not None and replacing is not None and registry.users(interface) <= 1:
        try:
            if running.same_identity(settings.bacnet_interface(replacing)):
                return
        except (KeyError, ValueError):
            pass  # stored data that no longer parses: check as usual
    if running is not None:
        # Our own stack already runs there: entries share it, but only with one identity.
        if running.bbmd != interface.bbmd:
            raise FlowError(
                CONF_BBMD_ADDRESS,
                "stack_bbmd_conflict",
                {"bbmd": _bbmd_text(running), "port": str(interface.port)},
            )
        if not running.same_identity(interface):
            raise FlowError(
                CONF_DEVICE_INSTANCE,
                "stack_identity_conflict",
                {"instance": str(running.device_instance), "port": str(interface.port)},
            )
        return
    try:
        await hass.async_add_executor_job(_check_port_free, interface.ip, interface.port)
    except PortInUseError:
        raise FlowError(
            CONF_PORT, "port_in_use", {"port": str(interface.port), "ip": interface.ip}
        ) from None
    except BacnetStackError as err:
        raise FlowError(CONF_INTERFACE, "interface_unusable", {"error": str(err)}) from None


def _bbmd_text(interface: LocalInterface) -> str:
    bbmd = interface.bbmd
    return "no BBMD" if bbmd is None else f"the BBMD at {bbmd.text} (TTL {bbmd.ttl} s)"


def _line_errors(errors: list[Any]) -> dict[str, str]:
    shown = [str(e) for e in errors[:MAX_LISTED_ERRORS]]
    if len(errors) > MAX_LISTED_ERRORS:
        shown.append(f"... and {len(errors) - MAX_LISTED_ERRORS} more")
    return {"errors": "\n".join(shown)}


def seed_points(
    user_input: Mapping[str, Any], local_network: IPv4Network | None = None
) -> list[OverridePoint]:
    """One definition over many addresses (the seed's way)."""
    try:
        points, errors = expand_seed(
            str(user_input[CONF_ADDRESSES]),
            str(user_input[CONF_OBJECT_TYPE]),
            int(user_input[CONF_INSTANCE]),
            int(user_input[CONF_PRIORITY]),
            str(user_input[CONF_VALUE]).strip(),
            local_network=local_network,
        )
    except PointError as err:
        target = {
            "object_type": CONF_OBJECT_TYPE,
            "instance": CONF_INSTANCE,
            "priority": CONF_PRIORITY,
        }.get(err.field or "", CONF_VALUE)
        raise FlowError(target, "invalid_point_definition", {"error": str(err)}) from None
    if errors:
        raise FlowError(CONF_ADDRESSES, "invalid_points", _line_errors(errors))
    if not points:
        raise FlowError(CONF_ADDRESSES, "no_points")
    return points


def bulk_points(
    user_input: Mapping[str, Any], local_network: IPv4Network | None = None
) -> list[OverridePoint]:
    """One point per line."""
    points, errors = parse_bulk(str(user_input[CONF_BULK]), local_network)
    if errors:
        raise FlowError(CONF_BULK, "invalid_points", _line_errors(errors))
    if not points:
        raise FlowError(CONF_BULK, "no_points")
    return points


async def unreachable_points(
    hass: HomeAssistant, data: Mapping[str, Any], points: list[OverridePoint]
) -> list[str]:
    """Read every point once; describe the ones that did not answer."""
    registry = stack_registry(hass)
    try:
        handle = await registry.acquire(settings.bacnet_interface(data))
    except (BacnetStackError, InterfaceConflictError) as err:
        return [f"BACnet stack: {err}"]
    try:
        writer = BacnetOverrideWriter(handle.stack)
        failed = await writer.check_points(points)
    finally:
        await handle.release()
    return [
        f"{p.key}{f' ({p.name})' if p.name else ''}: {o.detail or o.failure}" for p, o in failed
    ]


# ---- meter ------------------------------------------------------------------------------


async def read_meter(meter: Mapping[str, Any]) -> float:
    """Read the Modbus meter once; returns kW."""
    client = ModbusMeter(settings.meter_config(meter))
    try:
        return await client.read_kw()
    except ImplausibleReadingError as err:
        raise FlowError(CONF_MAX_KW, "meter_implausible", _implausible(err)) from None
    except MeterError as err:
        raise FlowError(BASE, "meter_failed", {"error": str(err)}) from None
    finally:
        client.close()


def check_meter_entity(hass: HomeAssistant, entity_id: str, max_kw: float) -> None:
    """The sensor exists and reports a plausible power value in W, kW or MW."""
    state = hass.states.get(entity_id)
    if state is None or state.state in (STATE_UNAVAILABLE, STATE_UNKNOWN):
        raise FlowError("meter_entity", "meter_entity_unavailable")
    unit = state.attributes.get("unit_of_measurement")
    if unit not in KW_PER_UNIT:
        raise FlowError("meter_entity", "meter_entity_unit")
    try:
        check_plausible(float(state.state) * KW_PER_UNIT[unit], max_kw)
    except ValueError:
        raise FlowError("meter_entity", "meter_entity_unavailable") from None
    except ImplausibleReadingError as err:
        raise FlowError(CONF_MAX_KW, "meter_implausible", _implausible(err)) from None


def _implausible(err: ImplausibleReadingError) -> dict[str, str]:
    return {"value": f"{err.value:g}", "limit": f"{err.limit:g}"}


# ---- the entry --------------------------------------------------------------------------

_TRANSIENT = {"ven_fingerprint", "meter_first_kw", CONF_CHECK_REACHABLE}


def entry_data(draft: Mapping[str, Any]) -> dict[str, Any]:
    """What is stored: everything the flow gathered except display-only values."""
    data = {k: v for k, v in draft.items() if k not in _TRANSIENT and v not in (None, "")}
    data.setdefault(CONF_METER_INTERVAL, 10)
    return data
