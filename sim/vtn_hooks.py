"""How the simulated VTN (``sim.vtn.SimVtn``) answers a VEN beyond openleadr's defaults.

Report registration and values are recorded (TELEMETRY_USAGE values, and TELEMETRY_STATUS
statuses, which openleadr's server cannot read by itself); oadrPoll, oadrRequestEvent,
oadrCreatedEvent and oadrUpdateReport are wrapped around openleadr's own handlers
(re-registration requests, kept-listed events, no second delivery of the same list, opt
responses recorded, statuses made readable); EiOpt is answered here because
openleadr's server leaves it out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from openleadr import utils

from sim.vtn_events import EventControl, OptRecord, ReportRecord
from sim.vtn_records import StatusRecord

Message = tuple[str, dict[str, Any]]
_Handler = Callable[[dict[str, Any]], Awaitable[Message]]


class ServiceHooks(EventControl):
    """The handlers ``SimVtn`` installs on openleadr's services, on top of its event API."""

    report_sampling: timedelta
    distribute_every_poll: bool
    reports: list[ReportRecord]
    statuses: list[StatusRecord]
    opts: list[OptRecord]
    _reregister: set[str]

    # ------------------------------------------------------------------- reports

    def _on_register_report(
        self,
        *,
        ven_id: str,
        resource_id: str | None,
        measurement: str | None,
        unit: str | None,
        scale: str | None,
        min_sampling_interval: timedelta | None,
        max_sampling_interval: timedelta | None,
    ) -> tuple[Callable[[list[tuple[datetime, Any]]], None], timedelta]:
        sampling = self.report_sampling
        # A granularity outside the VEN's offered range makes openleadr drop the report.
        if isinstance(min_sampling_interval, timedelta):
            sampling = max(sampling, min_sampling_interval)
        if isinstance(max_sampling_interval, timedelta) and max_sampling_interval > timedelta():
            sampling = min(sampling, max_sampling_interval)
        if measurement == "Status":  # what openleadr's server calls TELEMETRY_STATUS
            return partial(self._on_status_values, ven_id, resource_id), sampling
        return partial(self._on_report_values, ven_id, resource_id, measurement, unit), sampling

    def _on_report_values(
        self,
        ven_id: str,
        resource_id: str | None,
        measurement: str | None,
        unit: str | None,
        values: list[tuple[datetime, float]],
    ) -> None:
        for dtstart, value in values:
            self.reports.append(
                ReportRecord(ven_id, resource_id, measurement, unit, dtstart, float(value))
            )

    def _on_status_values(
        self, ven_id: str, resource_id: str | None, values: list[tuple[datetime, Any]]
    ) -> None:
        for dtstart, status in values:
            if not isinstance(status, dict):
                continue  # a float in a status report: nothing to record
            state = status.get("load_control_state")
            offset = state.get("level_offset") if isinstance(state, dict) else None
            level = offset.get("current") if isinstance(offset, dict) else None
            self.statuses.append(
                StatusRecord(
                    ven_id,
                    resource_id,
                    dtstart,
                    online=bool(status.get("online")),
                    manual_override=bool(status.get("manual_override")),
                    level=None if level is None else int(level),
                )
            )

    async def _on_update_report(self, original: _Handler, payload: dict[str, Any]) -> Message:
        # openleadr's handler hands report_payload["value"] to the report's callback
        # (report_service.py:238-246); a parsed oadrPayloadResourceStatus has no "value" and
        # would fail there, so the parsed status becomes the value.
        for report in payload.get("reports") or []:
            for interval in report.get("intervals") or []:
                body = interval.get("report_payload") if isinstance(interval, dict) else None
                if isinstance(body, dict) and "payload_resource_status" in body:
                    body["value"] = body.pop("payload_resource_status")
        return await original(payload)

    # ------------------------------------------------------------ service hooks

    async def _on_poll(self, original: _Handler, payload: dict[str, Any]) -> Message:
        ven_id = payload["ven_id"]
        if ven_id in self._reregister:
            self._reregister.discard(ven_id)
            return "oadrRequestReregistration", {"ven_id": ven_id}
        listing = self._relist(ven_id, datetime.now(UTC))
        queued = listing if listing is not None else self._server.events.get(ven_id)
        if self.distribute_every_poll and queued:
            self._server.events_updated[ven_id] = True
        changed = bool(self._server.events_updated.get(ven_id))
        if listing is not None and changed:
            return self._distribution(ven_id, listing)
        response = await original(payload)
        if changed and response[0] == "oadrResponse":
            # The last event was removed: an empty distribute lets the VEN notice.
            return "oadrDistributeEvent", {"events": []}
        return response

    async def _on_request_event(self, original: _Handler, payload: dict[str, Any]) -> Message:
        ven_id = payload["ven_id"]
        listing = self._relist(ven_id, datetime.now(UTC))
        if listing is not None:
            return self._distribution(ven_id, listing)
        response = await original(payload)
        # The VEN now holds the current list; without this the next poll sends it again.
        self._server.events_updated[ven_id] = False
        if response[0] == "oadrResponse":
            return "oadrDistributeEvent", {"events": []}
        return response

    def _distribution(self, ven_id: str, listing: list[Any]) -> Message:
        # openleadr's own distribution pops completed events (and a lone completed one even
        # from the message being sent); with keep_listed the VTN lists them itself.
        self._server.events_updated[ven_id] = False
        return "oadrDistributeEvent", {"events": utils.order_events(list(listing))}

    async def _on_created_event(self, original: _Handler, payload: dict[str, Any]) -> Message:
        ven_id = payload["ven_id"]
        now = datetime.now(UTC)
        queue = self._server.events.get(ven_id, [])
        current = []
        for reply in payload.get("event_responses") or []:
            # IDs are strings, even all-digit ones that openleadr's parser turned into ints.
            if reply.get("event_id") is not None:
                reply["event_id"] = str(reply["event_id"])
            event_id, number = reply.get("event_id"), reply.get("modification_number")
            self.opts.append(OptRecord(ven_id, event_id, reply.get("opt_type"), now, number))
            event = self._events.get(event_id)
            copy = event.copies.get(ven_id) if event else None
            if event is None or copy is None or number != event.modification_number:
                # A reply to an older modification (e.g. cancelled meanwhile) would make
                # openleadr answer 452; it has been recorded, so leave it out.
                continue
            event.opts[ven_id] = reply.get("opt_type")
            if any(item is copy for item in queue):
                current.append(reply)
        payload["event_responses"] = current
        return await original(payload)

    async def _on_create_opt(self, payload: dict[str, Any]) -> Message:
        ven_id, event_id = payload["ven_id"], payload.get("event_id")
        event_id = None if event_id is None else str(event_id)
        opt_type = str(payload.get("opt_type"))
        number = payload.get("modification_number")
        self.opts.append(
            OptRecord(ven_id, event_id, opt_type, datetime.now(UTC), number, "oadrCreateOpt")
        )
        if event_id in self._events:
            self._events[event_id].opts[ven_id] = opt_type
        return "oadrCreatedOpt", {"opt_id": payload.get("opt_id")}

    async def _on_cancel_opt(self, payload: dict[str, Any]) -> Message:
        return "oadrCanceledOpt", {"opt_id": payload.get("opt_id")}
