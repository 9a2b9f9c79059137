"""The grid energy sensor: kWh imported from the grid, for Home Assistant's Energy dashboard.

From the meter's energy register when one is configured (a Modbus meter only), else from its
power integrated over time (see :mod:`.engine.energy` for the rules: import only, gaps longer
than :data:`GAP_INTERVALS` readings not integrated, implausible readings never counted). A meter
taken from another entity is sampled every meter interval, because a steady power sensor does
not change state and so would otherwise leave gaps.

The total and the tracker's state are restored after a restart; the total never decreases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntityDescription,
    SensorExtraStoredData,
    SensorStateClass,
)
from homeassistant.const import UnitOfEnergy
from homeassistant.core import CALLBACK_TYPE, callback
from homeassistant.helpers.event import async_call_later
from homeassistant.util import dt as dt_util

from .coordinator import Topic
from .data import LoadshedConfigEntry
from .engine.energy import CounterTracker, PowerIntegrator
from .entity import LoadshedEntity, meter_device_info

# Readings missed in a row before the time between two good ones is a gap, not integrated.
GAP_INTERVALS: Final = 3
# Never shorter: at a 1 s interval, Home Assistant's own scheduling jitter is not a gap.
MIN_GAP: Final = timedelta(seconds=10)
SOURCE_REGISTER: Final = "register"
SOURCE_POWER: Final = "power"
_STORED_KEY: Final = "grid_energy"

GRID_ENERGY: Final = SensorEntityDescription(
    key="grid_energy",
    translation_key="grid_energy",
    device_class=SensorDeviceClass.ENERGY,
    state_class=SensorStateClass.TOTAL_INCREASING,
    native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
    suggested_display_precision=1,
)


def max_gap(interval: timedelta) -> timedelta:
    """The longest time between two readings that is still integrated."""
    return max(interval * GAP_INTERVALS, MIN_GAP)


@dataclass
class GridEnergyStoredData(SensorExtraStoredData):
    """The sensor's value, plus the tracker's state under :data:`_STORED_KEY`."""

    source: str
    tracker: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the sensor's own fields, so RestoreSensor can still read them."""
        return {**super().as_dict(), _STORED_KEY: {"source": self.source, **self.tracker}}


class GridEnergySensor(LoadshedEntity, RestoreSensor):
    """kWh imported from the grid: ``total_increasing``, for the Energy dashboard."""

    entity_description = GRID_ENERGY
    topics = Topic.NONE  # fed by every meter reading directly, not by the entry's updates

    def __init__(self, entry: LoadshedConfigEntry) -> None:
        """Track the register when the meter has one, else integrate its power."""
        super().__init__(entry, GRID_ENERGY.key, meter_device_info(entry), GRID_ENERGY)
        meter = self.data.meter
        self._source = SOURCE_REGISTER if meter.has_energy_register else SOURCE_POWER
        self._counter = CounterTracker(max_kw=meter.max_kw)
        self._integrator = PowerIntegrator(max_gap=max_gap(meter.interval), max_kw=meter.max_kw)
        self._unsub_sample: CALLBACK_TYPE | None = None

    async def async_added_to_hass(self) -> None:
        """Restore the total, then follow the meter."""
        await super().async_added_to_hass()
        await self._restore()
        self.async_on_remove(self.data.meter.async_add_listener(self._reading))
        if self.data.meter.last_update_success:
            self._reading()  # the reading taken at start-up, rather than wait an interval
        if self.data.settings.meter.modbus is None:
            self._schedule_sample()
            self.async_on_remove(self._cancel_sample)

    async def _restore(self) -> None:
        extra = await self.async_get_last_extra_data()
        stored = extra.as_dict().get(_STORED_KEY) if extra is not None else None
        meter = self.data.meter
        if isinstance(stored, dict) and stored.get("source") == self._source:
            self._counter = CounterTracker.from_dict(stored, max_kw=meter.max_kw)
            self._integrator = PowerIntegrator.from_dict(
                stored, max_gap=max_gap(meter.interval), max_kw=meter.max_kw
            )
            return
        # The source changed (an energy register added or removed): carry the total on, so the
        # dashboard never sees it fall or jump.
        last = await self.async_get_last_sensor_data()
        total = last.native_value if last is not None else None
        if isinstance(total, int | float) and not isinstance(total, bool) and total >= 0:
            self._counter.total_kwh = self._integrator.total_kwh = float(total)

    @callback
    def _schedule_sample(self) -> None:
        self._unsub_sample = async_call_later(
            self.hass, self.data.meter.interval, self._sample_held_value
        )

    @callback
    def _cancel_sample(self) -> None:
        if self._unsub_sample is not None:
            self._unsub_sample()
            self._unsub_sample = None

    @callback
    def _sample_held_value(self, _now: datetime) -> None:
        """A meter entity's value holds until it changes: sample it on the meter's interval."""
        self._reading()
        self._schedule_sample()

    @callback
    def _reading(self) -> None:
        """A meter reading, good or failed."""
        now, meter = dt_util.utcnow(), self.data.meter
        if self._source == SOURCE_REGISTER:
            self._counter.add(now, meter.latest_kwh)
        else:
            self._integrator.max_gap = max_gap(meter.interval)
            self._integrator.add(now, meter.latest_kw)
        self.async_write_ha_state()

    @property
    def _total(self) -> float | None:
        if self._source == SOURCE_REGISTER:
            return self._counter.total_kwh
        return self._integrator.total_kwh

    @property
    def available(self) -> bool:
        """Available once there is a total: a failed reading leaves the total as it was."""
        return super().available and self._total is not None

    @property
    def native_value(self) -> float | None:
        """The energy imported, in kWh."""
        total = self._total
        return None if total is None else round(total, 6)

    @property
    def extra_restore_state_data(self) -> GridEnergyStoredData:
        """The total and the tracker's state, kept across a restart."""
        tracker = (
            self._counter.as_dict()
            if self._source == SOURCE_REGISTER
            else self._integrator.as_dict()
        )
        return GridEnergyStoredData(
            self.native_value, self.native_unit_of_measurement, self._source, tracker
        )
