"""Helpers shared by the fault matrix (``test_fault_matrix_*.py``): repair issues, entities, and
waits for a verified shed or for the VEN to keep polling.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven.const import DOMAIN
from custom_components.loadshed_ven.data import LoadshedData
from custom_components.loadshed_ven.engine.overrides import FailureKind, PointStatus
from sim.building import SimBuilding

from .conftest import IP_DEVICES, RELEASED, SHED, SHED_ENABLE, setpoints, slot, wait_for


def event_end(building: SimBuilding, event_id: str) -> datetime:
    """When the VTN's event ends (its last interval's end)."""
    summary = next(e for e in building.vtn.events() if e["event_id"] == event_id)
    return datetime.fromisoformat(summary["end"].replace("Z", "+00:00"))


def repair_issue(hass: HomeAssistant, kind: str, entry: MockConfigEntry) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, f"{kind}_{entry.entry_id}")


def stuck_issue(hass: HomeAssistant, entry: MockConfigEntry) -> ir.IssueEntry | None:
    """The stuck-points issue of the entry (there is one per failure kind), if any."""
    issues = [repair_issue(hass, f"stuck_points_{kind}", entry) for kind in FailureKind]
    return next((issue for issue in issues if issue is not None), None)


def entity_of(hass: HomeAssistant, entry: MockConfigEntry, platform: str, key: str) -> str:
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{entry.entry_id}_{key}")
    assert found is not None, f"no {platform} entity for {key}"
    return found


def nothing_of_ours_left(building: SimBuilding) -> None:
    """Slot 10 of every setpoint and slot 12 of the binary point are NULL."""
    assert setpoints(building) == RELEASED
    assert slot(building, IP_DEVICES[0], SHED_ENABLE, 12) is None


async def shed_verified(building: SimBuilding, data: LoadshedData) -> None:
    """Wait until every setpoint holds level 1's value and every write has been read back."""
    await wait_for(lambda: setpoints(building) == SHED, what="shed")
    await wait_for(
        lambda: all(s.status is PointStatus.HELD for s in data.point_states()),
        what="every write verified",
    )


async def vtn_heard(data: LoadshedData, exchanges_after: float = 2.5) -> None:
    """Wait until the VEN has kept exchanging with the VTN (1 s polls) for a while."""
    since = datetime.now(UTC) + timedelta(seconds=exchanges_after)
    await wait_for(
        lambda: data.ven.last_contact is not None and data.ven.last_contact >= since,
        what="more polls of the VTN",
    )
