"""A site of simulated controllers behind one network device (a BBMD or a router)."""

from __future__ import annotations

from typing import Protocol

from sim.bacnet_device import SimBacnetDevice


class _Hub(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class HubSite:
    """Controllers reached through ``hub``: the hub starts first and stops last."""

    devices: list[SimBacnetDevice]

    @property
    def hub(self) -> _Hub:
        """The BBMD or router the controllers are reached through."""
        raise NotImplementedError

    async def start(self) -> None:
        """Start the hub and every controller; on failure nothing stays running."""
        try:
            await self.hub.start()
            for device in self.devices:
                await device.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop every controller and the hub."""
        for device in self.devices:
            await device.stop()
        await self.hub.stop()
