"""Repair issues an operator must see: stuck points, a lost VTN or BBMD, a wrong VTN certificate.

Each issue is raised while its condition holds and deleted as soon as it no longer does, so the
Repairs dashboard always shows what the building needs now. The conditions are re-checked on
every state update the coordinator pushes (every pass, retry and connection change) and on a
slow tick, which also catches failures that change no state (a registration refused again and
again).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later, async_track_time_interval
from homeassistant.util import dt as dt_util

from .bacnet import BbmdStatus
from .const import DOMAIN
from .coordinator import LoadshedCoordinator, Topic
from .engine.overrides import FailureKind, PointState, PointStatus
from .engine.shed import ShedController
from .openadr.errors import VtnFingerprintMismatch
from .override_ledger import OverrideLedger
from .ven_transport import VenTransport
from .vtn_inbox import VtnInbox

if TYPE_CHECKING:
    from .data import LoadshedConfigEntry, LoadshedData

CHECK_INTERVAL: Final = timedelta(seconds=15)
# A BBMD that does not answer for this long raises an issue: about four tries of the upkeep
# (one every 30 s), so a BBMD rebooting or a lost datagram does not.
BBMD_UNREACHABLE_GRACE: Final = timedelta(minutes=2)
# The issue lists this many points by name; the rest are counted.
LISTED_POINTS: Final = 20


def stuck_points_issue_id(entry_id: str, kind: FailureKind) -> str:
    """Issue id: override points whose last write or release failed for ``kind``.

    One issue per failure kind, so that each says in its own translated words what went wrong
    and what to check; the points are listed as data.
    """
    return f"stuck_points_{kind}_{entry_id}"


def stuck_points_translation_key(kind: FailureKind) -> str:
    """The translation of the stuck-points issue of ``kind``."""
    return f"stuck_points_{kind}"


def vtn_unreachable_issue_id(entry_id: str) -> str:
    """Issue id: the VTN has been unreachable longer than the configured time."""
    return f"vtn_unreachable_{entry_id}"


def vtn_fingerprint_issue_id(entry_id: str) -> str:
    """Issue id: the VTN's messages are not signed by the pinned certificate."""
    return f"vtn_fingerprint_{entry_id}"


def bbmd_issue_id(entry_id: str) -> str:
    """Issue id: the BBMD refused the registration, or has not answered for a while."""
    return f"bbmd_registration_{entry_id}"


def describe_stuck(states: Sequence[PointState]) -> str:
    """One Markdown bullet per point: its name and key, then the value it may still hold.

    Data only: what the lines mean is in each issue's translated text. Beyond
    :data:`LISTED_POINTS`, the last line is ``- …`` and the issue's count tells how many.
    """
    lines = [f"- {_point_line(state)}" for state in states[:LISTED_POINTS]]
    if len(states) > LISTED_POINTS:
        lines.append("- …")
    return "\n".join(lines)


def failure_kind(state: PointState) -> FailureKind:
    """Why a point is stuck; a record that failed without a kind did not verify."""
    return state.failure or FailureKind.NOT_VERIFIED


def _point_line(state: PointState) -> str:
    line = f"{state.point.label} ({state.point.key})"
    return line if state.written_value is None else f"{line}: {state.written_value}"


