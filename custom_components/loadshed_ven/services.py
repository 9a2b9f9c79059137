"""Registers the actions: shed now, release everything, opt out, the dashboard, export points.

The actions themselves are the entry's :class:`OperatorActions` (the buttons and switches run
the same ones); this module checks what a call gives and finds the entry it targets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Final

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import selector
from homeassistant.util.json import JsonValueType

from . import settings
from .bacnet import BacnetStack
from .bacnet.discovery_model import text_of
from .bacnet.discovery_reads import DeviceReader, ReadError
from .const import CONF_POINTS, DOMAIN, SUBENTRY_CONTROLLER
from .dashboard import build_dashboard
from .data import LoadshedConfigEntry
from .engine.point_files import export_points_csv
from .engine.points import OverridePoint
from .engine.shed import ApplyReport
from .errors import raise_for_failures
from .operator_actions import OperatorActions

ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_LEVEL: Final = "level"
ATTR_DURATION: Final = "duration"
ATTR_EVENT_ID: Final = "event_id"

SERVICE_SHED: Final = "shed"
SERVICE_RELEASE_ALL: Final = "release_all"
SERVICE_OPT_OUT: Final = "opt_out"
SERVICE_DASHBOARD: Final = "dashboard"
SERVICE_EXPORT_POINTS: Final = "export_points"

# The units column of an export is read from the controllers: within this long, this many at
# once (a device that does not answer leaves its points' units empty, not the export waiting).
UNITS_DEADLINE: Final = 10.0
UNITS_DEVICES: Final = 8

# A manual shed is an operator's stop-gap, not a schedule: a week covers a long weekend or a
# holiday closure, and anything longer belongs in the VTN's program. It also keeps the end
# time far inside what a datetime can hold (9,000 years would overflow).
MAX_DURATION: Final = timedelta(days=7)
MIN_DURATION: Final = timedelta(seconds=1)

_ENTRY_FIELD: Final[dict[vol.Marker, Any]] = {
    vol.Required(ATTR_CONFIG_ENTRY_ID): selector.ConfigEntrySelector({"integration": DOMAIN})
}
SHED_SCHEMA: Final = vol.Schema(
    {
        **_ENTRY_FIELD,
        # Checked by the handler, so that a refusal is a translated ServiceValidationError
        # rather than a bare voluptuous message (or an OverflowError from timedelta).
        vol.Optional(ATTR_LEVEL): cv.match_all,
        vol.Optional(ATTR_DURATION): cv.match_all,
    }
)
RELEASE_ALL_SCHEMA: Final = vol.Schema(_ENTRY_FIELD)
OPT_OUT_SCHEMA: Final = vol.Schema({**_ENTRY_FIELD, vol.Optional(ATTR_EVENT_ID): cv.string})
DASHBOARD_SCHEMA: Final = vol.Schema(_ENTRY_FIELD)
EXPORT_POINTS_SCHEMA: Final = vol.Schema(_ENTRY_FIELD)


def get_entry(call: ServiceCall) -> LoadshedConfigEntry:
    """The entry a call targets, loaded or not; refuses unknown entries."""
    entry_id: str = call.data[ATTR_CONFIG_ENTRY_ID]
    entry: LoadshedConfigEntry | None = call.hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_config_entry",
            translation_placeholders={"config_entry": entry_id},
        )
    return entry


def get_actions(call: ServiceCall) -> OperatorActions:
    """The operator actions of the entry a call targets; refuses unknown or unloaded entries."""
    entry = get_entry(call)
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unloaded_config_entry",
            translation_placeholders={"config_entry": entry.title},
        )
    return entry.runtime_data.actions


def parse_level(raw: object) -> int:
    """A SIMPLE level 1-3 given as a whole number; refuses 1.5, ``true`` and the like.

    Numbers arrive as int, float (``2.0`` from a number selector) or text (templates).
    """
    level: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        level = raw
    elif isinstance(raw, float) and raw.is_integer():
        level = int(raw)
    elif isinstance(raw, str) and raw.strip().isdigit() and len(raw.strip()) <= 2:
        level = int(raw.strip())
    if level is None or not 1 <= level <= 3:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_level",
            translation_placeholders={"level": str(raw)[:40]},
        )
    return level


def parse_duration(raw: object) -> timedelta:
    """A duration of 1 second to :data:`MAX_DURATION` in any form HA accepts for a period."""
    duration: timedelta | None = None
    invalid = isinstance(raw, bool)  # time_period would read true as 1 second
    if not invalid:
        try:
            duration = cv.time_period(raw)
        except OverflowError:  # beyond what a timedelta holds: certainly too long
            duration = None
        except (vol.Invalid, ValueError, TypeError):
            invalid = True
    if invalid:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_duration",
            translation_placeholders={"duration": str(raw)[:40]},
        )
    if duration is None or not MIN_DURATION <= duration <= MAX_DURATION:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="duration_out_of_range",
            translation_placeholders={
                "duration": str(raw)[:40],
                "max_days": str(MAX_DURATION.days),
            },
        )
    return duration


def report_response(report: ApplyReport) -> ServiceResponse:
    """An apply report as an action response."""
    return {
        "written": list[JsonValueType](report.written),
        "released": list[JsonValueType](report.released),
        "failed": list[JsonValueType](report.failed),
    }


def configured_points(entry: LoadshedConfigEntry) -> list[OverridePoint]:
    """Every point of the entry's controllers, as stored (one refused today is left out)."""
    raw = [
        point
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_CONTROLLER
        for point in subentry.data.get(CONF_POINTS, [])
    ]
    return settings.points({**entry.data, CONF_POINTS: raw})


