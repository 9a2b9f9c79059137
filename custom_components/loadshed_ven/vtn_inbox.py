"""What the VEN hands over from the VTN: events, the list of events offered, the connection.

Events go into the schedule (and the history the entities show), each answered with this VEN's
opt; the level is then evaluated once per message by the :class:`LevelDriver`. An event whose
``eiTarget`` reaches none of this VEN's points is accepted all the same (the opt is this VEN's
as for any event) but sheds nothing; its bus events say which resources and how many points an
event sheds. A client
certificate (2.0b) or client secret (3.x) the VTN refuses starts the entry's reauthentication,
which a later successful connection makes moot (its flow is then aborted).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.core import DOMAIN as HOMEASSISTANT_DOMAIN
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .bus_events import (
    EVENT_CANCELLED,
    EVENT_MODIFIED,
    EVENT_RECEIVED,
    SOURCE_VTN,
    BusEvents,
    plan_data,
)
from .const import DOMAIN, LOGGER
from .coordinator import LoadshedCoordinator, Topic
from .engine.event_history import MANUAL_PREFIX, EventHistory
from .engine.schedule import normalise_event_id, parse_event
from .level_driver import LevelDriver
from .openadr.errors import VtnError
from .openadr.ven import OptType
from .targeting import reach_data, set_ven_id, warn_if_unreached

if TYPE_CHECKING:
    from .data import LoadshedConfigEntry

OPT_IN: Final[OptType] = "optIn"
OPT_OUT: Final[OptType] = "optOut"


class VtnInbox:
    """Takes the VEN's events into the schedule and tracks whether the VTN is reachable."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: LoadshedConfigEntry,
        *,
        driver: LevelDriver,
        history: EventHistory,
        opted_out: AbstractSet[str],
        bus: BusEvents,
        coordinator: LoadshedCoordinator,
        random_offset: Callable[[str, timedelta], timedelta],
    ) -> None:
        """``opted_out``: the ids this VEN opted out of, read as they change."""
        self._hass = hass
        self._entry = entry
        self._driver = driver
        self._schedule = driver.schedule
        self._history = history
        self._opted_out = opted_out
        self._bus = bus
        self._coordinator = coordinator
        self._random_offset = random_offset
        self.connected = False
        self._ever_connected = False
        self._closing = False
        self._auth_refused = False  # since the last registration or login
        # The id the VTN registered this VEN as (None until registered): venID targets.
        self.ven_id_source: Callable[[], str | None] | None = None

    def _opt(self, event_id: str) -> OptType:
        return OPT_OUT if event_id in self._opted_out else OPT_IN

    async def handle_event(self, raw: Mapping[str, Any]) -> OptType:
        """A new or updated event from the VTN; returns the opt to send back."""
        result = parse_event(raw, random_offset=self._random_offset)
        if result.plan is None:
            LOGGER.warning(
                "Ignoring event %r from the VTN: %s", result.event_id or "(no id)", result.error
            )
            return OPT_OUT
        plan = result.plan
        if self.ven_id_source is not None:
            set_ven_id(self._schedule, self.ven_id_source())
        previous = self._history.get(plan.event_id)
        if not self._schedule.upsert(plan) and previous is not None:
            return self._opt(plan.event_id)  # a stale repeat
        self._history.remember(plan)
        if plan.event_id in self._opted_out:
            self._schedule.remove(plan.event_id)
        if plan.cancelled and previous is None:
            # A cancelled event this VEN never acted on (e.g. still listed after a restart):
            # nothing to undo, and no automation should hear of a cancel it never saw start.
            LOGGER.debug("Event %r is listed as cancelled; nothing to do", plan.event_id)
        else:
            kind = (
                EVENT_CANCELLED
                if plan.cancelled
                else (EVENT_RECEIVED if previous is None else EVENT_MODIFIED)
            )
            data = {**plan_data(plan), **reach_data(self._schedule, plan)}
            self._bus.fire(kind, data, SOURCE_VTN)
            warn_if_unreached(self._schedule, plan)
        if plan.test_event and not self._schedule.act_on_test:
            LOGGER.info("Test event %r received; logged, not acted on", plan.event_id)
        self._driver.request_evaluation()
        return self._opt(plan.event_id)

    @callback
    def handle_event_ids(self, ids: AbstractSet[str]) -> None:
        """The VTN's current event list: events missing from it are cancelled (implied)."""
        present = {i for raw in ids if (i := normalise_event_id(raw)) is not None}
        present |= {
            p.event_id for p in self._schedule.plans if p.event_id.startswith(MANUAL_PREFIX)
        }
        gone = self._schedule.retain_only(present)
        for event_id in gone:
            LOGGER.info("Event %r is no longer offered by the VTN: implied cancel", event_id)
            self._history.mark_cancelled(event_id)
            self._bus.fire(EVENT_CANCELLED, {"event_id": event_id, "implied": True}, SOURCE_VTN)
        if gone:
            self._driver.request_evaluation()

    @callback
    def handle_connection(self, connected: bool) -> None:
        """The VEN's contact with the VTN changed."""
        if connected and not self.connected:
            LOGGER.info("VTN %s", "reachable again" if self._ever_connected else "connected")
        elif self.connected and not connected and not self._closing:
            LOGGER.warning("VTN unreachable")  # not when the VEN is being stopped on purpose
        self._ever_connected |= connected
        self.connected = connected
        if connected and self._auth_refused:
            # Connected after all (the VTN was fixed): new credentials are not needed.
            self._auth_refused = False
            flows = self._entry.async_get_active_flows(self._hass, {SOURCE_REAUTH})
            for flow in list(flows):
                self._hass.config_entries.flow.async_abort(flow["flow_id"])
            # Aborting from outside the flow leaves Home Assistant's "reauthentication
            # required" issue behind (it is deleted only when a flow finishes by itself).
            ir.async_delete_issue(
                self._hass,
                HOMEASSISTANT_DOMAIN,
                f"config_entry_reauth_{DOMAIN}_{self._entry.entry_id}",
            )
        self._coordinator.push(Topic.STATE)

    @callback
    def handle_auth_refused(self, err: VtnError) -> None:
        """The VTN refused this VEN's certificate (2.0b) or client credentials (3.x).

        New ones are asked for (reauthentication).
        """
        if not self._auth_refused and not self._closing:
            LOGGER.warning("%s Reauthentication started for %s", err, self._entry.title)
        self._auth_refused = True
        if not self._closing:
            self._entry.async_start_reauth(self._hass)  # no-op while one is in progress

    @callback
    def closing(self) -> None:
        """The VEN is being stopped on purpose: losing the VTN now is no warning."""
        self._closing = True
