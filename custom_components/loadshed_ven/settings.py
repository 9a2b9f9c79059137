"""A config entry's data as typed settings for the engine and the adapters.

``entry.data``, ``entry.options`` and the controller subentries are plain JSON (what the config
flow stored); this module is the one place that knows their keys. :meth:`EntrySettings.from_entry`
turns a whole entry into one frozen object, once per set-up; the config flow uses the per-step
parsers below on the data of one step. :func:`split_v1` is the migration from version 1 (one
mapping holding everything) to version 2 (data, options and one subentry per controller).
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Self

from .bacnet import BbmdRegistration, LocalInterface
from .const import (
    CONF_ACT_ON_TEST_EVENTS,
    CONF_ADDRESS,
    CONF_BASELINE_MINUTES,
    CONF_BBMD_ADDRESS,
    CONF_BBMD_PORT,
    CONF_BBMD_TTL,
    CONF_DATA_TYPE,
    CONF_DEVICE_INSTANCE,
    CONF_HOST,
    CONF_INTERFACE,
    CONF_MAX_KW,
    CONF_METER_ENTITY,
    CONF_METER_INTERVAL,
    CONF_METER_SOURCE,
    CONF_MODBUS_PORT,
    CONF_NAME,
    CONF_NORMAL_LEVEL,
    CONF_POINTS,
    CONF_PORT,
    CONF_REGISTER,
    CONF_REGISTER_TYPE,
    CONF_ROUTERS,
    CONF_SCALE,
    CONF_SHED_LEVEL,
    CONF_UNIT_ID,
    CONF_VTN_OUTAGE_MINUTES,
    CONF_WORD_ORDER,
    DEFAULT_BACNET_PORT,
    DEFAULT_BASELINE_MINUTES,
    DEFAULT_BBMD_TTL,
    DEFAULT_METER_INTERVAL,
    DEFAULT_VTN_OUTAGE_MINUTES,
    LOGGER,
    METER_SOURCE_ENTITY,
    POLICY_KEYS,
)
from .engine.points import (
    OverridePoint,
    PointError,
    check_configured,
    normalise_address,
    point_from_dict,
    point_to_dict,
)
from .engine.shed import ShedPolicy
from .modbus.meter import DEFAULT_MAX_KW, DataType, MeterConfig, RegisterType, WordOrder
from .openadr.factory import VenSettings
from .tls import TlsFiles
from .vtn_settings import VtnSettings


class SettingsError(ValueError):
    """A setting cannot be used; the message names it for a person."""


@dataclass(frozen=True, kw_only=True)
class MeterSettings:
    """Where the building's main meter is read: a Modbus register or another HA entity."""

    modbus: MeterConfig | None  # None: read from ``entity_id``
    entity_id: str | None
    interval: timedelta  # how often the Modbus meter is polled
    max_kw: float


@dataclass(frozen=True, kw_only=True)
class EntrySettings:
    """Everything one config entry configures, parsed and checked once at set-up."""

    interface: LocalInterface
    points: tuple[OverridePoint, ...]
    policy: ShedPolicy
    act_on_test_events: bool
    vtn: VtnSettings
    baseline_window: timedelta
    vtn_outage_alert: timedelta
    meter: MeterSettings
    # The controller subentry each point belongs to (point key -> subentry id); empty for data
    # parsed without subentries.
    subentry_of: Mapping[str, str]

    @classmethod
    def from_entry(
        cls,
        data: Mapping[str, Any],
        options: Mapping[str, Any],
        controllers: Mapping[str, Mapping[str, Any]],
    ) -> Self:
        """Parse a version 2 entry: its data, its options and its controller subentries.

        ``controllers`` maps each controller subentry's id to its data. Run it off the loop.
        """
        merged: dict[str, Any] = {**data, **{k: v for k, v in options.items() if k in POLICY_KEYS}}
        merged[CONF_POINTS] = [p for sub in controllers.values() for p in sub.get(CONF_POINTS, [])]
        owner = {
            _raw_key(raw): subentry_id
            for subentry_id, sub in controllers.items()
            for raw in sub.get(CONF_POINTS, [])
        }
        return cls.parse(merged, owner)

    @classmethod
    def parse(cls, data: Mapping[str, Any], subentry_of: Mapping[str, str] | None = None) -> Self:
        """Parse one mapping holding everything (a version 1 entry's data, or a merged one).

        Pure, but slow for thousands of points: run it off the loop.
        """
        entity_id = data.get(CONF_METER_ENTITY)
        from_entity = data.get(CONF_METER_SOURCE) == METER_SOURCE_ENTITY
        usable = tuple(points(data))
        owner = subentry_of or {}
        return cls(
            interface=bacnet_interface(data),
            points=usable,
            subentry_of={p.key: owner[p.key] for p in usable if p.key in owner},
            policy=policy(data),
            act_on_test_events=act_on_test_events(data),
            vtn=VtnSettings.parse(data),
            baseline_window=baseline_window(data),
            vtn_outage_alert=vtn_outage_alert(data),
            meter=MeterSettings(
                modbus=None if from_entity else meter_config(data),
                entity_id=str(entity_id) if from_entity and entity_id else None,
                interval=meter_interval(data),
                max_kw=meter_max_kw(data),
            ),
        )


