"""The operator dashboard of one VEN, as a Lovelace view built from the registries.

:func:`build_dashboard` reads only the entity and device registries, so the same view can be
built for a running entry, pasted into any dashboard's raw configuration editor (through the
``loadshed_ven.dashboard`` action) or saved as a dashboard by a script. Entities are found by
unique id, never by entity id, so renamed entities keep working; entities that do not exist
(for example a sensor added by a later version) are left out.

Up to :data:`INLINE_POINTS` override switches each controller gets a section on the view. A
bigger building gets a compact list of its controllers instead, each opening a subview with its
points, so the page stays short at thousands of points. Either way a summary section counts the
points by status and lists the failed ones with their reason and their switch.
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
from .switch import controller_key
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
# Up to this many point switches, each controller's section is on the view itself.
INLINE_POINTS: Final = 100
# Controllers per card of the compact list: cards flow into the view's columns.
CONTROLLERS_PER_CARD: Final = 25
# Failed points the summary names (the rest are counted).
LISTED_FAILED: Final = 20


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
    path = f"loadshed-{slugify(title, separator='-') or entry_id}"
    groups = _by_controller(entry_id, entities, devices)
    subviews: list[dict[str, Any]] = []
    if groups:
        sections.append(_summary_section(entry_id, groups))
        if _controller_switches(groups) or sum(map(len, groups.values())) > INLINE_POINTS:
            controllers, subviews = _controller_list(path, groups)
            sections.extend(controllers)
        else:
            sections.extend(_controller_sections(groups))
    view: dict[str, Any] = {
        "title": title,
        "path": path,
        "icon": "mdi:transmission-tower",
        "type": "sections",
        "max_columns": MAX_COLUMNS,
        "sections": sections,
    }
    return {"views": [view, *subviews]}


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


def _by_controller(
    entry_id: str, entities: er.EntityRegistry, devices: dr.DeviceRegistry
) -> dict[str, list[er.RegistryEntry]]:
    """The override switches by their controller's name, both in natural order."""
    by_device: defaultdict[str, list[er.RegistryEntry]] = defaultdict(list)
    for entity in override_switches(entry_id, entities):
        by_device[_device_name(devices, entity) or ""].append(entity)
    return {
        name: sorted(by_device[name], key=lambda e: _natural_key(_row(e).get("name", "")))
        for name in sorted(by_device, key=_natural_key)
    }


def _controller_switches(groups: dict[str, list[er.RegistryEntry]]) -> bool:
    """Whether the entry has one switch per controller (the ``switches`` option)."""
    return any(_is_controller_switch(e) for switches in groups.values() for e in switches)


def _is_controller_switch(entity: er.RegistryEntry) -> bool:
    return entity.unique_id.removeprefix(f"{entity.config_entry_id}_").startswith(
        controller_key("")
    )


def _controller_sections(groups: dict[str, list[er.RegistryEntry]]) -> list[Card]:
    """One section per controller: its name, then its switches."""
    sections = []
    for name, switches in groups.items():
        cards = [_heading(name, "mdi:hvac")] if name else []
        cards.append(_points_card(switches))
        sections.append({"type": "grid", "cards": cards})
    return sections


def _points_card(switches: list[er.RegistryEntry]) -> Card:
    return _entities_card(
        [{**_row(switch), "secondary_info": "last-changed"} for switch in switches]
    )


def _controller_list(
    path: str, groups: dict[str, list[er.RegistryEntry]]
) -> tuple[list[Card], list[dict[str, Any]]]:
    """A compact list of the controllers, and a subview per controller with its points.

    A controller's own switch (one per controller), or the switch of its only point, is its
    row; otherwise the row opens its subview. Subview paths are relative, so the view works in
    whichever dashboard it is put.
    """
    rows: list[Card] = []
    subviews: list[dict[str, Any]] = []
    taken: set[str] = set()
    for name, switches in groups.items():
        if len(switches) == 1:
            # The controller's own switch, or its only point's: one tap acts on it.
            rows.append({**_row(switches[0]), "name": name or _row(switches[0]).get("name", "")})
            continue
        subpath = f"{path}-{slugify(name, separator='-') or 'points'}"
        while subpath in taken:
            subpath += "-x"
        taken.add(subpath)
        rows.append(
            {
                "type": "button",
                "name": name,
                "icon": "mdi:hvac",
                "action_name": f"{len(switches)} points",  # never 1: that one is a switch
                "tap_action": {"action": "navigate", "navigation_path": subpath},
            }
        )
        cards = [_heading(name, "mdi:hvac")] if name else []
        cards.append(_points_card(switches))
        subviews.append(
            {
                "title": name or path,
                "path": subpath,
                "subview": True,
                "type": "sections",
                "max_columns": MAX_COLUMNS,
                "sections": [{"type": "grid", "cards": cards}],
            }
        )
    sections = []
    for start in range(0, len(rows), CONTROLLERS_PER_CARD):
        cards = [] if start else [_heading(f"Controllers ({len(groups)})", "mdi:hvac")]
        cards.append(_entities_card(rows[start : start + CONTROLLERS_PER_CARD]))
        sections.append({"type": "grid", "cards": cards})
    return sections, subviews


