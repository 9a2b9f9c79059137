"""The building's main meter: a Modbus TCP register polled on a timer, or another HA entity.

A meter taken from another entity follows that entity's state changes (no polling). Either way
``data`` is the last good value in kW, and every reading, good or failed, is pushed to the
coordinator's listeners (the entry wires them to the shed verifier and the entities).

A Modbus meter may also have an energy register (kWh imported, read right after the power on the
same connection): :attr:`BuildingMeter.latest_kwh`. Its failure only makes the energy unknown;
the power, which sheds are verified against, stays available.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN, UnitOfPower
from homeassistant.core import CALLBACK_TYPE, Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .const import CONF_ENERGY_REGISTER, DOMAIN, LOGGER
from .modbus.meter import ImplausibleReadingError, MeterError, ModbusMeter, check_plausible
from .settings import MeterSettings, meter_config

if TYPE_CHECKING:
    from .data import LoadshedConfigEntry

# kW per unit of a power sensor's state (the units a meter entity may report).
KW_PER_UNIT: dict[str | None, float] = {
    UnitOfPower.WATT: 0.001,
    UnitOfPower.KILO_WATT: 1.0,
    UnitOfPower.MEGA_WATT: 1000.0,
}


class BuildingMeter(DataUpdateCoordinator[float]):
    """Reads the building's main meter: a Modbus TCP register, or an existing HA power sensor.

    ``data`` is the last good value in kW. A failed read makes the coordinator (and the meter
    sensor) unavailable and reports nothing to the VTN: a value is never made up. So does a
    reading that is not finite or beyond the configured maximum (a misread register, a meter
    fault): such a value would ruin every baseline and report it reached.
    """

    def __init__(
        self, hass: HomeAssistant, entry: LoadshedConfigEntry, meter: MeterSettings
    ) -> None:
        """Poll the Modbus meter every ``meter.interval``, or follow ``meter.entity_id``."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} meter",
            update_interval=meter.interval if meter.modbus is not None else None,
        )
        modbus = meter.modbus
        energy_register = entry.data.get(CONF_ENERGY_REGISTER)
        if modbus is not None and modbus.energy_register is None and energy_register is not None:
            modbus = replace(modbus, energy_register=int(energy_register))
        self._modbus = ModbusMeter(modbus) if modbus is not None else None
        self._entity_id = meter.entity_id
        self._max_kw = meter.max_kw
        self._interval = meter.interval
        self._unsub_source: CALLBACK_TYPE | None = None
        self._kwh: float | None = None
        self._energy_failing = False

    async def async_start(self) -> None:
        """Take a first reading; a meter entity is then followed as its state changes."""
        # A dead meter must not stop the building from shedding: no first-refresh gate.
        await self.async_refresh()
        if self._entity_id is not None:
            self._unsub_source = async_track_state_change_event(
                self.hass, self._entity_id, self._source_changed
            )

    @callback
    def set_interval(self, interval: timedelta) -> None:
        """Poll the Modbus meter every ``interval`` from now on (a meter entity is followed)."""
        self._interval = interval
        if self._modbus is None or interval == self.update_interval:
            return
        self.update_interval = interval
        if self._listeners:
            self._schedule_refresh()  # re-arm the timer with the new interval

    @callback
    def _source_changed(self, _event: Event[EventStateChangedData]) -> None:
        try:
            value = self._read_entity()
        except UpdateFailed as err:
            self.async_set_update_error(err)  # logged once, until a good reading
            return
        if not self.last_update_success:
            self.logger.info("Fetching %s data recovered", self.name)
        self.async_set_updated_data(value)

    @property
    def latest_kw(self) -> float | None:
        """The last good reading, or None when the meter is unavailable."""
        return self.data if self.last_update_success and self.data is not None else None

    @property
    def interval(self) -> timedelta:
        """How often the meter is read (a meter entity: how often its held value is sampled)."""
        return self._interval

    @property
    def max_kw(self) -> float:
        """Readings beyond ±this many kW are implausible."""
        return self._max_kw

    @property
    def has_energy_register(self) -> bool:
        """Whether the meter's own energy register is read."""
        return self._modbus is not None and self._modbus.config.energy_register is not None

    @property
    def latest_kwh(self) -> float | None:
        """The energy register at the last reading; None when it (or the power) failed."""
        return self._kwh if self.last_update_success else None

    async def _read_kwh(self, modbus: ModbusMeter) -> float | None:
        """The energy register, or None (logged once per failure spell)."""
        try:
            kwh = await modbus.read_kwh()
        except MeterError as err:
            if not self._energy_failing:
                self.logger.warning("Cannot read the meter's energy register: %s", err)
            self._energy_failing = True
            return None
        if self._energy_failing:
            self.logger.info("The meter's energy register reads again")
        self._energy_failing = False
        return kwh

    async def _async_update_data(self) -> float:
        if self._modbus is not None:
            self._kwh = None
            try:
                kw = await self._modbus.read_kw()
            except ImplausibleReadingError as err:
                raise _implausible(err) from err
            except MeterError as err:
                raise UpdateFailed(
                    translation_domain=DOMAIN,
                    translation_key="meter_unavailable",
                    translation_placeholders={"error": str(err)},
                ) from err
            if self.has_energy_register:
                self._kwh = await self._read_kwh(self._modbus)
            return kw
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
        """Stop reading and close the Modbus connection."""
        await super().async_shutdown()
        if self._unsub_source is not None:
            self._unsub_source()
            self._unsub_source = None
        if self._modbus is not None:
            self._modbus.close()


async def read_energy_register(meter: Mapping[str, Any]) -> float | None:
    """Read a Modbus meter's energy register once (the config flow's check).

    None when none is configured; raises :class:`MeterError` when it cannot be read.
    """
    register = meter.get(CONF_ENERGY_REGISTER)
    if register is None:
        return None
    client = ModbusMeter(replace(meter_config(meter), energy_register=int(register)))
    try:
        return await client.read_kwh()
    finally:
        client.close()


def _implausible(err: ImplausibleReadingError) -> UpdateFailed:
    """The coordinator logs this once when readings turn implausible, and once when they recover."""
    return UpdateFailed(
        translation_domain=DOMAIN,
        translation_key="meter_implausible",
        translation_placeholders={"value": f"{err.value:g}", "limit": f"{err.limit:g}"},
    )
