"""Logbook entries for sheds, releases, failed points, opt-outs and cancelled events.

A shed is two entries, its start and its end, each with counts; a point has its own entry only
when it needs attention (failed, owned by a higher priority, released after a failure) or an
operator acted on it. Point entries name the controller as its device is named.

Who did it: an action, button or switch passes its context with the event, so the logbook names
the user or automation itself. When the VTN or the event schedule caused the change (the event's
``source``), the message says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_ENTITY_ID,
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er

from .bus_events import (
    ATTR_SOURCE,
    EVENT_CANCELLED,
    EVENT_OPTED_IN,
    EVENT_OPTED_OUT,
    EVENT_POINT_FAILED,
    EVENT_POINT_OWNED,
    EVENT_POINT_RELEASED,
    EVENT_RELEASE_COMPLETED,
    EVENT_SHED_ENDED,
    EVENT_SHED_STARTED,
    SOURCE_SCHEDULE,
    SOURCE_VTN,
)
from .const import DOMAIN

DEFAULT_NAME: Final = "Loadshed VEN"
_BY: Final = {SOURCE_VTN: " (by the VTN)", SOURCE_SCHEDULE: " (as scheduled)"}
# Why a point did not verify, by FailureKind value.
_WHY: Final = {
    "offline": "the controller did not answer",
    "access_denied": "the controller refused the write",
    "unknown_object": "the controller has no such object",
    "not_verified": "the slot did not read back our value",
    "error": "the controller answered with an error",
    "out_of_range": "the value is beyond the point's limits",
}


class LoggedEvent(Protocol):
    """What the logbook hands to a describe callback (an event or its stored form)."""

    @property
    def data(self) -> Mapping[str, Any]:
        """The event's data."""


type Describe = Callable[[LoggedEvent], dict[str, str]]


@callback
def async_describe_events(
    hass: HomeAssistant, async_describe_event: Callable[[str, str, Describe], None]
) -> None:
    """Describe the VEN's bus events for the logbook."""

    def entry_name(data: Mapping[str, Any]) -> str:
        entry = hass.config_entries.async_get_entry(str(data.get("config_entry_id")))
        return entry.title if entry is not None else DEFAULT_NAME

    def entry(data: Mapping[str, Any], message: str) -> dict[str, str]:
        return {LOGBOOK_ENTRY_NAME: entry_name(data), LOGBOOK_ENTRY_MESSAGE: message}

    @callback
    def shed_started(event: LoggedEvent) -> dict[str, str]:
        data = event.data
        message = f"started shedding at level {data.get('level')}{_for_event(data)}{_by(data)}"
        return entry(data, message + _counts(data, "verified"))

    @callback
    def shed_ended(event: LoggedEvent) -> dict[str, str]:
        data = event.data
        # The event that was shedding; before it was recorded, only the new one is known.
        ended = data.get("previous_event_id") or data.get("event_id")
        message = f"stopped shedding{_for_event({'event_id': ended})}{_by(data)}"
        return entry(data, message + _counts(data, "released"))

    @callback
    def release_completed(event: LoggedEvent) -> dict[str, str]:
        data = event.data
        message = f"finished releasing in waves{_for_event(data)}{_by(data)}"
        return entry(data, message + _counts(data, "released"))

    @callback
    def point_released(event: LoggedEvent) -> dict[str, str]:
        data = event.data
        message = f"released {_point(data)}{_for_event(data)}{_by(data)}"
        return point_entry(data, message)

    @callback
    def point_failed(event: LoggedEvent) -> dict[str, str]:
        data = event.data
        reason = str(data.get("reason"))
        why = f"{_WHY[reason]} ({reason})" if reason in _WHY else reason
        message = f"could not verify {_point(data)}: {why}{_for_event(data)}{_by(data)}"
        return point_entry(data, message)

    @callback
    def point_owned(event: LoggedEvent) -> dict[str, str]:
        data = event.data
        owner = data.get("owner_priority")
        message = f"{_point(data)} is overridden at priority {owner}{_for_event(data)}"
        return point_entry(data, message + _by(data))

    def point_entry(data: Mapping[str, Any], message: str) -> dict[str, str]:
        described = entry(data, message)
        unique_id = f"{data.get('config_entry_id')}_{data.get('point')}"
        entity_id = er.async_get(hass).async_get_entity_id(Platform.SWITCH, DOMAIN, unique_id)
        if entity_id is not None:
            described[LOGBOOK_ENTRY_ENTITY_ID] = entity_id
        return described

    @callback
    def opted_out(event: LoggedEvent) -> dict[str, str]:
        return entry(event.data, f"opted out of event {event.data.get('event_id')}")

    @callback
    def opted_in(event: LoggedEvent) -> dict[str, str]:
        return entry(event.data, f"opted back in to event {event.data.get('event_id')}")

    @callback
    def event_cancelled(event: LoggedEvent) -> dict[str, str]:
        data = event.data
        if data.get("implied"):
            message = f"event {data.get('event_id')} is no longer offered by the VTN (cancelled)"
        else:
            message = f"event {data.get('event_id')} was cancelled by the VTN"
        return entry(data, message)

    for event_type, describe in (
        (EVENT_SHED_STARTED, shed_started),
        (EVENT_SHED_ENDED, shed_ended),
        (EVENT_RELEASE_COMPLETED, release_completed),
        (EVENT_POINT_RELEASED, point_released),
        (EVENT_POINT_FAILED, point_failed),
        (EVENT_POINT_OWNED, point_owned),
        (EVENT_OPTED_OUT, opted_out),
        (EVENT_OPTED_IN, opted_in),
        (EVENT_CANCELLED, event_cancelled),
    ):
        async_describe_event(DOMAIN, event_type, describe)


def _point(data: Mapping[str, Any]) -> str:
    """The point's name and, when known, its controller's."""
    controller = data.get("controller")
    return f"{data.get('name')} on {controller}" if controller else str(data.get("name"))


def _counts(data: Mapping[str, Any], done: str) -> str:
    """``: 57 of 58 points verified, 1 failed`` (nothing for an event recorded without counts).

    ``done`` is the count that says the shed did its job: ``verified`` writes at its start,
    ``released`` points at its end.
    """
    if "failed" not in data:
        return ""
    count = {name: int(data.get(name) or 0) for name in ("written", "owned", "released", "failed")}
    if done == "verified":
        total = count["written"] + count["failed"]
        parts = [f"{int(data.get(done) or 0)} of {_points(total)} verified"]
    else:
        parts = [f"{_points(count['released'])} released"]
    if count["owned"]:
        parts.append(f"{count['owned']} overridden at a higher priority")
    if count["failed"]:
        parts.append(f"{count['failed']} failed")
    return ": " + ", ".join(parts)


def _points(count: int) -> str:
    return f"{count} point" if count == 1 else f"{count} points"


def _for_event(data: Mapping[str, Any]) -> str:
    event_id = data.get("event_id")
    return f" for event {event_id}" if event_id else ""


def _by(data: Mapping[str, Any]) -> str:
    """Who caused it, when not an operator (the logbook names those from the context)."""
    return _BY.get(str(data.get(ATTR_SOURCE)), "")