def parse_routes(text: str | None) -> dict[int, str]:
    """``12345=192.168.1.50`` lines (or comma-separated) into {network: router IP}."""
    routes: dict[int, str] = {}
    for raw in (text or "").replace(",", "\n").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        network_text, sep, router = (part.strip() for part in line.partition("="))
        if not sep or not network_text.isdigit() or not 1 <= int(network_text) <= 65534:
            raise SettingsError(f"'{line}': write network=router IP, e.g. 12345=192.168.1.50")
        try:
            ipaddress.IPv4Address(router)
        except ValueError:
            raise SettingsError(f"'{line}': {router or '(empty)'} is not an IPv4 address") from None
        if int(network_text) in routes:
            raise SettingsError(f"network {network_text} is listed twice")
        routes[int(network_text)] = router
    return routes


def parse_interface(text: str) -> str:
    """``192.168.1.5/24`` (a bare IP means /32), normalised; refuses anything else."""
    try:
        iface = ipaddress.IPv4Interface(text.strip())
    except ValueError:
        raise SettingsError(f"'{text}' is not an IPv4 address with a prefix") from None
    return iface.with_prefixlen


def local_network(data: Mapping[str, Any]) -> ipaddress.IPv4Network | None:
    """The BACnet interface's subnet, or None when it is not (validly) set."""
    try:
        return ipaddress.IPv4Interface(str(data[CONF_INTERFACE]).strip()).network
    except (KeyError, ValueError):
        return None


def points(data: Mapping[str, Any]) -> list[OverridePoint]:
    """Every configured override point that can still be used.

    An entry stored by an older version may hold a point that is refused today (a value
    beyond a BACnet REAL, a broadcast address): it is skipped with an error in the log
    instead of failing the whole building's set-up. Overrides already written to it stay
    tracked by the ledger, which keeps its own copy of each point.
    """
    network = local_network(data)
    usable: list[OverridePoint] = []
    for index, raw in enumerate(data.get(CONF_POINTS, []), 1):
        try:
            usable.append(check_configured(point_from_dict(raw), network))
        except (PointError, TypeError, ValueError) as err:
            LOGGER.error(
                "Point %d of the configuration (%s) cannot be used and is skipped: %s; "
                "reconfigure the integration to correct it",
                index,
                _describe(raw),
                err,
            )
    return usable


def _raw_key(raw: object) -> str:
    """The key a stored point will have, without refusing it (that is :func:`points`' job)."""
    try:
        return point_from_dict(raw).key
    except (PointError, TypeError, ValueError):
        return _describe(raw)


def controller_address(raw_address: object) -> str:
    """A controller's address as every point key spells it (normalised when valid)."""
    try:
        return normalise_address(str(raw_address))
    except PointError:
        return str(raw_address)


def controllers_from_points(raw_points: Iterable[object]) -> list[dict[str, Any]]:
    """Stored points grouped by device address: one controller subentry's data per address.

    Each point dict is kept exactly as stored, so every point key (and the ledger records and
    unique ids made from it) stays the same.
    """
    grouped: dict[str, list[object]] = {}
    for raw in raw_points:
        address = raw.get(CONF_ADDRESS) if isinstance(raw, Mapping) else None
        grouped.setdefault(controller_address(address), []).append(raw)
    return [{CONF_ADDRESS: address, CONF_POINTS: pts} for address, pts in grouped.items()]


def controller_data(address: str, name: str, pts: Iterable[OverridePoint]) -> dict[str, Any]:
    """A controller subentry's data: its address, its name if given, and its points."""
    data: dict[str, Any] = {CONF_ADDRESS: address, CONF_POINTS: [point_to_dict(p) for p in pts]}
    if name:
        data[CONF_NAME] = name
    return data


