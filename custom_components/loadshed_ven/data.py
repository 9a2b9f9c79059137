"""What one config entry runs (its ``runtime_data``), and what every entry shares (BACnet stacks).

:class:`LoadshedData` is built by :func:`.entry_setup.async_build` with every collaborator
given to it; it starts them, shows the entities what they read, and stops and releases the
building when the entry unloads or Home Assistant stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Self

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import EVENT_HOMEASSISTANT_CLOSE
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .bacnet import BbmdStatus, StackHandle, StackRegistry
from .building_meter import BuildingMeter
from .bus_events import BusEvents
from .const import DOMAIN, LOGGER
from .coordinator import LoadshedCoordinator, Topic
from .engine.event_history import EventHistory, EventView
from .engine.overrides import PointState
from .engine.points import OverridePoint
from .engine.shed import ShedController
from .engine.verification import ShedVerifier
from .level_driver import LevelDriver
from .operator_actions import OperatorActions
from .override_ledger import OverrideLedger
from .repair_issues import RepairIssues
from .settings import EntrySettings
from .ven_transport import VenTransport
from .vtn_inbox import VtnInbox

type LoadshedConfigEntry = ConfigEntry[LoadshedData]

# How long unloading, or Home Assistant stopping, may spend releasing overrides.
RELEASE_BUDGET_SECONDS: Final = 10.0
# How many points a release warning names before it stops.
LISTED_POINTS: Final = 10

_STACKS: HassKey[StackRegistry] = HassKey(f"{DOMAIN}_bacnet_stacks")


@callback
def stack_registry(hass: HomeAssistant) -> StackRegistry:
    """The BACnet stacks every entry and the config flow share (one per local IP and port).

    bacpypes3 allows one application per local address; the last user closes each stack, and
    Home Assistant's shutdown closes whatever is left.
    """
    if (registry := hass.data.get(_STACKS)) is not None:
        return registry
    registry = hass.data[_STACKS] = StackRegistry()

    async def _close(_: Event) -> None:
        await registry.close_all()

    hass.bus.async_listen_once(EVENT_HOMEASSISTANT_CLOSE, _close)
    return registry


@dataclass(frozen=True, kw_only=True)
class EntryShape:
    """What a running entry was built from, to tell what an update of the entry changed."""

    data: dict[str, Any]
    options: dict[str, Any]
    controllers: dict[str, dict[str, Any]]  # subentry id -> its data

    @classmethod
    def of(cls, entry: ConfigEntry[Any]) -> Self:
        """A copy of the entry's data, options and controller subentries' data."""
        return cls(
            data=dict(entry.data),
            options=dict(entry.options),
            controllers={sid: dict(sub.data) for sid, sub in entry.subentries.items()},
        )


@dataclass(frozen=True, kw_only=True)
class BbmdView:
    """The BBMD registration as the entities, repairs and diagnostics show it."""

    address: str  # ip:port
    ttl: int
    status: BbmdStatus | None  # None once the stack has closed
    reason: str


@dataclass(kw_only=True)
class LoadshedData:
    """Everything one config entry runs, wired once at set-up."""

    settings: EntrySettings
    coordinator: LoadshedCoordinator
    bacnet: StackHandle
    controller: ShedController
    ledger: OverrideLedger
    history: EventHistory
    verification: ShedVerifier
    driver: LevelDriver
    vtn: VtnInbox
    actions: OperatorActions
    meter: BuildingMeter
    ven: VenTransport
    bus: BusEvents
    repairs: RepairIssues
    shape: EntryShape
    # Set by the switch platform: adds switches for points, on a controller subentry.
    add_switches: Callable[[list[OverridePoint], str | None], None] | None = None
    # Entry updates are applied one at a time (each may release points over BACnet).
    update_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    # ---- what the entities show ---------------------------------------------------------

    @property
    def level(self) -> int:
        """The ADR level applied last."""
        return self.driver.level

    @property
    def connected(self) -> bool:
        """Whether the VTN answered the last exchange."""
        return self.vtn.connected

    @property
    def shedding(self) -> bool:
        """True while any point may hold our value: written, being written or not yet released."""
        return any(state.holds_override for state in self.controller.states())

    @property
    def bbmd(self) -> BbmdView | None:
        """The BBMD registration now; None when no BBMD is configured."""
        bbmd = self.settings.interface.bbmd
        if bbmd is None:
            return None
        stack = self.bacnet.stack
        return BbmdView(
            address=bbmd.text, ttl=bbmd.ttl, status=stack.bbmd_status, reason=stack.bbmd_reason
        )

    @callback
    def watch_bbmd(self) -> Callable[[], None]:
        """Push :attr:`Topic.BBMD` whenever the registration changes; returns the unsubscribe.

        The stack may be shared with other entries (one BBMD per stack): each watches it.
        """

        def changed(_status: BbmdStatus, _reason: str) -> None:
            self.coordinator.push(Topic.BBMD)

        return self.bacnet.stack.add_bbmd_listener(changed)

    def current_event(self) -> EventView | None:
        """The event in force now, else the next one scheduled, else the last one seen."""
        return self.history.current(dt_util.utcnow())

    def recent_events(self, limit: int) -> list[EventView]:
        """The last ``limit`` (at least 1) events seen, oldest first, with their status."""
        return self.history.recent(dt_util.utcnow(), limit)

    def point_states(self) -> list[PointState]:
        """Every override point's state."""
        return self.controller.states()

    # ---- life cycle ---------------------------------------------------------------------

    async def stop_and_release(self, why: str) -> None:
        """Stop acting on events, then release every override within the time budget."""
        self.vtn.closing()
        await self.driver.async_stop()
        await self.ven.stop()
        await self.ledger.async_stop()  # a retry in progress must not hold up the release
        try:
            async with asyncio.timeout(RELEASE_BUDGET_SECONDS):
                report = await self.controller.release_all()
        except TimeoutError:
            LOGGER.warning(
                "Releasing overrides while %s did not finish within %.0f s",
                why,
                RELEASE_BUDGET_SECONDS,
            )
        else:
            if report.failed:
                LOGGER.warning(
                    "%d override(s) could not be released while %s: %s",
                    len(report.failed),
                    why,
                    ", ".join(report.failed[:LISTED_POINTS]),
                )

    async def async_close(self) -> None:
        """After :meth:`stop_and_release`: stop the meter and free the BACnet stack."""
        await self.meter.async_shutdown()
        await self.bacnet.release()
