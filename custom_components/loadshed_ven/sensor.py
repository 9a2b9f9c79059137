"""Sensors: the ADR level, the event in force and the building meter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import UnitOfPower
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .coordinator import LoadshedConfigEntry, MeterCoordinator
from .entity import LoadshedPushEntity, meter_device_info, ven_device_info
from .runtime import LoadshedRuntime

# Push entities and a coordinator entity: nothing to throttle.
PARALLEL_UPDATES = 0

EVENT_STATUSES = ["none", "scheduled", "active", "completed", "cancelled", "opted_out"]

type SensorValue = int | str | datetime | None


@dataclass(frozen=True, kw_only=True)
class LoadshedSensorDescription(SensorEntityDescription):
    """A sensor whose value is read from the runtime."""

    value_fn: Callable[[LoadshedRuntime], SensorValue]


def _event_status(runtime: LoadshedRuntime) -> str:
    view = runtime.current_event()
    return "none" if view is None else view.status


def _event_start(runtime: LoadshedRuntime) -> datetime | None:
    view = runtime.current_event()
    return None if view is None else view.start


def _event_end(runtime: LoadshedRuntime) -> datetime | None:
    view = runtime.current_event()
    return None if view is None else view.end


def _event_id(runtime: LoadshedRuntime) -> str | None:
    view = runtime.current_event()
    return None if view is None else view.event_id


SENSORS: tuple[LoadshedSensorDescription, ...] = (
    LoadshedSensorDescription(
        key="adr_level",
        translation_key="adr_level",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda runtime: runtime.level,
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

METER_POWER = SensorEntityDescription(
    key="meter_power",
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
    entities.append(MeterPowerSensor(entry))
    async_add_entities(entities)


class LoadshedSensor(LoadshedPushEntity, SensorEntity):
    """A sensor pushed by the runtime."""

    entity_description: LoadshedSensorDescription

    @property
    def native_value(self) -> SensorValue:
        """The value read from the runtime now."""
        return self.entity_description.value_fn(self.runtime)


class MeterPowerSensor(CoordinatorEntity[MeterCoordinator], SensorEntity):
    """The building's demand in kW; unavailable while the meter cannot be read."""

    _attr_has_entity_name = True
    entity_description = METER_POWER

    def __init__(self, entry: LoadshedConfigEntry) -> None:
        """Attach to the entry's meter coordinator."""
        super().__init__(entry.runtime_data.meter)
        self._attr_unique_id = f"{entry.entry_id}_{METER_POWER.key}"
        self._attr_device_info = meter_device_info(entry)

    @property
    def native_value(self) -> float | None:
        """The last good reading (the entity is unavailable when the last read failed)."""
        return self.coordinator.latest_kw
