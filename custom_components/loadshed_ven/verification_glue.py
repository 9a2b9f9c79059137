"""Feeds the building meter's readings to the runtime's shed verifier and tells its sensors.

The runtime marks each shed's start and end (see ``engine/verification.py``); this module adds
every meter reading, good or failed, as the meter coordinator delivers it. It is attached once per
loaded entry, whether or not the verification sensors are enabled.
"""

from __future__ import annotations

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .coordinator import LoadshedConfigEntry


def verification_signal(entry_id: str) -> str:
    """The dispatcher signal sent after each meter reading of the entry has been added."""
    return f"{DOMAIN}_{entry_id}_verification"


@callback
def async_feed_meter_readings(hass: HomeAssistant, entry: LoadshedConfigEntry) -> None:
    """Add the meter's current reading now and every later one, until the entry unloads."""
    meter = entry.runtime_data.meter
    verifier = entry.runtime_data.runtime.verification
    signal = verification_signal(entry.entry_id)

    @callback
    def _add_reading() -> None:
        # latest_kw is None after a failed read: a gap, never a made-up value.
        verifier.add_reading(dt_util.utcnow(), meter.latest_kw)
        async_dispatcher_send(hass, signal)

    _add_reading()  # the first refresh ran during set-up, before any listener
    entry.async_on_unload(meter.async_add_listener(_add_reading))
