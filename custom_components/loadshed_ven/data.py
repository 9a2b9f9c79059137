"""What one config entry runs (its ``runtime_data``), and what every entry shares (BACnet stacks).

:class:`LoadshedData` is built by :func:`.entry_setup.async_build` with every collaborator
given to it; it starts them, shows the entities what they read, and stops and releases the
building when the entry unloads or Home Assistant stops.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import EVENT_HOMEASSISTANT_CLOSE
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .bacnet import StackHandle, StackRegistry
from .building_meter import BuildingMeter
from .bus_events import BusEvents
from .const import DOMAIN, LOGGER
from .coordinator import LoadshedCoordinator
from .engine.event_history import EventHistory, EventView
from .engine.overrides import PointState
from .engine.shed import ShedController
from .engine.verification import ShedVerifier
from .level_driver import LevelDriver
from .openadr.ven import VenConnection
from .operator_actions import OperatorActions
from .override_ledger import OverrideLedger
from .repair_issues import RepairIssues
from .settings import EntrySettings
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
    ven: VenConnection
    bus: BusEvents
    repairs: RepairIssues

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
