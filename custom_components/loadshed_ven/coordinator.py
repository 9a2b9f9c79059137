"""The config entry's runtime data and the meter coordinator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN, UnitOfPower
from homeassistant.core import HomeAssistant
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from . import settings
from .const import DOMAIN, LOGGER
from .modbus.meter import ImplausibleReadingError, MeterError, ModbusMeter, check_plausible

if TYPE_CHECKING:
    from .bacnet.stack import StackHandle
    from .ledger_store import OverrideLedger
    from .openadr.ven import VenConnection
    from .runtime import LoadshedRuntime

type LoadshedConfigEntry = ConfigEntry[LoadshedData]

# kW per unit of a power sensor's state (the units a meter entity may report).
KW_PER_UNIT: dict[str | None, float] = {
    UnitOfPower.WATT: 0.001,
    UnitOfPower.KILO_WATT: 1.0,
    UnitOfPower.MEGA_WATT: 1000.0,
}


@dataclass(kw_only=True)
class LoadshedData:
    """Everything one config entry runs."""

    runtime: LoadshedRuntime
    meter: MeterCoordinator
    ven: VenConnection
    bacnet: StackHandle
    ledger: OverrideLedger


class MeterCoordinator(DataUpdateCoordinator[float]):
    """Polls the building's main meter: a Modbus TCP register, or an existing HA power sensor.

    ``data`` is the last good value in kW. A failed read makes the coordinator (and the meter
    sensor) unavailable and reports nothing to the VTN: a value is never made up. So does a
    reading that is not finite or beyond the configured maximum (a misread register, a meter
    fault): such a value would ruin every baseline and report it reached.
    """

    config_entry: LoadshedConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: LoadshedConfigEntry,
        *,
        interval: timedelta,
        modbus: ModbusMeter | None = None,
        entity_id: str | None = None,
    ) -> None:
        """Read from ``modbus`` or from the state of ``entity_id`` every ``interval``."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} meter",
            update_interval=interval,
        )
        self._modbus = modbus
        self._entity_id = entity_id
        self._max_kw = settings.meter_max_kw(entry.data)

    @property
    def latest_kw(self) -> float | None:
        """The last good reading, or None when the meter is unavailable."""
        return self.data if self.last_update_success and self.data is not None else None

    async def _async_update_data(self) -> float:
        if self._modbus is not None:
            try:
                return await self._modbus.read_kw()
            except ImplausibleReadingError as err:
                raise _implausible(err) from err
            except MeterError as err:
                raise UpdateFailed(
                    translation_domain=DOMAIN,
                    translation_key="meter_unavailable",
                    translation_placeholders={"error": str(err)},
                ) from err
        return self._read_entity()

    def _read_entity(self) -> float:
        state = self.hass.states.get(self._entity_id or "")
        if state is None or state.state in (STATE_UNAVAILABLE, STATE_UNKNOWN):
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="meter_entity_unavailable",
                translation_placeholders={"entity_id": self._entity_id or ""},
            )
        unit = state.attributes.get("unit_of_measurement")
        try:
            value = float(state.state) * KW_PER_UNIT[unit]
        except (KeyError, ValueError) as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="meter_entity_invalid",
                translation_placeholders={
                    "entity_id": self._entity_id or "",
                    "state": f"{state.state} {unit or ''}".strip(),
                },
            ) from err
        try:
            return check_plausible(value, self._max_kw)
        except ImplausibleReadingError as err:
            raise _implausible(err) from err

    async def async_shutdown(self) -> None:
        """Stop polling and close the Modbus connection."""
        await super().async_shutdown()
        if self._modbus is not None:
            self._modbus.close()


def _implausible(err: ImplausibleReadingError) -> UpdateFailed:
    """The coordinator logs this once when readings turn implausible, and once when they recover."""
    return UpdateFailed(
        translation_domain=DOMAIN,
        translation_key="meter_implausible",
        translation_placeholders={"value": f"{err.value:g}", "limit": f"{err.limit:g}"},
    )