def _summary_section(entry_id: str, groups: dict[str, list[er.RegistryEntry]]) -> Card:
    """Points by status, and the failed ones: their reason (markdown) and their switches.

    The failed switches are on (their value may still be in the slot): turning one off
    releases the point, turning it on again writes it again.
    """
    # Named with their controller: the list mixes every controller's points.
    rows = [
        {**_row(e), "name": ": ".join(filter(None, (name, _row(e).get("name"))))}
        if not _is_controller_switch(e)
        else {**_row(e), "name": name or _row(e).get("name", "")}
        for name, group in groups.items()
        for e in group
    ]
    per_controller = _controller_switches(groups)
    failed = (
        {"attribute": "failed", "operator": ">", "value": 0}
        if per_controller
        else {"attribute": "status", "operator": "==", "value": "failed"}
    )
    return {
        "type": "grid",
        "cards": [
            _heading("Override points", "mdi:format-list-checks"),
            {"type": "markdown", "content": summary_template(entry_id)},
            {
                "type": "entity-filter",
                "entities": rows,
                "state_filter": [failed],
                "show_empty": False,
                "card": {
                    "type": "entities",
                    "title": "Failed points",
                    "state_color": True,
                    "show_header_toggle": False,
                },
            },
        ],
    }


def summary_template(entry_id: str) -> str:
    """A markdown template: the entry's points by status, and the failed ones with why.

    It walks ``states.switch`` (rendered at most once a second) and keeps the entry's override
    switches: a point's has ``status``, a controller's has the counts and ``failures``.
    """
    return (
        "{%- set ns = namespace(held=0, owned=0, pending=0, failed=0, released=0, listed=0,"
        " rows='') -%}\n"
        "{%- for s in states.switch if s.attributes.address is defined"
        f" and config_entry_id(s.entity_id) == '{entry_id}' -%}}\n"
        "{%- set a = s.attributes -%}\n"
        "{%- if a.status is defined -%}\n"
        "{%- set ns.held = ns.held + (a.status == 'held') | int -%}\n"
        "{%- set ns.owned = ns.owned + (a.status == 'owned') | int -%}\n"
        "{%- set ns.pending = ns.pending + (a.status == 'pending') | int -%}\n"
        "{%- set ns.released = ns.released + (a.status == 'released') | int -%}\n"
        "{%- if a.status == 'failed' -%}{%- set ns.failed = ns.failed + 1 -%}\n"
        f"{{%- if ns.listed < {LISTED_FAILED} -%}}"
        "{%- set ns.rows = ns.rows ~ '\n| ' ~ s.name ~ ' | ' ~ (a.detail or a.failure) ~ ' |' -%}"
        "{%- set ns.listed = ns.listed + 1 -%}{%- endif -%}{%- endif -%}\n"
        "{%- else -%}\n"
        "{%- set ns.held = ns.held + a.held | int -%}\n"
        "{%- set ns.owned = ns.owned + a.owned | int -%}\n"
        "{%- set ns.pending = ns.pending + a.pending | int -%}\n"
        "{%- set ns.released = ns.released + a.released | int -%}\n"
        "{%- set ns.failed = ns.failed + a.failed | int -%}\n"
        "{%- for point, why in (a.failures or {}).items() -%}\n"
        f"{{%- if ns.listed < {LISTED_FAILED} -%}}"
        "{%- set ns.rows = ns.rows ~ '\n| ' ~ s.name ~ ': ' ~ point ~ ' | ' ~ why ~ ' |' -%}"
        "{%- set ns.listed = ns.listed + 1 -%}{%- endif -%}\n"
        "{%- endfor -%}\n"
        "{%- endif -%}\n"
        "{%- endfor -%}\n"
        "| Held | Owned | Being written | Failed | Released |\n"
        "|:-:|:-:|:-:|:-:|:-:|\n"
        "| {{ ns.held }} | {{ ns.owned }} | {{ ns.pending }} | **{{ ns.failed }}** |"
        " {{ ns.released }} |\n"
        "{% if ns.failed %}\n\n"
        "| Failed point | Reason |\n|---|---|{{ ns.rows }}\n"
        "{% if ns.failed > ns.listed %}\n\n"
        "…and {{ ns.failed - ns.listed }} more.{% endif %}\n\n"
        "Their value may still be in the slot: turn a switch off to release the point, on to"
        " write it again.{% endif %}"
    )


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
