"""Repair issues an operator must see: stuck override points, a lost VTN, a wrong VTN certificate.

Each issue is raised while its condition holds and deleted as soon as it no longer does, so the
Repairs dashboard always shows what the building needs now. The conditions are re-checked on
every runtime update (every pass, every retry, every connection change) and on a slow tick, which
also catches failures that change no state (a registration refused again and again).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.event import async_call_later, async_track_time_interval
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .engine.overrides import FailureKind, PointState, PointStatus
from .ledger_store import OverrideLedger
from .openadr.errors import VtnFingerprintMismatch
from .openadr.ven import VenConnection
from .runtime import LoadshedRuntime

CHECK_INTERVAL: Final = timedelta(seconds=15)
# The issue lists this many points by name; the rest are counted.
LISTED_POINTS: Final = 20

REASONS: Final[dict[FailureKind, str]] = {
    FailureKind.OFFLINE: "controller offline (no answer)",
    FailureKind.ACCESS_DENIED: "write access denied by the controller",
    FailureKind.UNKNOWN_OBJECT: "no such object on the controller",
    FailureKind.NOT_VERIFIED: "the priority slot does not hold what was written",
    FailureKind.ERROR: "BACnet error",
}


def stuck_points_issue_id(entry_id: str) -> str:
    """Issue id: override points whose last write or release did not verify."""
    return f"stuck_points_{entry_id}"


def vtn_unreachable_issue_id(entry_id: str) -> str:
    """Issue id: the VTN has been unreachable longer than the configured time."""
    return f"vtn_unreachable_{entry_id}"


def vtn_fingerprint_issue_id(entry_id: str) -> str:
    """Issue id: the VTN's messages are not signed by the pinned certificate."""
    return f"vtn_fingerprint_{entry_id}"


def describe_stuck(states: Sequence[PointState]) -> str:
    """One Markdown bullet per point with the reason, for the issue's description."""
    lines = [f"- {_point_line(state)}" for state in states[:LISTED_POINTS]]
    if len(states) > LISTED_POINTS:
        lines.append(f"- … and {len(states) - LISTED_POINTS} more (see the diagnostics)")
    return "\n".join(lines)


def _point_line(state: PointState) -> str:
    reason = REASONS.get(state.failure, "not verified") if state.failure else "not verified"
    if state.owner_priority is not None:
        reason += f"; owned by priority {state.owner_priority}"
    if state.written_value is not None:
        reason += f"; may hold {state.written_value}"
    return f"{state.point.name or state.point.key} ({state.point.key}): {reason}"


