"""Which points each controller subentry's OpenADR ``resource_id``/``group_id`` gives an event.

The schedule judges each event's ``eiTarget`` through a :class:`PointTargets` built here from
the entry's controller subentries; it is refreshed when subentries change while running.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .const import CONF_GROUP_ID, CONF_RESOURCE_ID, LOGGER
from .engine.event_plan import EventPlan
from .engine.schedule import Schedule
from .engine.targets import PointTargets, Scope, scopes_of_points
from .settings import EntrySettings


def point_scopes(
    settings: EntrySettings, controllers: Mapping[str, Mapping[str, Any]]
) -> dict[str, Scope]:
    """Each configured point's (resource_id, group_id), from its controller subentry."""
    return scopes_of_points(
        settings.subentry_of,
        controllers,
        (point.key for point in settings.points),
        resource_key=CONF_RESOURCE_ID,
        group_key=CONF_GROUP_ID,
    )


def build_targeting(
    settings: EntrySettings, controllers: Mapping[str, Mapping[str, Any]]
) -> PointTargets:
    """The targeting of a new entry; the VEN id is the configured one until registration."""
    return PointTargets(point_scopes(settings, controllers), ven_id=settings.vtn.ven_id)


def refresh_targeting(
    schedule: Schedule, settings: EntrySettings, controllers: Mapping[str, Mapping[str, Any]]
) -> None:
    """Adopt the subentries' ids (the caller then applies the level in force again)."""
    targeting = schedule.targeting
    scopes = point_scopes(settings, controllers)
    if targeting is None:
        targeting = PointTargets(scopes, ven_id=settings.vtn.ven_id)
    else:
        targeting.update(scopes)
    schedule.targeting = targeting  # counted events are judged again


def set_ven_id(schedule: Schedule, ven_id: str | None) -> bool:
    """Adopt the id the VTN registered this VEN as; True when it changed."""
    targeting = schedule.targeting
    if targeting is None or ven_id is None or ven_id == targeting.ven_id:
        return False
    targeting.ven_id = ven_id
    schedule.targeting = targeting
    return True


def reach_data(
    schedule: Schedule, plan: EventPlan | None, *, only_targeted: bool = False
) -> dict[str, Any]:
    """What ``plan`` names and sheds here, for bus events and the activity entity.

    ``only_targeted``: nothing for an event that reaches every point (the level's own data
    then says it all).
    """
    targeting = schedule.targeting
    if targeting is None or plan is None:
        return {}
    if only_targeted and targeting.covers_all(plan.targets):
        return {}
    resources, count = targeting.reached_scopes(plan.targets)
    targets = None if plan.targets is None else plan.targets.describe()
    return {"targets": targets, "resources": resources, "points": count}


def warn_if_unreached(schedule: Schedule, plan: EventPlan) -> None:
    """Say clearly when an event sheds nothing here because of what it targets."""
    targeting = schedule.targeting
    if targeting is None or plan.cancelled or targeting.reaches_any(plan.targets):
        return
    LOGGER.warning(
        "Event %r targets %s: none of this VEN's points (VEN %s); accepted, nothing is shed. "
        "Check the controllers' resource and group ids",
        plan.event_id,
        plan.targets.describe() if plan.targets is not None else "everything",
        targeting.ven_id or "id unknown",
    )
