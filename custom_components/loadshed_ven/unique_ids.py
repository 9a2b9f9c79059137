"""The one spelling of every unique id a config entry registers: entities and devices.

Unique ids are what the entity and device registries, the dashboard and users' automations
hold on to across restarts and renames: they must never change shape.
"""

from __future__ import annotations

from typing import Final

# The keys of entities that are not described by an entity description.
PARTICIPATION: Final = "participation"
METER_POWER: Final = "meter_power"
ACTIVITY: Final = "activity"


def unique_id(entry_id: str, key: str) -> str:
    """The unique id of the entry's entity ``key`` (a description key or a point key)."""
    return f"{entry_id}_{key}"


def meter_device_id(entry_id: str) -> str:
    """The device identifier of the building meter."""
    return unique_id(entry_id, "meter")


def controller_device_prefix(entry_id: str) -> str:
    """What every BACnet controller's device identifier of the entry starts with."""
    return unique_id(entry_id, "bacnet_")


def controller_device_id(entry_id: str, address: str) -> str:
    """The device identifier of the BACnet controller at ``address``."""
    return f"{controller_device_prefix(entry_id)}{address}"
