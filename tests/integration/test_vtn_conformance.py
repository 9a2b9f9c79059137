"""The event life cycle against a VTN that behaves like the ones in the field.

Production VTNs keep cancelled and completed events in their oadrDistributeEvent for a while,
list several events in one message, and may number everything with digits only. The simulated
VTN does all of that here (``keep_listed``, ``distribute_every_poll``, ``digit_ids``, an all-digit
vtnID) while Home Assistant runs the entry. Every assertion reads the simulated controllers'
priority arrays or what the VTN received: a good event is shed and answered optIn, never optOut,
whatever else the same message lists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from sim.building import SimBuilding
from sim.vtn import OptRecord

from .conftest import VEN_NAME, setpoints, start_entry, wait_for

KEEP_LISTED = timedelta(minutes=5)
LONG = timedelta(minutes=30)
# Far less than openleadr's 300 s clean-up, after which a blinded VEN would recover by itself.
PROMPT = 10.0


@pytest.fixture
def field_vtn(building: SimBuilding) -> SimBuilding:
    """The building, its VTN keeping cancelled and completed events listed for 5 minutes."""
    building.vtn.keep_listed = KEEP_LISTED
    return building


def _at(building: SimBuilding, value: float | None) -> Callable[[], bool]:
    return lambda: setpoints(building) == [value] * 4


def _opts(building: SimBuilding, event_id: str) -> list[OptRecord]:
    ven_id = building.vtn.ven_id_for(VEN_NAME)
    return [o for o in building.vtn.opts if o.ven_id == ven_id and o.event_id == event_id]


def _answered(building: SimBuilding, event_id: str, number: int = 0) -> Callable[[], bool]:
    return lambda: any(o.modification_number == number for o in _opts(building, event_id))


def _opted_in(building: SimBuilding, event_id: str) -> None:
    """The VEN took part in the event and never opted out of it (nor of its cancellation)."""
    opts = _opts(building, event_id)
    assert opts, f"the VTN got no answer to {event_id}"
    assert opts[0].opt_type == "optIn", opts
    assert "optOut" not in {o.opt_type for o in opts}, opts


async def _shed_then_cancel(building: SimBuilding, level: int = 1) -> str:
    """An event shed, then cancelled and released: it stays listed as cancelled."""
    event_id = building.vtn.add_event(level=level, duration=LONG)
    await wait_for(_at(building, 76.0 + 2 * level), what=f"level {level}")
    building.vtn.cancel_event(event_id)
    await wait_for(_at(building, None), timeout=PROMPT, what="release after the cancel")
    await wait_for(_answered(building, event_id, 1), what="the cancel answered")
    return event_id


async def test_shed_modify_cancel_while_ended_events_stay_listed(
    field_vtn: SimBuilding, init_integration: MockConfigEntry
) -> None:
    building = field_vtn
    event_id = building.vtn.add_event(level=1, duration=LONG)
    await wait_for(_at(building, 78.0), what="level 1")
    building.vtn.modify_event(event_id, level=3)
    await wait_for(_at(building, 82.0), what="level 3 after the modification")
    building.vtn.cancel_event(event_id)
    await wait_for(_at(building, None), timeout=PROMPT, what="release after the cancel")
    await wait_for(_answered(building, event_id, 2), what="the cancel answered")
    _opted_in(building, event_id)
    assert building.vtn.events()[0]["status"] == "cancelled"


async def test_cancelled_event_relisted_does_not_block_new_event(
    field_vtn: SimBuilding, init_integration: MockConfigEntry
) -> None:
    building = field_vtn
    old = await _shed_then_cancel(building)
    new = building.vtn.add_event(level=2, duration=LONG)  # listed next to the cancelled one
    await wait_for(_at(building, 80.0), timeout=PROMPT, what="the new event shed")
    await wait_for(_answered(building, new), what="the new event answered")
    _opted_in(building, new)
    _opted_in(building, old)
    # The next cancel is heard at once too, although both are now listed as cancelled.
    building.vtn.cancel_event(new)
    await wait_for(_at(building, None), timeout=PROMPT, what="release after the second cancel")


async def test_completed_event_relisted_does_not_block_new_event(
    field_vtn: SimBuilding, init_integration: MockConfigEntry
) -> None:
    building = field_vtn
    short = building.vtn.add_event(level=1, duration=timedelta(seconds=4))
    await wait_for(_at(building, 78.0), what="the short event shed")
    await wait_for(_at(building, None), timeout=PROMPT, what="release at its end")
    await wait_for(lambda: building.vtn.events()[0]["status"] == "completed", what="completed")
    new = building.vtn.add_event(level=3, duration=LONG)  # listed next to the completed one
    await wait_for(_at(building, 82.0), timeout=PROMPT, what="the new event shed")
    await wait_for(_answered(building, new), what="the new event answered")
    _opted_in(building, new)
    _opted_in(building, short)
    # The completed event is listed once more next to the cancellation, which is heard at once.
    building.vtn.cancel_event(new)
    await wait_for(_at(building, None), timeout=PROMPT, what="release after the cancel")


async def test_implied_cancel_while_a_cancelled_event_stays_listed(
    field_vtn: SimBuilding, init_integration: MockConfigEntry
) -> None:
    building = field_vtn
    await _shed_then_cancel(building)
    gone = building.vtn.add_event(level=1, duration=LONG)
    await wait_for(_at(building, 78.0), timeout=PROMPT, what="shed")
    building.vtn.remove_event(gone)  # the cancelled one is still listed: the list is not empty
    await wait_for(_at(building, None), timeout=PROMPT, what="release after the removal")


async def test_several_events_in_one_message_are_each_handled(
    field_vtn: SimBuilding, init_integration: MockConfigEntry
) -> None:
    building = field_vtn
    cancelled = await _shed_then_cancel(building, level=3)
    start = datetime.now(UTC) + timedelta(seconds=4)
    # Added without awaiting in between: one oadrDistributeEvent lists all of them.
    now = building.vtn.add_event(level=1, duration=LONG)
    later = building.vtn.add_event(level=2, duration=timedelta(seconds=4), start=start)
    far = building.vtn.add_event(level=3, duration=LONG, start=start + timedelta(hours=2))
    await wait_for(_at(building, 78.0), timeout=PROMPT, what="the event active now")
    await wait_for(_at(building, 80.0), timeout=PROMPT, what="the higher level when it starts")
    assert datetime.now(UTC) >= start
    await wait_for(_at(building, 78.0), timeout=PROMPT, what="back to level 1 after it")
    for event_id in (now, later, far, cancelled):
        await wait_for(_answered(building, event_id), what=f"{event_id} answered")
        _opted_in(building, event_id)


async def test_every_poll_relisting_sheds_once_and_hears_the_cancel(
    field_vtn: SimBuilding, init_integration: MockConfigEntry
) -> None:
    building = field_vtn
    building.vtn.distribute_every_poll = True
    await _shed_then_cancel(building)
    event_id = building.vtn.add_event(level=2, duration=LONG)
    await wait_for(_at(building, 80.0), timeout=PROMPT, what="shed")
    await wait_for(_answered(building, event_id), what="answered")
    await asyncio.sleep(2.5)  # the same list again on two or three polls
    assert setpoints(building) == [80.0] * 4
    _opted_in(building, event_id)
    building.vtn.cancel_event(event_id)
    await wait_for(_at(building, None), timeout=PROMPT, what="release after the cancel")


async def test_digit_only_vtn_id_and_event_ids_are_shed(
    hass: HomeAssistant, field_vtn: SimBuilding, added_entry: MockConfigEntry
) -> None:
    building = field_vtn
    vtn = building.vtn
    # Restarted on the same port with an all-digit vtnID, numbering its events with digits.
    await vtn.stop()
    vtn.vtn_id, vtn.digit_ids = "12345", True
    await vtn.start()
    await start_entry(hass, added_entry)
    old = await _shed_then_cancel(building)
    assert old.isdigit()
    new = vtn.add_event(level=2, duration=LONG)
    await wait_for(_at(building, 80.0), timeout=PROMPT, what="the new event shed")
    await wait_for(_answered(building, new), what="the new event answered")
    _opted_in(building, new)
    _opted_in(building, old)
