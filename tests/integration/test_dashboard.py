"""The operator dashboard of a loaded entry, built by the ``loadshed_ven.dashboard`` action."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.template import Template
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven.const import (
    CONF_SWITCHES,
    DOMAIN,
    SWITCHES_PER_CONTROLLER,
    SWITCHES_PER_POINT,
)
from custom_components.loadshed_ven.dashboard import INLINE_POINTS, build_dashboard
from sim.building import SimBuilding

from .conftest import (
    ALL_DEVICES,
    IP_DEVICES,
    SETPOINT,
    VEN_NAME,
    entry_data,
    point_dicts,
    point_key,
    slot,
    start_entry,
    wait_for,
)


async def _dashboard(hass: HomeAssistant, entry_id: str) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN,
        "dashboard",
        {"config_entry_id": entry_id},
        blocking=True,
        return_response=True,
    )
    assert isinstance(response, dict)
    return response


def _by_unique_id(hass: HomeAssistant, entry: MockConfigEntry, platform: str, key: str) -> str:
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{entry.entry_id}_{key}")
    assert found is not None, key
    return found


def _entities_in(card: dict[str, Any]) -> list[str]:
    """Every entity id a card (or section) shows, however it is nested."""
    found: list[str] = []
    if isinstance(card.get("entity"), str):
        found.append(card["entity"])
    found.extend(row if isinstance(row, str) else row["entity"] for row in card.get("entities", []))
    for inner in card.get("cards", []):
        found.extend(_entities_in(inner))
    return found


def _cards(view: dict[str, Any]) -> list[dict[str, Any]]:
    """The top-level cards of every section, in order."""
    return [card for section in view["sections"] for card in section["cards"]]


async def test_every_override_switch_is_shown_under_its_controller(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    dashboard = await _dashboard(hass, entry.entry_id)

    (view,) = dashboard["views"]
    assert view["path"] == f"loadshed-{VEN_NAME}"
    assert view["type"] == "sections"
    controller_cards = {
        heading["heading"]: card
        for heading, card in (section["cards"] for section in view["sections"][3:])
    }
    # One section per controller, in address order, headed by the device's name.
    assert list(controller_cards) == [f"BACnet controller {a}" for a in ALL_DEVICES]

    devices = dr.async_get(hass)
    expected: dict[str, set[str]] = {}
    for point in point_dicts():
        switch = _by_unique_id(
            hass, entry, "switch", f"{point['address']}/{point['object_type']},{point['instance']}"
        )
        entity = er.async_get(hass).async_get(switch)
        assert entity is not None
        assert entity.device_id is not None
        device = devices.async_get(entity.device_id)
        assert device is not None
        expected.setdefault(device.name or "", set()).add(switch)
    shown = {title: set(_entities_in(card)) for title, card in controller_cards.items()}
    assert shown == expected
    # The first controller holds two points, named without the controller's name.
    first = controller_cards[f"BACnet controller {IP_DEVICES[0]}"]
    assert sorted(row["name"] for row in first["entities"]) == [
        "Shed enable",
        f"Zone setpoint {IP_DEVICES[0]}",
    ]
    assert all(card["type"] == "entities" for card in controller_cards.values())
    assert all(not card["show_header_toggle"] for card in controller_cards.values())


async def test_status_meter_and_buttons_are_on_the_dashboard(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    (view,) = (await _dashboard(hass, entry.entry_id))["views"]
    everything = [e for section in view["sections"] for e in _entities_in(section)]

    heading, status, stack = view["sections"][0]["cards"]
    assert heading == {"type": "heading", "heading": VEN_NAME, "icon": "mdi:transmission-tower"}
    rows = {row["entity"]: row for row in status["entities"]}
    for key in ("adr_level", "event_status", "event_start", "event_end"):
        assert _by_unique_id(hass, entry, "sensor", key) in rows
    # The event's start and end count down rather than show a date.
    assert rows[_by_unique_id(hass, entry, "sensor", "event_start")]["format"] == "relative"
    assert rows[_by_unique_id(hass, entry, "sensor", "event_end")]["format"] == "relative"
    assert _by_unique_id(hass, entry, "switch", "participation") in rows
    # Rows are named without the VEN's name, which heads the section.
    assert rows[_by_unique_id(hass, entry, "sensor", "adr_level")]["name"] == "ADR signal level"

    for key in ("shed_now", "release_all", "opt_out"):
        button = _by_unique_id(hass, entry, "button", key)
        assert everything.count(button) == 1
    assert stack["type"] == "horizontal-stack"
    for card in stack["cards"]:
        assert card["tap_action"]["perform_action"] == "button.press"
        assert card["tap_action"]["target"] == {"entity_id": card["entity"]}
        assert card["tap_action"]["confirmation"] is True

    meter = _by_unique_id(hass, entry, "sensor", "meter_power")
    (graph,) = [card for card in _cards(view) if card["type"] == "history-graph"]
    assert meter in [row["entity"] for row in graph["entities"]]
    # kW saved and energy avoided appear when the entry has them; nothing dangles otherwise.
    registry = er.async_get(hass)
    for key in ("kw_saved", "energy_avoided"):
        found = registry.async_get_entity_id("sensor", DOMAIN, f"{entry.entry_id}_{key}")
        assert (found in everything) is (found is not None)
    assert all(hass.states.get(e) is not None for e in everything)


async def test_missing_entities_are_left_out(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    registry = er.async_get(hass)
    registry.async_remove(_by_unique_id(hass, entry, "sensor", "event_start"))
    registry.async_remove(_by_unique_id(hass, entry, "button", "shed_now"))

    (view,) = build_dashboard(entry.entry_id, entry.title, registry, dr.async_get(hass))["views"]

    everything = [e for section in view["sections"] for e in _entities_in(section)]
    assert all(registry.async_get(e) is not None for e in everything)
    (stack,) = [card for card in _cards(view) if card["type"] == "horizontal-stack"]
    assert len(stack["cards"]) == 2


async def test_unknown_entry_is_refused(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await _dashboard(hass, "no-such-entry")
    assert err.value.translation_key == "invalid_config_entry"


def _summary(view: dict[str, Any]) -> dict[str, Any]:
    (section,) = [s for s in view["sections"] if s["cards"][0].get("heading") == "Override points"]
    return section


async def test_summary_counts_points_and_lists_the_failed_ones(
    hass: HomeAssistant, building: SimBuilding, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    (view,) = (await _dashboard(hass, entry.entry_id))["views"]
    _, markdown, failed = _summary(view)["cards"]
    assert failed["type"] == "entity-filter"
    assert failed["state_filter"] == [{"attribute": "status", "operator": "==", "value": "failed"}]
    assert len(failed["entities"]) == len(point_dicts())
    template = Template(markdown["content"], hass)
    assert "| 0 | 0 | 0 | **0** | 5 |" in template.async_render()

    building.bacnet.device(IP_DEVICES[2]).offline = True
    building.vtn.add_event(level=1, duration=timedelta(minutes=30))
    switch = _by_unique_id(hass, entry, "switch", point_key(IP_DEVICES[2]))

    def failed_shown() -> bool:
        state = hass.states.get(switch)
        return state is not None and state.attributes["status"] == "failed"

    await wait_for(failed_shown, what="the failed write")
    await wait_for(lambda: slot(building, IP_DEVICES[1], SETPOINT, 10) == 78.0, what="shed")
    rendered = template.async_render()
    assert "| 4 | 0 | 0 | **1** | 0 |" in rendered
    # The failed point by its full name, and why.
    name = hass.states.get(switch).name  # type: ignore[union-attr]
    assert f"| {name} | offline" in rendered


def _many_points(count: int) -> list[dict[str, Any]]:
    return [
        {
            "address": IP_DEVICES[n % len(IP_DEVICES)],
            "object_type": "analog-value",
            "instance": 1000 + n,
            "priority": 10,
            "values": [78.0, 80.0, 82.0],
            "name": f"Zone {n}",
        }
        for n in range(count)
    ]


@pytest.mark.parametrize("mode", [SWITCHES_PER_POINT, SWITCHES_PER_CONTROLLER])
async def test_a_big_building_lists_controllers_that_open_their_points(
    hass: HomeAssistant, building: SimBuilding, mode: str
) -> None:
    points = INLINE_POINTS + 50
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=VEN_NAME,
        data={**entry_data(building), "points": _many_points(points)},
        options={CONF_SWITCHES: mode},
        unique_id=f"{building.vtn.url.lower()}|{VEN_NAME}",
    )
    entry.add_to_hass(hass)
    await start_entry(hass, entry)
    try:
        main, *subviews = (await _dashboard(hass, entry.entry_id))["views"]
        registry = er.async_get(hass)
        switches = {
            e.entity_id
            for e in er.async_entries_for_config_entry(registry, entry.entry_id)
            if e.domain == "switch" and not e.unique_id.endswith("participation")
        }
        after = main["sections"].index(_summary(main)) + 1
        controllers = [
            row
            for section in main["sections"][after:]
            for card in section["cards"]
            if card["type"] == "entities"
            for row in card["entities"]
        ]
        names = [f"BACnet controller {a}" for a in IP_DEVICES]
        assert [row["name"] for row in controllers] == names
        (failed,) = [c for c in _cards(main) if c["type"] == "entity-filter"]
        assert {row["entity"] for row in failed["entities"]} == switches
        if mode == SWITCHES_PER_CONTROLLER:
            # The controller's own switch is its row; there is nothing to open.
            assert subviews == []
            assert len(switches) == len(IP_DEVICES)
            assert {row["entity"] for row in controllers} == switches
            assert failed["state_filter"] == [{"attribute": "failed", "operator": ">", "value": 0}]
            return
        # Each row opens its controller's subview (a relative path), holding its points.
        assert len(switches) == points
        paths = {view["path"]: view for view in subviews}
        shown: list[str] = []
        for row in controllers:
            subview = paths[row["tap_action"]["navigation_path"]]
            assert subview["subview"] is True
            assert subview["sections"][0]["cards"][0]["heading"] == row["name"]
            shown.extend(_entities_in(subview["sections"][0]))
        assert sorted(shown) == sorted(switches)
    finally:
        assert await hass.config_entries.async_unload(entry.entry_id)
