"""The reports a 3.x VEN sends while an event is active: its status and the meter.

The building's status (:class:`~..engine.status.VenStatus`) goes as a ``status`` report on each
active event when the event starts and whenever the status changes; the live meter power goes
as every DEMAND or USAGE report the event's descriptors ask for, at each poll. Both callbacks
may fail or know nothing: nothing is then reported, never a made-up value.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..engine.event_plan import CANCELLED
from ..engine.status import VenStatus
from ..openadr.errors import VtnError
from ..openadr.events import OptType, is_completed
from ..openadr.readings import Reading, plain_status, watts
from .http import VtnHttp
from .reports import meter_report, meter_requests, status_report

_LOGGER = logging.getLogger(__name__)

# How many report values sent to the VTN are kept for diagnostics.
RECENT_REPORTS = 50


@dataclass(slots=True)
class HeldEvent:
    """What the VEN holds for one listed event (``event`` None: it was refused)."""

    raw: object
    program_id: str | None
    mod: int | None
    event: dict[str, Any] | None
    opt: OptType
    answered: bool = False
    report_failed: bool = False
    status_sent: VenStatus | None = None  # the last status the VTN took for this event


class LiveReports:
    """Status and meter reports for the events a :class:`~.ven.Ven3Connection` holds."""

    def __init__(
        self,
        http: VtnHttp,
        client_name: str,
        resource_id: str,
        *,
        meter_power: Callable[[], float | None] | None,
        status: Callable[[], VenStatus | None] | None,
    ) -> None:
        self._http = http
        self._client_name = client_name
        self._resource_id = resource_id
        self._power = Reading(meter_power, watts, "meter")
        self._status = Reading(status, plain_status, "status")
        self.recent: deque[tuple[datetime, float]] = deque(maxlen=RECENT_REPORTS)

    async def send(self, held_events: Mapping[str, HeldEvent]) -> None:
        """For every active event: the status when it changed, and a reading if it asks."""
        power = self._power()
        status = self._status()
        now = datetime.now(UTC)
        sent = False
        for event_id, held in held_events.items():
            event = held.event
            if event is None or held.program_id is None or not _active(event, now):
                continue
            if status is not None and status != held.status_sent:
                body = status_report(
                    program_id=held.program_id,
                    event_id=event_id,
                    client_name=self._client_name,
                    status=status,
                    now=now,
                )
                try:
                    await self._http.post("/reports", body)
                except VtnError as err:
                    _LOGGER.debug("Status report for event %r failed: %s", event_id, err)
                else:
                    held.status_sent = status
            if power is None:
                continue
            raw = held.raw if isinstance(held.raw, Mapping) else {}
            for kind, unit in meter_requests(raw):
                body = meter_report(
                    program_id=held.program_id,
                    event_id=event_id,
                    client_name=self._client_name,
                    resource=self._resource_id,
                    kind=kind,
                    unit=unit,
                    watts=power,
                    sampled=now,
                )
                try:
                    await self._http.post("/reports", body)
                except VtnError as err:
                    _LOGGER.debug("Meter report for event %r failed: %s", event_id, err)
                else:
                    sent = True
        if sent and power is not None:
            self.recent.append((now, power))


def _active(event: dict[str, Any], now: datetime) -> bool:
    """Whether ``now`` falls inside the event's active period (not cancelled)."""
    if event["event_descriptor"]["event_status"] == CANCELLED:
        return False
    start = event["active_period"]["dtstart"]
    return isinstance(start, datetime) and start <= now and not is_completed(event, now)
