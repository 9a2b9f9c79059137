"""The operator dashboard of one VEN, as a Lovelace view built from the registries.

:func:`build_dashboard` reads only the entity and device registries, so the same view can be
built for a running entry, pasted into any dashboard's raw configuration editor (through the
``loadshed_ven.dashboard`` action) or saved as a dashboard by a script. Entities are found by
unique id, never by entity id, so renamed entities keep working; entities that do not exist
(for example a sensor added by a later version) are left out.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, Final

from homeassistant.const import Platform
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.util import slugify

from .const import DOMAIN
from .unique_ids import PARTICIPATION, unique_id

type Card = dict[str, Any]

# (platform, unique id suffix) of the entities on the status card, in display order.
STATUS_ENTITIES: Final = (
    (Platform.SENSOR, "adr_level"),
    (Platform.SENSOR, "event_status"),
    (Platform.SENSOR, "event_start"),
    (Platform.SENSOR, "event_end"),
    (Platform.BINARY_SENSOR, "shed_active"),
    (Platform.SWITCH, PARTICIPATION),
    (Platform.BINARY_SENSOR, "vtn_connected"),
)
# Timestamps shown as a countdown ("in 4 minutes") rather than a date.
RELATIVE_TIME: Final = frozenset({"event_start", "event_end"})
METER_ENTITIES: Final = (
    (Platform.SENSOR, "meter_power"),
    (Platform.SENSOR, "kw_saved"),
    (Platform.SENSOR, "energy_avoided"),
)
# Drawn on the history graph: both are power in kW.
GRAPHED: Final = ("meter_power", "kw_saved")
BUTTONS: Final = ("shed_now", "release_all", "opt_out")
GRAPH_HOURS: Final = 2
# The status section, then the meter section twice as wide: three columns make a full row.
MAX_COLUMNS: Final = 3
FULL_WIDTH: Final = {"columns": "full"}


def build_dashboard(
    entry_id: str, title: str, entities: er.EntityRegistry, devices: dr.DeviceRegistry
) -> dict[str, Any]:
    """The dashboard configuration ``{"views": [view]}`` of the entry ``entry_id``.

    A sections view: the VEN's status (signal level, event status, countdowns to the event's
    start and end, participation) with buttons for shed now, release all and opt out; the
    meter with the kW saved and a history graph; then one section per BACnet controller with
    its override switches, in address order.
    """

    def row(platform: Platform, key: str) -> Card | None:
        found = entities.async_get_entity_id(platform, DOMAIN, unique_id(entry_id, key))
        entity = entities.async_get(found) if found else None
        if entity is None:
            return None
        card = _row(entity)
        if key in RELATIVE_TIME:
            card["format"] = "relative"
        return card

    status = [found for platform, key in STATUS_ENTITIES if (found := row(platform, key))]
    buttons = [found for key in BUTTONS if (found := row(Platform.BUTTON, key))]
    meter = {key: found for platform, key in METER_ENTITIES if (found := row(platform, key))}

    sections: list[Card] = []
    if status or buttons:
        cards = [_heading(title, "mdi:transmission-tower")]
        if status:
            cards.append(_entities_card(status))
        if buttons:
            cards.append({"type": "horizontal-stack", "cards": [_button_card(b) for b in buttons]})
        sections.append({"type": "grid", "cards": cards})
    if meter:
        meter_entity = entities.async_get(next(iter(meter.values()))["entity"])
        cards = [_heading(_device_name(devices, meter_entity) or title, "mdi:meter-electric")]
        cards.append({**_entities_card(list(meter.values())), "grid_options": FULL_WIDTH})
        if graphed := [meter[key] for key in GRAPHED if key in meter]:
            cards.append(
                {
                    "type": "history-graph",
                    "hours_to_show": GRAPH_HOURS,
                    "entities": graphed,
                    "grid_options": FULL_WIDTH,
                }
            )
        sections.append({"type": "grid", "column_span": 2, "cards": cards})
    sections.extend(_controller_sections(entry_id, entities, devices))
    view: dict[str, Any] = {
        "title": title,
        "path": f"loadshed-{slugify(title, separator='-') or entry_id}",
        "icon": "mdi:transmission-tower",
        "type": "sections",
        "max_columns": MAX_COLUMNS,
        "sections": sections,
    }
    return {"views": [view]}


def override_switches(entry_id: str, entities: er.EntityRegistry) -> list[er.RegistryEntry]:
    """The enabled override switches of the entry (every switch but participation)."""
    participation = unique_id(entry_id, PARTICIPATION)
    return [
        entity
        for entity in er.async_entries_for_config_entry(entities, entry_id)
        if entity.domain == Platform.SWITCH
        and entity.unique_id != participation
        and entity.disabled_by is None
    ]


def _controller_sections(
    entry_id: str, entities: er.EntityRegistry, devices: dr.DeviceRegistry
) -> list[Card]:
    """One section per controller, in address order: its name, then its switches by name."""
    by_device: defaultdict[str, list[er.RegistryEntry]] = defaultdict(list)
    for entity in override_switches(entry_id, entities):
        by_device[_device_name(devices, entity) or ""].append(entity)
    sections = []
    for name in sorted(by_device, key=_natural_key):
        switches = sorted(by_device[name], key=lambda e: _natural_key(_row(e).get("name", "")))
        rows = [{**_row(switch), "secondary_info": "last-changed"} for switch in switches]
        cards = [_heading(name, "mdi:hvac")] if name else []
        cards.append(_entities_card(rows))
        sections.append({"type": "grid", "cards": cards})
    return sections


def _row(entity: er.RegistryEntry) -> Card:
    """An entities-card row, named without the device's name (the section's heading)."""
    row: Card = {"entity": entity.entity_id}
    if name := entity.name or entity.original_name:
        row["name"] = name
    return row


def _entities_card(rows: list[Card]) -> Card:
    # No header toggle: one tap must never write or release every point of a card.
    return {"type": "entities", "state_color": True, "show_header_toggle": False, "entities": rows}


def _heading(text: str, icon: str) -> Card:
    return {"type": "heading", "heading": text, "icon": icon}


def _button_card(button_row: Card) -> Card:
    """A button that presses the row's entity after the operator confirms."""
    entity = button_row["entity"]
    return {
        **button_row,
        "type": "button",
        "show_state": False,
        "tap_action": {
            "action": "perform-action",
            "perform_action": "button.press",
            "target": {"entity_id": entity},
            "confirmation": True,
        },
    }


def _device_name(devices: dr.DeviceRegistry, entity: er.RegistryEntry | None) -> str | None:
    device = devices.async_get(entity.device_id) if entity and entity.device_id else None
    return (device.name_by_user or device.name) if device else None


def _natural_key(text: str) -> list[tuple[int, int | str]]:
    """Sort ``127.0.0.10`` after ``127.0.0.9``, and names with numbers likewise."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text)]
