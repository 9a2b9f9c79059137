"""The building's main meter: a Modbus TCP register polled on a timer, or another HA entity.

A meter taken from another entity follows that entity's state changes (no polling). Either way
``data`` is the last good value in kW, and every reading, good or failed, is pushed to the
coordinator's listeners (the entry wires them to the shed verifier and the entities).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN, UnitOfPower
from homeassistant.core import CALLBACK_TYPE, Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .const import DOMAIN, LOGGER
from .modbus.meter import ImplausibleReadingError, MeterError, ModbusMeter, check_plausible
from .settings import MeterSettings

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
        self._modbus = ModbusMeter(meter.modbus) if meter.modbus is not None else None
        self._entity_id = meter.entity_id
        self._max_kw = meter.max_kw
        self._unsub_source: CALLBACK_TYPE | None = None

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
        """Stop reading and close the Modbus connection."""
        await super().async_shutdown()
        if self._unsub_source is not None:
            self._unsub_source()
            self._unsub_source = None
        if self._modbus is not None:
            self._modbus.close()


def _implausible(err: ImplausibleReadingError) -> UpdateFailed:
    """The coordinator logs this once when readings turn implausible, and once when they recover."""
    return UpdateFailed(
        translation_domain=DOMAIN,
        translation_key="meter_implausible",
        translation_placeholders={"value": f"{err.value:g}", "limit": f"{err.limit:g}"},
    )
