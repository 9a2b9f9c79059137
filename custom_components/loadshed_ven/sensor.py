"""Sensors: the ADR level, the event in force, the building meter and what each shed saved."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import UnitOfEnergy, UnitOfPower
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import Topic
from .data import LoadshedConfigEntry, LoadshedData
from .engine.event_history import EventStatus
from .engine.verification import ShedVerification
from .entity import LoadshedEntity, meter_device_info, ven_device_info
from .grid_energy import GridEnergySensor
from .unique_ids import METER_POWER as METER_POWER_KEY

# Pushed by the coordinator: nothing to throttle.
PARALLEL_UPDATES = 0

NO_EVENT: Final = "none"
EVENT_STATUSES: Final = [NO_EVENT, *(str(status) for status in EventStatus)]

type SensorValue = int | str | datetime | None


@dataclass(frozen=True, kw_only=True)
class LoadshedSensorDescription(SensorEntityDescription):
    """A sensor whose value is read from the entry's runtime data."""

    value_fn: Callable[[LoadshedData], SensorValue]


def _event_status(data: LoadshedData) -> str:
    view = data.current_event()
    return NO_EVENT if view is None else str(view.status)


def _event_start(data: LoadshedData) -> datetime | None:
    view = data.current_event()
    return None if view is None else view.start


def _event_end(data: LoadshedData) -> datetime | None:
    view = data.current_event()
    return None if view is None else view.end


def _event_id(data: LoadshedData) -> str | None:
    view = data.current_event()
    # A state holds at most 255 characters; OpenADR event ids have no length limit.
    return None if view is None else view.event_id[:255]


SENSORS: tuple[LoadshedSensorDescription, ...] = (
    LoadshedSensorDescription(
        key="adr_level",
        translation_key="adr_level",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda data: data.level,
    ),
    LoadshedSensorDescription(
        key="event_status",
        translation_key="event_status",
        device_class=SensorDeviceClass.ENUM,
        options=EVENT_STATUSES,
        value_fn=_event_status,
    ),
    LoadshedSensorDescription(
        key="event_start",
        translation_key="event_start",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_event_start,
    ),
    LoadshedSensorDescription(
        key="event_end",
        translation_key="event_end",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_event_end,
    ),
    LoadshedSensorDescription(
        key="event_id",
        translation_key="event_id",
        value_fn=_event_id,
    ),
)


@dataclass(frozen=True, kw_only=True)
class VerificationSensorDescription(SensorEntityDescription):
    """A sensor whose value is read from the current (or last) shed's verification."""

    value_fn: Callable[[ShedVerification], float | None]


VERIFICATION_SENSORS: tuple[VerificationSensorDescription, ...] = (
    VerificationSensorDescription(
        key="kw_saved",
        translation_key="kw_saved",
        device_class=SensorDeviceClass.POWER,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfPower.KILO_WATT,
        suggested_display_precision=1,
        value_fn=lambda result: result.kw_saved,
    ),
    VerificationSensorDescription(
        key="energy_avoided",
        translation_key="energy_avoided",
        device_class=SensorDeviceClass.ENERGY,
        # No state class: a per-shed figure with no long-term statistics, so the Energy
        # dashboard never offers avoided energy as grid consumption (Grid energy is that).
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
        value_fn=lambda result: result.energy_kwh,
    ),
    VerificationSensorDescription(
        # The highest demand from the event's end to the release window's end plus settling.
        key="peak_after_release",
        translation_key="peak_after_release",
        device_class=SensorDeviceClass.POWER,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfPower.KILO_WATT,
        suggested_display_precision=1,
        value_fn=lambda result: result.peak_after_release_kw,
    ),
)

METER_POWER = SensorEntityDescription(
    key=METER_POWER_KEY,
    translation_key="meter_power",
    device_class=SensorDeviceClass.POWER,
    state_class=SensorStateClass.MEASUREMENT,
    native_unit_of_measurement=UnitOfPower.KILO_WATT,
    suggested_display_precision=1,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LoadshedConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the VEN's sensors and the meter's power sensor."""
    ven = ven_device_info(entry)
    entities: list[SensorEntity] = [
        LoadshedSensor(entry, description.key, ven, description) for description in SENSORS
    ]
    entities.append(MeterPowerSensor(entry, METER_POWER.key, meter_device_info(entry), METER_POWER))
    entities.append(GridEnergySensor(entry))
    entities.extend(
        ShedVerificationSensor(entry, description.key, ven, description)
        for description in VERIFICATION_SENSORS
    )
    async_add_entities(entities)


class LoadshedSensor(LoadshedEntity, SensorEntity):
    """A sensor of the VEN's state."""

    entity_description: LoadshedSensorDescription

    @property
    def native_value(self) -> SensorValue:
        """The value read from the runtime data now."""
        return self.entity_description.value_fn(self.data)


class MeterPowerSensor(LoadshedEntity, SensorEntity):
    """The building's demand in kW; unavailable while the meter cannot be read."""

    topics = Topic.METER

    @property
    def available(self) -> bool:
        """Unavailable while the last reading failed or was implausible."""
        return super().available and self.data.meter.last_update_success

    @property
    def native_value(self) -> float | None:
        """The last good reading."""
        return self.data.meter.latest_kw


# The attributes of both verification sensors (kept across a restart).
VERIFICATION_ATTRIBUTES: Final = ("baseline_kw", "event_id", "shed_started", "shed_ended")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class ShedVerificationSensor(LoadshedEntity, RestoreSensor):
    """kW saved or energy avoided by the shed in progress, else by the last one.

    Updated at every meter reading and every shed start or end. After a restart the last
    finished shed's value is shown again until the next shed starts.
    """

    entity_description: VerificationSensorDescription
    topics = Topic.STATE | Topic.METER
    _restored_value: float | None = None
    _restored_attributes: Mapping[str, Any] | None = None

    async def async_added_to_hass(self) -> None:
        """Restore the last finished shed."""
        await super().async_added_to_hass()
        state = await self.async_get_last_state()
        data = await self.async_get_last_sensor_data()
        # Only a finished shed is worth showing again: one in progress is over after a restart.
        if state is not None and data is not None and state.attributes.get("shed_ended"):
            value = data.native_value
            self._restored_value = value if isinstance(value, float | int) else None
            self._restored_attributes = {
                key: state.attributes.get(key) for key in VERIFICATION_ATTRIBUTES
            }

    @property
    def native_value(self) -> float | None:
        """The value for the current (or last) shed; unknown before the first one."""
        result = self.data.verification.current()
        if result is None:
            return self._restored_value
        return _rounded(self.entity_description.value_fn(result))

    @property
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        """The baseline and the shed measured."""
        result = self.data.verification.current()
        if result is None:
            return self._restored_attributes
        return {
            "baseline_kw": _rounded(result.baseline_kw),
            "event_id": result.event_id,
            "shed_started": _iso(result.started),
            "shed_ended": _iso(result.ended),
        }