def controller_title(controller: Mapping[str, Any]) -> str:
    """How a controller subentry is titled: its name, else its address."""
    return str(controller.get(CONF_NAME) or controller[CONF_ADDRESS])


def split_v1(
    data: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """A version 1 entry's data as version 2's (data, options, controller subentries' data)."""
    v2_data = {k: v for k, v in data.items() if k not in POLICY_KEYS and k != CONF_POINTS}
    options = {k: data[k] for k in POLICY_KEYS if k in data}
    return v2_data, options, controllers_from_points(data.get(CONF_POINTS, []))


def _describe(raw: object) -> str:
    if not isinstance(raw, Mapping):
        return "not a point definition"
    return f"{raw.get('address')}/{raw.get('object_type')},{raw.get('instance')}"


def policy(data: Mapping[str, Any]) -> ShedPolicy:
    """The shed policy."""
    return ShedPolicy(
        shed_level=int(data.get(CONF_SHED_LEVEL, 1)),
        normal_level=int(data.get(CONF_NORMAL_LEVEL, 0)),
    )


def baseline_window(data: Mapping[str, Any]) -> timedelta:
    """How far back before a shed the kW-saved baseline is averaged."""
    return timedelta(minutes=int(data.get(CONF_BASELINE_MINUTES, DEFAULT_BASELINE_MINUTES)))


def vtn_outage_alert(data: Mapping[str, Any]) -> timedelta:
    """How long the VTN may be unreachable before a repair issue is raised."""
    return timedelta(minutes=int(data.get(CONF_VTN_OUTAGE_MINUTES, DEFAULT_VTN_OUTAGE_MINUTES)))


def act_on_test_events(data: Mapping[str, Any]) -> bool:
    """Whether test events shed (default: logged only)."""
    return bool(data.get(CONF_ACT_ON_TEST_EVENTS, False))


def meter_config(data: Mapping[str, Any]) -> MeterConfig:
    """The Modbus meter's settings."""
    return MeterConfig(
        host=str(data[CONF_HOST]),
        port=int(data[CONF_MODBUS_PORT]),
        unit_id=int(data[CONF_UNIT_ID]),
        register=int(data[CONF_REGISTER]),
        register_type=RegisterType(data[CONF_REGISTER_TYPE]),
        data_type=DataType(data[CONF_DATA_TYPE]),
        word_order=WordOrder(data[CONF_WORD_ORDER]),
        scale=float(data[CONF_SCALE]),
        max_kw=meter_max_kw(data),
    )


def meter_max_kw(data: Mapping[str, Any]) -> float:
    """Readings beyond ±this many kW are refused as implausible."""
    try:
        limit = float(data.get(CONF_MAX_KW, DEFAULT_MAX_KW))
    except (TypeError, ValueError):
        return DEFAULT_MAX_KW
    return limit if math.isfinite(limit) and limit > 0 else DEFAULT_MAX_KW


def meter_interval(data: Mapping[str, Any]) -> timedelta:
    """How often the meter is read."""
    return timedelta(seconds=float(data.get(CONF_METER_INTERVAL, DEFAULT_METER_INTERVAL)))


def bacnet_interface(data: Mapping[str, Any]) -> LocalInterface:
    """Where the local BACnet stack listens, the routes it knows and the BBMD it registers with."""
    return LocalInterface(
        address=parse_interface(str(data[CONF_INTERFACE])),
        port=int(data[CONF_PORT]),
        device_instance=int(data[CONF_DEVICE_INSTANCE]),
        routes=parse_routes(data.get(CONF_ROUTERS)),
        bbmd=bbmd(data),
    )


def bbmd(data: Mapping[str, Any]) -> BbmdRegistration | None:
    """The BBMD to register with as a foreign device; None when no BBMD address is set."""
    address = str(data.get(CONF_BBMD_ADDRESS) or "").strip()
    if not address:
        return None
    return BbmdRegistration(
        address=address,
        port=int(data.get(CONF_BBMD_PORT) or DEFAULT_BACNET_PORT),
        ttl=int(data.get(CONF_BBMD_TTL) or DEFAULT_BBMD_TTL),
    )


def ven_settings(data: Mapping[str, Any], files: TlsFiles) -> VenSettings:
    """How the VEN reaches the VTN, with the TLS material at ``files`` (the config flow's check)."""
    return VtnSettings.parse(data).ven(files)