class RepairIssues:
    """Raises and clears the repair issues of one config entry."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: LoadshedConfigEntry,
        *,
        controller: ShedController,
        vtn: VtnInbox,
        coordinator: LoadshedCoordinator,
        ven: VenTransport,
        ledger: OverrideLedger,
        outage_after: timedelta,
        vtn_url: str,
    ) -> None:
        """Watch the points, the VTN connection, the VEN's errors and the ledger's records."""
        self._hass = hass
        self._entry = entry
        self._controller = controller
        self._vtn = vtn
        self._coordinator = coordinator
        self._ven = ven
        self._ledger = ledger
        self._outage_after = outage_after
        self._vtn_url = vtn_url
        self._down_since: datetime | None = None
        self._unsubs: list[Callable[[], None]] = []
        self._unsub_outage: CALLBACK_TYPE | None = None
        self._outage = False  # unreachable for at least outage_after
        self._data: LoadshedData | None = None
        self._bbmd_down_since: datetime | None = None
        self._bbmd_overdue = False  # not registered for at least BBMD_UNREACHABLE_GRACE
        self._unsub_bbmd_grace: CALLBACK_TYPE | None = None

    @property
    def _entry_id(self) -> str:
        return self._entry.entry_id

    def stuck_points(self) -> list[PointState]:
        """Configured points whose last operation failed, then unsettled records of old points."""
        failed = [s for s in self._controller.states() if s.status is PointStatus.FAILED]
        return [*failed, *self._ledger.pending]

    @callback
    def async_start(self) -> None:
        """Start watching; the VTN counts as unreachable from now until it first answers."""
        self._down_since = dt_util.utcnow()
        # The entry's runtime data is set by now; it shows the BBMD registration.
        self._data = self._entry.runtime_data
        self._unsubs = [
            self._coordinator.async_add_listener(self._state_pushed),
            self._controller.add_listener(lambda _states: self.async_check()),
            async_track_time_interval(self._hass, self._tick, CHECK_INTERVAL),
        ]
        if self._data.settings.interface.bbmd is not None:
            self._unsubs.append(self._data.watch_bbmd())
        self.async_check()

    @callback
    def set_outage_after(self, window: timedelta) -> None:
        """Apply a new VTN outage alert window now, counted from when the VTN was lost."""
        self._outage_after = window
        self._cancel_outage_timer()
        self._outage = False
        if self._down_since is not None and not self._vtn.connected:
            remaining = (self._down_since + window - dt_util.utcnow()).total_seconds()
            if remaining <= 0:
                self._outage = True
            else:
                self._unsub_outage = async_call_later(self._hass, remaining, self._outage_due)
        if not self._outage:
            ir.async_delete_issue(self._hass, DOMAIN, vtn_unreachable_issue_id(self._entry_id))
        if self._unsubs:
            self.async_check()

    @callback
    def async_stop(self) -> None:
        """Stop watching. VTN issues go (the VEN no longer runs); stuck points are re-checked."""
        for unsub in self._unsubs:
            unsub()
        self._unsubs = []
        self._cancel_outage_timer()
        self._bbmd_registered()
        ir.async_delete_issue(self._hass, DOMAIN, vtn_unreachable_issue_id(self._entry_id))
        ir.async_delete_issue(self._hass, DOMAIN, vtn_fingerprint_issue_id(self._entry_id))
        # What unload could not release stays listed until the next start settles it.
        self._check_points()

    @callback
    def _state_pushed(self) -> None:
        topics = self._coordinator.data.topics
        if topics & Topic.STATE:
            self.async_check()
        elif topics & Topic.BBMD:
            self._check_bbmd()

    @callback
    def _tick(self, _now: datetime) -> None:
        self.async_check()

    @callback
    def async_check(self) -> None:
        """Bring every issue in line with the state now."""
        self._check_points()
        self._check_vtn()
        self._check_bbmd()

    # ---- stuck points -------------------------------------------------------------------

    @callback
    def _check_points(self) -> None:
        stuck: dict[FailureKind, list[PointState]] = {kind: [] for kind in FailureKind}
        for state in self.stuck_points():
            stuck[failure_kind(state)].append(state)
        for kind, states in stuck.items():
            issue_id = stuck_points_issue_id(self._entry_id, kind)
            if not states:
                ir.async_delete_issue(self._hass, DOMAIN, issue_id)
                continue
            ir.async_create_issue(
                self._hass,
                DOMAIN,
                issue_id,
                is_fixable=False,
                is_persistent=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=stuck_points_translation_key(kind),
                translation_placeholders={
                    "entry": self._entry.title,
                    "count": str(len(states)),
                    "points": describe_stuck(states),
                },
            )

    # ---- the VTN ------------------------------------------------------------------------

    @callback
    def _check_vtn(self) -> None:
        fingerprint_id = vtn_fingerprint_issue_id(self._entry_id)
        if self._vtn.connected:
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

    # ---- the BBMD -----------------------------------------------------------------------

    @callback
    def _check_bbmd(self) -> None:
        view = self._data.bbmd if self._data is not None else None
        if view is None or view.status in (None, BbmdStatus.REGISTERED):
            self._bbmd_registered()
            return
        if view.status is BbmdStatus.REGISTERING:
            return  # the first attempt is still waiting for an answer
        if self._bbmd_down_since is None:
            self._bbmd_down_since = dt_util.utcnow()
            self._unsub_bbmd_grace = async_call_later(
                self._hass, BBMD_UNREACHABLE_GRACE.total_seconds(), self._bbmd_grace_over
            )
        issue_id = bbmd_issue_id(self._entry_id)
        if view.status is BbmdStatus.REFUSED:
            # An answer, not a blip: the BBMD will go on refusing until someone changes it.
            ir.async_create_issue(
                self._hass,
                DOMAIN,
                issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key="bbmd_refused",
                translation_placeholders={
                    "entry": self._entry.title,
                    "bbmd": view.address,
                    "reason": view.reason,
                },
            )
        elif self._bbmd_overdue:
            ir.async_create_issue(
                self._hass,
                DOMAIN,
                issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key="bbmd_unreachable",
                translation_placeholders={
                    "entry": self._entry.title,
                    "bbmd": view.address,
                    "since": self._bbmd_down_since.isoformat(timespec="seconds"),
                    "reason": view.reason,
                },
            )

    @callback
    def _bbmd_grace_over(self, _now: datetime) -> None:
        self._unsub_bbmd_grace = None
        self._bbmd_overdue = True
        self._check_bbmd()

    @callback
    def _bbmd_registered(self) -> None:
        """Registered again (or no longer running): forget the outage, delete the issue."""
        self._bbmd_down_since = None
        self._bbmd_overdue = False
        if self._unsub_bbmd_grace is not None:
            self._unsub_bbmd_grace()
            self._unsub_bbmd_grace = None
        ir.async_delete_issue(self._hass, DOMAIN, bbmd_issue_id(self._entry_id))


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
        *(stuck_points_issue_id(entry_id, kind) for kind in FailureKind),
        vtn_unreachable_issue_id(entry_id),
        vtn_fingerprint_issue_id(entry_id),
        bbmd_issue_id(entry_id),
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
