"""Diagnostics: the entry's settings (secrets redacted) and what the VEN is doing now.

Besides the settings and the state of every point: the override ledger, the last events seen,
the current (or last) shed's verification, the last values reported to the VTN and, with a BBMD,
its registration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import (
    CONF_CA,
    CONF_CERT,
    CONF_CLIENT_ID,
    CONF_CLIENT_SECRET,
    CONF_HOST,
    CONF_KEY,
    CONF_PASSPHRASE,
    CONF_TOKEN_URL,
    CONF_VEN_ID,
    CONF_VTN_FINGERPRINT,
    CONF_VTN_URL,
)
from .data import LoadshedConfigEntry
from .engine.event_history import EventView
from .engine.overrides import PointState
from .engine.schedule import EventPlan
from .engine.verification import ShedVerification

# Secrets, the VEN's identity at the VTN, and where the VTN and the meter are.
TO_REDACT: Final = {
    CONF_CERT,
    CONF_KEY,
    CONF_PASSPHRASE,
    CONF_CA,
    CONF_VEN_ID,
    CONF_VTN_FINGERPRINT,
    CONF_VTN_URL,
    CONF_TOKEN_URL,
    CONF_CLIENT_ID,
    CONF_CLIENT_SECRET,
    CONF_HOST,
}
RECENT_EVENTS: Final = 20


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: LoadshedConfigEntry
) -> dict[str, Any]:
    """Return the entry's redacted settings and what the VEN is doing now."""
    data = entry.runtime_data
    view = data.current_event()
    diagnostics: dict[str, Any] = {
        "entry": {
            "title": entry.title,
            "version": entry.version,
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": dict(entry.options),
            "subentries": [
                {
                    # The unique id (the controller's address), not the random subentry id.
                    "unique_id": subentry.unique_id,
                    "subentry_type": subentry.subentry_type,
                    "title": subentry.title,
                    "data": async_redact_data(dict(subentry.data), TO_REDACT),
                }
                for subentry in entry.subentries.values()
            ],
        },
        "runtime": {
            "level": data.level,
            "shedding": data.shedding,
            "connected": data.connected,
            "shed_level": data.controller.policy.shed_level,
            "normal_level": data.controller.policy.normal_level,
            "current_event": None if view is None else _view(view),
            "schedule": [_plan(plan) for plan in data.driver.schedule.plans],
            "recent_events": [_view(event) for event in data.recent_events(RECENT_EVENTS)],
        },
        "points": [_point(state) for state in data.point_states()],
        "ledger": {
            "records": [_point(state) for state in data.ledger.records()],
            "pending": [_point(state) for state in data.ledger.pending],
            "retry_delay_seconds": data.ledger.retry_delay,
        },
        "meter": {
            "last_update_success": data.meter.last_update_success,
            "latest_kw": data.meter.latest_kw,
        },
        "verification": _verification(data.verification.current()),
        "reports": [{"time": _iso(at), "watts": watts} for at, watts in data.ven.recent_reports],
    }
    if (bbmd := data.bbmd) is not None:
        # Only with a BBMD configured. Its address is no secret: it is on the building's LAN.
        diagnostics["bbmd"] = {
            "address": bbmd.address,
            "ttl": bbmd.ttl,
            "status": None if bbmd.status is None else str(bbmd.status),
            "reason": bbmd.reason,
        }
    return diagnostics


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _view(view: EventView) -> dict[str, Any]:
    return {
        "event_id": view.event_id,
        "status": str(view.status),
        "start": _iso(view.start),
        "end": _iso(view.end),
        "test_event": view.test_event,
        "manual": view.manual,
    }


def _verification(result: ShedVerification | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        "event_id": result.event_id,
        "started": _iso(result.started),
        "ended": _iso(result.ended),
        "baseline_kw": result.baseline_kw,
        "latest_kw": result.latest_kw,
        "kw_saved": result.kw_saved,
        "energy_kwh": result.energy_kwh,
        "measured_seconds": result.measured.total_seconds(),
        "release_ends": _iso(result.release_ends),
        "peak_after_release_kw": result.peak_after_release_kw,
    }


def _plan(plan: EventPlan) -> dict[str, Any]:
    return {
        "event_id": plan.event_id,
        "modification_number": plan.modification_number,
        "status": plan.status,
        "test_event": plan.test_event,
        "priority": plan.priority,
        "start": _iso(plan.start),
        "end": _iso(plan.end),
        "offset_seconds": plan.offset.total_seconds(),
        "segments": [
            {"start": _iso(seg.start), "end": _iso(seg.end), "level": seg.level}
            for seg in plan.segments
        ],
    }


def _point(state: PointState) -> dict[str, Any]:
    point = {
        "key": state.point.key,
        "name": state.point.name,
        "priority": state.point.priority,
        "status": str(state.status),
        "written_value": state.written_value,
        "event_id": state.event_id,
        "written_at": _iso(state.written_at),
        "verified": state.verified,
        "owner_priority": state.owner_priority,
        "failure": None if state.failure is None else str(state.failure),
        "detail": state.detail,
        "operator_released": state.operator_released,
    }
    if state.base_value is not None:
        # An offset point's value in force when its shed started (what the offset adds to).
        point["base_value"] = state.base_value
    return point
