"""Which of this VEN's points an event's ``eiTarget`` reaches, and each point's level.

Every point belongs to one controller, and a controller may carry an OpenADR ``resource_id``
and a ``group_id``: a point's *scope* is that pair. Targets are a union (OpenADR lists what an
event is for), read as follows:

* no targets at all, this VEN's own ``venID`` or any ``partyID``: every point. A VEN is not
  told which party it belongs to, and a VTN delivers a party's events only to that party's
  VENs, so a partyID can only mean "this whole site";
* ``resourceID``: the points of controllers with that resource id;
* ``groupID``: the points of controllers with that group id;
* the ``venID`` of another VEN adds nothing: an event that names only other VENs reaches no
  point here (it is accepted, and sheds nothing).

Points are many (thousands) and scopes few (one per controller at most), so levels are worked
out per scope and only then spread over the points: O(scopes x active events + points).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

type Scope = tuple[str | None, str | None]
"""``(resource_id, group_id)`` of the controller a point belongs to."""

MAX_TARGETS = 1000
"""Targets read per event; an event naming more is refused (a bound on what one costs)."""


@dataclass(frozen=True, slots=True)
class EventTargets:
    """The ids an event's ``eiTarget`` names, by kind."""

    ven_ids: frozenset[str] = frozenset()
    resource_ids: frozenset[str] = frozenset()
    group_ids: frozenset[str] = frozenset()
    party_ids: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        """Whether anything is named at all."""
        return bool(self.ven_ids or self.resource_ids or self.group_ids or self.party_ids)

    def describe(self) -> str:
        """One short line for logs and attributes, e.g. ``resourceID A, B; groupID g``."""
        parts = [
            f"{kind} {', '.join(sorted(ids)[:10])}{', ...' if len(ids) > 10 else ''}"
            for kind, ids in (
                ("venID", self.ven_ids),
                ("resourceID", self.resource_ids),
                ("groupID", self.group_ids),
                ("partyID", self.party_ids),
            )
            if ids
        ]
        return "; ".join(parts) or "everything"


class PointTargets:
    """The scope of every configured point, and this VEN's own id."""

    def __init__(self, scope_of: Mapping[str, Scope] | None = None, ven_id: str | None = None):
        """``scope_of`` maps point keys to their scope (a point left out has no ids)."""
        self.ven_id = ven_id
        self._scopes: list[Scope] = []
        self._keys: list[list[str]] = []
        self._resources: frozenset[str] = frozenset()
        self._groups: frozenset[str] = frozenset()
        self.update(scope_of or {})

    def update(self, scope_of: Mapping[str, Scope]) -> None:
        """Adopt a new point -> scope map (controllers were added, removed or edited)."""
        keys_by_scope: dict[Scope, list[str]] = {}
        for key, scope in scope_of.items():
            keys_by_scope.setdefault(scope, []).append(key)
        self._scopes = list(keys_by_scope)
        self._keys = list(keys_by_scope.values())
        self._resources = frozenset(r for r, _ in self._scopes if r is not None)
        self._groups = frozenset(g for _, g in self._scopes if g is not None)

    @property
    def scopes(self) -> tuple[Scope, ...]:
        """The distinct scopes of the configured points."""
        return tuple(self._scopes)

    def covers_all(self, targets: EventTargets | None) -> bool:
        """Whether ``targets`` reach every point of this VEN."""
        return (
            targets is None
            or not targets
            or bool(targets.party_ids)
            or (self.ven_id is not None and self.ven_id in targets.ven_ids)
        )

    def reaches_any(self, targets: EventTargets | None) -> bool:
        """Whether ``targets`` reach at least one configured point (or all, see above)."""
        if targets is None or self.covers_all(targets):
            return True
        return not (
            self._resources.isdisjoint(targets.resource_ids)
            and self._groups.isdisjoint(targets.group_ids)
        )

    def reaches(self, targets: EventTargets | None, scope: Scope) -> bool:
        """Whether ``targets`` reach the points of ``scope``."""
        if targets is None or self.covers_all(targets):
            return True
        resource, group = scope
        return (resource is not None and resource in targets.resource_ids) or (
            group is not None and group in targets.group_ids
        )

    def scope_levels(
        self, active: Sequence[tuple[EventTargets | None, int]]
    ) -> tuple[int, ...] | None:
        """The level of each scope (in :attr:`scopes` order) under the ``active`` events.

        ``active`` holds (targets, level) of every counted event in force. Each scope follows
        the highest level among the events that reach it. ``None`` when every active event
        reaches every point: then every point follows the building's level.
        """
        if all(self.covers_all(targets) for targets, _ in active):
            return None
        return tuple(
            max((level for targets, level in active if self.reaches(targets, scope)), default=0)
            for scope in self._scopes
        )

    def point_levels(self, levels: Sequence[int]) -> dict[str, int]:
        """Spread :meth:`scope_levels` over the points (points at 0 are left out)."""
        out: dict[str, int] = {}
        for keys, level in zip(self._keys, levels, strict=True):
            if level:
                out.update(dict.fromkeys(keys, level))
        return out

    def reached_scopes(self, targets: EventTargets | None) -> tuple[list[str], int]:
        """The resource ids ``targets`` reach here and how many points, for people to read."""
        resources: set[str] = set()
        count = 0
        for scope, keys in zip(self._scopes, self._keys, strict=True):
            if self.reaches(targets, scope):
                count += len(keys)
                if scope[0] is not None:
                    resources.add(scope[0])
        return sorted(resources), count


def scopes_of_points(
    subentry_of: Mapping[str, str],
    controllers: Mapping[str, Mapping[str, object]],
    keys: Iterable[str],
    *,
    resource_key: str,
    group_key: str,
) -> dict[str, Scope]:
    """Each point's scope from its controller subentry's ``resource_key``/``group_key``."""
    scope_by_subentry: dict[str, Scope] = {
        sid: (_text(data.get(resource_key)), _text(data.get(group_key)))
        for sid, data in controllers.items()
    }
    return {key: scope_by_subentry.get(subentry_of.get(key, ""), (None, None)) for key in keys}


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
