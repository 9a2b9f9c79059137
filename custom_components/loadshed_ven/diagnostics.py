"""Diagnostics: the entry's settings (secrets redacted) and what the VEN is doing now."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_CA, CONF_CERT, CONF_KEY, CONF_PASSPHRASE, CONF_VEN_ID, CONF_VTN_FINGERPRINT
from .coordinator import LoadshedConfigEntry
from .engine.overrides import PointState
from .engine.schedule import EventPlan

TO_REDACT: Final = {
    CONF_CERT,
    CONF_KEY,
    CONF_PASSPHRASE,
    CONF_CA,
    CONF_VEN_ID,
    CONF_VTN_FINGERPRINT,
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: LoadshedConfigEntry
) -> dict[str, Any]:
    """Return the entry's redacted settings and the runtime's state."""
    data = entry.runtime_data
    runtime = data.runtime
    view = runtime.current_event()
    return {
        "entry": {
            "title": entry.title,
            "data": async_redact_data(dict(entry.data), TO_REDACT),
        },
        "runtime": {
            "level": runtime.level,
            "shedding": runtime.shedding,
            "connected": runtime.connected,
            "shed_level": runtime.controller.policy.shed_level,
            "normal_level": runtime.controller.policy.normal_level,
            "current_event": None
            if view is None
            else {
                "event_id": view.event_id,
                "status": view.status,
                "start": _iso(view.start),
                "end": _iso(view.end),
                "test_event": view.test_event,
                "manual": view.manual,
            },
            "schedule": [_plan(plan) for plan in runtime.schedule.plans],
        },
        "points": [_point(state) for state in runtime.point_states()],
        "meter": {
            "last_update_success": data.meter.last_update_success,
            "latest_kw": data.meter.latest_kw,
        },
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


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
    return {
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
