"""The report bodies a 3.x VEN POSTs: meter readings and its opt on an event.

3.x has no opt object; a VEN states its opt as an OPERATING_STATE report on the event
(``RUNNING_NORMAL`` opted in, ``RUNNING_OPTED_OUT`` opted out). Meter readings answer an
event's DEMAND or USAGE report descriptor with the live power, in the units it asks for. The
building's status (:class:`~..engine.status.VenStatus`) goes as a ``status`` report of
OPERATING_STATE and SIMPLE_LEVEL whenever it changes during an event.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..engine.status import VenStatus
from ..openadr.events import OptType

METER_TYPES = frozenset({"DEMAND", "USAGE"})
OPT_REPORT_NAME = "opt"
METER_REPORT_NAME = "meter"
STATUS_REPORT_NAME = "status"
AGGREGATED = "AGGREGATED_REPORT"
OPT_STATES: dict[str, str] = {"optIn": "RUNNING_NORMAL", "optOut": "RUNNING_OPTED_OUT"}
# Descriptors read per event: a VTN has no reason to ask for more.
MAX_DESCRIPTORS = 8


def rfc3339(when: datetime) -> str:
    """``when`` (aware) as RFC 3339 UTC with a trailing ``Z``."""
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def _report(
    *,
    program_id: str,
    event_id: str,
    client_name: str,
    report_name: str,
    descriptor: Mapping[str, Any],
    resource: str,
    start: datetime,
    value: float | str,
) -> dict[str, Any]:
    return {
        "objectType": "REPORT",
        "programID": program_id,
        "eventID": event_id,
        "clientName": client_name,
        "reportName": report_name,
        "payloadDescriptors": [{"objectType": "REPORT_PAYLOAD_DESCRIPTOR", **descriptor}],
        "resources": [
            {
                "resourceName": resource,
                "intervalPeriod": {"start": rfc3339(start), "duration": "PT0S"},
                "intervals": [
                    {"id": 0, "payloads": [{"type": descriptor["payloadType"], "values": [value]}]}
                ],
            }
        ],
    }


def opt_report(
    *, program_id: str, event_id: str, client_name: str, opt: OptType, now: datetime
) -> dict[str, Any]:
    """The OPERATING_STATE report that tells the VTN this VEN's opt on ``event_id``."""
    return _report(
        program_id=program_id,
        event_id=event_id,
        client_name=client_name,
        report_name=OPT_REPORT_NAME,
        descriptor={"payloadType": "OPERATING_STATE", "readingType": "DIRECT_READ"},
        resource=AGGREGATED,
        start=now,
        value=OPT_STATES[opt],
    )


def status_report(
    *, program_id: str, event_id: str, client_name: str, status: VenStatus, now: datetime
) -> dict[str, Any]:
    """The building's status during ``event_id``: OPERATING_STATE and the SIMPLE_LEVEL it follows.

    The 3.x counterpart of 2.0b's TELEMETRY_STATUS (online, manual override, load control
    state): offline is ``SGD_ERROR_CONDITION``, a manual override ``RUNNING_OPTED_OUT``.
    """
    kinds = ("OPERATING_STATE", "SIMPLE_LEVEL")
    values: tuple[str | int, ...] = (status.operating_state, status.level)
    payloads = [
        {"type": kind, "values": [value]} for kind, value in zip(kinds, values, strict=True)
    ]
    return {
        "objectType": "REPORT",
        "programID": program_id,
        "eventID": event_id,
        "clientName": client_name,
        "reportName": STATUS_REPORT_NAME,
        "payloadDescriptors": [
            {"objectType": "REPORT_PAYLOAD_DESCRIPTOR", "payloadType": p["type"]} for p in payloads
        ],
        "resources": [
            {
                "resourceName": AGGREGATED,
                "intervalPeriod": {"start": rfc3339(now), "duration": "PT0S"},
                "intervals": [{"id": 0, "payloads": payloads}],
            }
        ],
    }


def meter_requests(event: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(payload type, units) of each DEMAND/USAGE descriptor of a 3.x event, deduplicated.

    Units are ``KW`` or ``W`` (the default, also for units this VEN does not know).
    """
    descriptors = event.get("reportDescriptors")
    if not isinstance(descriptors, list):
        return []
    found: list[tuple[str, str]] = []
    for descriptor in descriptors[:MAX_DESCRIPTORS]:
        if not isinstance(descriptor, Mapping):
            continue
        kind = descriptor.get("payloadType")
        if not isinstance(kind, str) or kind.upper() not in METER_TYPES:
            continue
        units = descriptor.get("units")
        unit = "KW" if isinstance(units, str) and units.upper() == "KW" else "W"
        if (kind.upper(), unit) not in found:
            found.append((kind.upper(), unit))
    return found


def meter_report(
    *,
    program_id: str,
    event_id: str,
    client_name: str,
    resource: str,
    kind: str,
    unit: str,
    watts: float,
    sampled: datetime,
) -> dict[str, Any]:
    """A DEMAND/USAGE report of one live reading (``watts`` converted to ``unit``)."""
    return _report(
        program_id=program_id,
        event_id=event_id,
        client_name=client_name,
        report_name=METER_REPORT_NAME,
        descriptor={"payloadType": kind, "readingType": "DIRECT_READ", "units": unit},
        resource=resource,
        start=sampled,
        value=watts / 1000.0 if unit == "KW" else watts,
    )