class RepairIssues:
    """Raises and clears the repair issues of one config entry."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry[Any],
        *,
        runtime: LoadshedRuntime,
        ven: VenConnection,
        ledger: OverrideLedger,
        outage_after: timedelta,
        vtn_url: str,
    ) -> None:
        """Watch ``runtime`` (points, connection), ``ven`` (errors) and ``ledger`` (records)."""
        self._hass = hass
        self._entry = entry
        self._runtime = runtime
        self._ven = ven
        self._ledger = ledger
        self._outage_after = outage_after
        self._vtn_url = vtn_url
        self._down_since: datetime | None = None
        self._unsubs: list[Callable[[], None]] = []
        self._unsub_outage: CALLBACK_TYPE | None = None
        self._outage = False  # unreachable for at least outage_after

    @property
    def _entry_id(self) -> str:
        return self._entry.entry_id

    def stuck_points(self) -> list[PointState]:
        """Configured points whose last operation failed, then unsettled records of old points."""
        failed = [s for s in self._runtime.point_states() if s.status is PointStatus.FAILED]
        return [*failed, *self._ledger.pending]

    @callback
    def async_start(self) -> None:
        """Start watching; the VTN counts as unreachable from now until it first answers."""
        self._down_since = dt_util.utcnow()
        self._unsubs = [
            async_dispatcher_connect(self._hass, self._runtime.signal, self.async_check),
            self._runtime.controller.add_listener(lambda _states: self.async_check()),
            async_track_time_interval(self._hass, self._tick, CHECK_INTERVAL),
        ]
        self.async_check()

    @callback
    def async_stop(self) -> None:
        """Stop watching. VTN issues go (the VEN no longer runs); stuck points are re-checked."""
        for unsub in self._unsubs:
            unsub()
        self._unsubs = []
        self._cancel_outage_timer()
        ir.async_delete_issue(self._hass, DOMAIN, vtn_unreachable_issue_id(self._entry_id))
        ir.async_delete_issue(self._hass, DOMAIN, vtn_fingerprint_issue_id(self._entry_id))
        # What unload could not release stays listed until the next start settles it.
        self._check_points()

    @callback
    def _tick(self, _now: datetime) -> None:
        self.async_check()

    @callback
    def async_check(self) -> None:
        """Bring every issue in line with the state now."""
        self._check_points()
        self._check_vtn()

    # ---- stuck points -------------------------------------------------------------------

    @callback
    def _check_points(self) -> None:
        issue_id = stuck_points_issue_id(self._entry_id)
        stuck = self.stuck_points()
        if not stuck:
            ir.async_delete_issue(self._hass, DOMAIN, issue_id)
            return
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key="stuck_points",
            translation_placeholders={
                "entry": self._entry.title,
                "count": str(len(stuck)),
                "points": describe_stuck(stuck),
            },
        )

    # ---- the VTN ------------------------------------------------------------------------

    @callback
    def _check_vtn(self) -> None:
        fingerprint_id = vtn_fingerprint_issue_id(self._entry_id)
        if self._runtime.connected:
            self._down_since = None
            self._outage = False
            self._cancel_outage_timer()
            ir.async_delete_issue(self._hass, DOMAIN, vtn_unreachable_issue_id(self._entry_id))
            ir.async_delete_issue(self._hass, DOMAIN, fingerprint_id)
            return
        if self._down_since is None:
            self._down_since = dt_util.utcnow()
        if not self._outage and self._unsub_outage is None:
            self._unsub_outage = async_call_later(
                self._hass, self._outage_after.total_seconds(), self._outage_due
            )
        error = self._ven.last_error
        if isinstance(error, VtnFingerprintMismatch):
            ir.async_create_issue(
                self._hass,
                DOMAIN,
                fingerprint_id,
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key="vtn_fingerprint",
                translation_placeholders={
                    "entry": self._entry.title,
                    "url": self._vtn_url,
                    "error": str(error),
                },
            )
        if self._outage:
            ir.async_create_issue(
                self._hass,
                DOMAIN,
                vtn_unreachable_issue_id(self._entry_id),
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key="vtn_unreachable",
                translation_placeholders={
                    "entry": self._entry.title,
                    "url": self._vtn_url,
                    "since": self._down_since.isoformat(timespec="seconds"),
                    "minutes": str(int(self._outage_after.total_seconds() // 60)),
                    "error": str(error) if error is not None else "no answer yet",
                },
            )

    @callback
    def _outage_due(self, _now: datetime) -> None:
        """The VTN has been unreachable for the whole configured time (timed by the loop)."""
        self._unsub_outage = None
        self._outage = True
        self.async_check()

    def _cancel_outage_timer(self) -> None:
        if self._unsub_outage is not None:
            self._unsub_outage()
            self._unsub_outage = None


def removed_with_overrides_issue_id(entry_id: str) -> str:
    """Issue id: an entry was deleted while its ledger still listed points."""
    return f"removed_with_overrides_{entry_id}"


@callback
def async_entry_removed(
    hass: HomeAssistant, entry_id: str, title: str, leftover: Sequence[PointState]
) -> None:
    """Replace a deleted entry's issues by one that lists what it could not release.

    Nothing tracks those points any more, so this issue cannot clear itself: it stays (across
    restarts) until the operator has released them at the controllers and dismisses it.
    """
    for issue_id in (
        stuck_points_issue_id(entry_id),
        vtn_unreachable_issue_id(entry_id),
        vtn_fingerprint_issue_id(entry_id),
    ):
        ir.async_delete_issue(hass, DOMAIN, issue_id)
    if not leftover:
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        removed_with_overrides_issue_id(entry_id),
        is_fixable=False,
        is_persistent=True,
        severity=ir.IssueSeverity.ERROR,
        translation_key="removed_with_overrides",
        translation_placeholders={
            "entry": title,
            "count": str(len(leftover)),
            "points": describe_stuck(leftover),
        },
    )
