"""Buttons for the operator: shed now for an hour, release everything, opt out of the event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import Topic
from .data import LoadshedConfigEntry
from .entity import LoadshedEntity, ven_device_info
from .errors import raise_for_failures
from .operator_actions import OperatorActions

# Each press is a shed or release pass: one at a time.
PARALLEL_UPDATES = 1

SHED_NOW_DURATION: Final = timedelta(hours=1)


async def _shed_now(actions: OperatorActions, context: Context | None) -> None:
    report = await actions.shed(None, SHED_NOW_DURATION, context)
    raise_for_failures(report, "shed_failed")


async def _release_all(actions: OperatorActions, context: Context | None) -> None:
    report = await actions.release_all(context)
    raise_for_failures(report, "release_all_failed")


async def _opt_out(actions: OperatorActions, context: Context | None) -> None:
    await actions.opt_out(None, context)


@dataclass(frozen=True, kw_only=True)
class LoadshedButtonDescription(ButtonEntityDescription):
    """A button that runs one operator action."""

    press_fn: Callable[[OperatorActions, Context | None], Awaitable[None]]


BUTTONS: tuple[LoadshedButtonDescription, ...] = (
    LoadshedButtonDescription(key="shed_now", translation_key="shed_now", press_fn=_shed_now),
    LoadshedButtonDescription(
        key="release_all", translation_key="release_all", press_fn=_release_all
    ),
    LoadshedButtonDescription(key="opt_out", translation_key="opt_out", press_fn=_opt_out),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LoadshedConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the VEN's buttons."""
    ven = ven_device_info(entry)
    async_add_entities(
        LoadshedButton(entry, description.key, ven, description) for description in BUTTONS
    )


class LoadshedButton(LoadshedEntity, ButtonEntity):
    """One operator action."""

    entity_description: LoadshedButtonDescription
    topics = Topic.NONE  # a button's state is when it was last pressed

    async def async_press(self) -> None:
        """Run the action; failures surface as translated errors."""
        await self.entity_description.press_fn(self.data.actions, self._context)
