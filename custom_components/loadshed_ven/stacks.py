"""The one BACnet stack registry of a Home Assistant instance.

bacpypes3 allows one application per local IP and port, so every config entry (and the config
flow's checks) share stacks through this registry; the last user closes each stack, and HA's
shutdown closes whatever is left.
"""

from __future__ import annotations

from homeassistant.const import EVENT_HOMEASSISTANT_CLOSE
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.util.hass_dict import HassKey

from .bacnet.stack import StackRegistry
from .const import DOMAIN

_REGISTRY: HassKey[StackRegistry] = HassKey(f"{DOMAIN}_bacnet_stacks")


@callback
def stack_registry(hass: HomeAssistant) -> StackRegistry:
    """Return the registry, creating it (and its shutdown hook) on first use."""
    if (registry := hass.data.get(_REGISTRY)) is not None:
        return registry
    registry = hass.data[_REGISTRY] = StackRegistry()

    async def _close(_: Event) -> None:
        await registry.close_all()

    hass.bus.async_listen_once(EVENT_HOMEASSISTANT_CLOSE, _close)
    return registry
