"""``python -m demo.hass_launcher``: Home Assistant without mDNS name resolution.

Home Assistant's shared HTTP client resolves ``.local`` names over mDNS through a zeroconf
instance, which binds UDP 5353 on every interface and joins the mDNS multicast group as soon
as any integration creates a client session (analytics does at start-up), even without the
zeroconf integration. The demo keeps every socket on loopback and reaches only IP literals,
so its Home Assistant uses the system resolver instead. Everything else is Home Assistant's
own ``python -m homeassistant`` with the same arguments.
"""

from __future__ import annotations

import sys

import homeassistant.helpers.aiohttp_client as ha_client
from aiohttp.resolver import ThreadedResolver
from homeassistant.__main__ import main
from homeassistant.core import HomeAssistant

RESOLVER_FACTORY = "_async_make_resolver"


def _system_resolver(hass: HomeAssistant) -> ThreadedResolver:
    return ThreadedResolver()


def run() -> int:
    """Run Home Assistant (arguments from the command line); its exit code."""
    if hasattr(ha_client, RESOLVER_FACTORY):
        ha_client._async_make_resolver = _system_resolver  # type: ignore[assignment]
    else:  # a Home Assistant without that hook needs no patch (or another one): say so
        print(f"hass_launcher: {RESOLVER_FACTORY} not found; mDNS stays on", file=sys.stderr)
    return main()


if __name__ == "__main__":
    sys.exit(run())
