"""What the simulated VTN (``sim.vtn.SimVtn``) records: VENs, reports, statuses and opts.

Each record is a plain dataclass; :func:`to_json` turns one into a JSON-ready dict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any


def iso(value: datetime) -> str:
    """Return ``value`` as ISO 8601 UTC with a trailing ``Z``."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def to_json(record: ReportRecord | StatusRecord | OptRecord | VenRecord) -> dict[str, Any]:
    """Return a record as a JSON-ready dict (datetimes as ISO 8601 UTC with ``Z``)."""
    return {k: iso(v) if isinstance(v, datetime) else v for k, v in asdict(record).items()}


@dataclass(frozen=True, slots=True)
class ReportRecord:
    """One telemetry value received from a VEN."""

    ven_id: str
    resource_id: str | None
    measurement: str | None
    unit: str | None
    dtstart: datetime
    value: float


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """One status received from a VEN.

    A 2.0b TELEMETRY_STATUS value (``oadrPayloadResourceStatus``) or a 3.x ``status`` report
    (OPERATING_STATE, SIMPLE_LEVEL). ``level`` is the load control state's level offset (3.x:
    SIMPLE_LEVEL), None when the VEN sent none.
    """

    ven_id: str
    resource_id: str | None
    dtstart: datetime
    online: bool
    manual_override: bool
    level: int | None


@dataclass(frozen=True, slots=True)
class OptRecord:
    """One opt response: from ``oadrCreatedEvent`` or from an EiOpt ``oadrCreateOpt``."""

    ven_id: str
    event_id: str | None
    opt_type: str
    received_at: datetime
    modification_number: int | None = None
    source: str = "oadrCreatedEvent"


@dataclass(slots=True)
class VenRecord:
    """A registered VEN."""

    ven_id: str
    ven_name: str
    registration_id: str
    fingerprint: str | None
    registered_at: datetime
    registrations: int = 1
