"""A set-up that fails part way leaves nothing running: no BACnet stack, no meter polling."""

from __future__ import annotations

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.loadshed_ven import entry_setup
from custom_components.loadshed_ven.data import stack_registry
from sim.building import SimBuilding


async def test_failed_set_up_frees_the_stack_and_stops_the_meter(
    hass: HomeAssistant,
    building: SimBuilding,
    mock_config_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The disk refusing the TLS files (a fault not produced for real here) fails the set-up."""

    async def disk_full(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(entry_setup.tls, "async_write_entry_files", disk_full)
    mock_config_entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    assert len(stack_registry(hass)) == 0  # the BACnet port is free for the next try
    # The meter stopped too: a poll timer left behind fails the test as a lingering timer.