async def point_units(stack: BacnetStack, points: Sequence[OverridePoint]) -> dict[str, str]:
    """The units the analog points report (by point key), as far as read in time."""
    units: dict[str, str] = {}
    by_device: dict[str, list[OverridePoint]] = {}
    for point in points:
        if point.object_type.startswith("analog"):
            by_device.setdefault(point.address, []).append(point)
    slots = asyncio.Semaphore(UNITS_DEVICES)

    async def read(address: str, device_points: list[OverridePoint]) -> None:
        async with slots:
            reader = DeviceReader(stack, address, concurrency=1)  # addresses checked already
            for point in device_points:
                try:
                    value = await reader.read(f"{point.object_type},{point.instance}", "units")
                except ReadError as err:
                    if err.no_answer:
                        return
                    continue
                units[point.key] = text_of(value) or ""  # NULL: none given

    try:
        async with asyncio.timeout(UNITS_DEADLINE):
            await asyncio.gather(*(read(a, pts) for a, pts in by_device.items()))
    except TimeoutError:
        pass
    return units


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions."""

    async def shed(call: ServiceCall) -> ServiceResponse:
        actions = get_actions(call)
        raw_level, raw_duration = call.data.get(ATTR_LEVEL), call.data.get(ATTR_DURATION)
        level = None if raw_level is None else parse_level(raw_level)
        duration = None if raw_duration is None else parse_duration(raw_duration)
        report = await actions.shed(level, duration, call.context)
        if call.return_response:
            return report_response(report)
        raise_for_failures(report, "shed_failed")
        return None

    async def release_all(call: ServiceCall) -> ServiceResponse:
        report = await get_actions(call).release_all(call.context)
        if call.return_response:
            return report_response(report)
        raise_for_failures(report, "release_all_failed")
        return None

    async def opt_out(call: ServiceCall) -> None:
        await get_actions(call).opt_out(call.data.get(ATTR_EVENT_ID), call.context)

    hass.services.async_register(
        DOMAIN,
        SERVICE_SHED,
        shed,
        schema=SHED_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_RELEASE_ALL,
        release_all,
        schema=RELEASE_ALL_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )

    async def dashboard(call: ServiceCall) -> ServiceResponse:
        # Read from the registries only: works for an entry that is not loaded too.
        entry = get_entry(call)
        return build_dashboard(
            entry.entry_id, entry.title, er.async_get(call.hass), dr.async_get(call.hass)
        )

    hass.services.async_register(DOMAIN, SERVICE_OPT_OUT, opt_out, schema=OPT_OUT_SCHEMA)
    hass.services.async_register(
        DOMAIN,
        SERVICE_DASHBOARD,
        dashboard,
        schema=DASHBOARD_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )

    async def export_points(call: ServiceCall) -> ServiceResponse:
        # The stored points, loaded or not; units only from a running entry's controllers.
        entry = get_entry(call)
        points = await call.hass.async_add_executor_job(configured_points, entry)
        units: dict[str, str] = {}
        if entry.state is ConfigEntryState.LOADED:
            units = await point_units(entry.runtime_data.bacnet.stack, points)
        return {"csv": export_points_csv(points, units=units)}

    hass.services.async_register(
        DOMAIN,
        SERVICE_EXPORT_POINTS,
        export_points,
        schema=EXPORT_POINTS_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
