"""A plain openleadr VEN that records what the simulated VTN sends it (poll 1 s)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from openleadr import OpenADRClient

VEN_NAME = "test-building"


class Ven:
    """An openleadr VEN that records what it receives."""

    def __init__(self, url: str, name: str = VEN_NAME, **kwargs: Any) -> None:
        self.client = OpenADRClient(ven_name=name, vtn_url=url, show_fingerprint=False, **kwargs)
        self.new: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.opt = "optIn"
        self.client.add_handler("on_event", self._on_event)
        self.client.add_handler("on_update_event", self._on_update)
        self.client.add_hook("after_parse_xml", self._after_parse)

    async def _on_event(self, event: dict[str, Any]) -> str:
        self.new.append(event)
        return self.opt

    async def _on_update(self, event: dict[str, Any]) -> str:
        self.updates.append(event)
        return self.opt

    def _after_parse(self, message_type: str, payload: dict[str, Any]) -> None:
        self.messages.append((message_type, payload))

    async def run(self) -> bool:
        """Register and start polling; return whether registration succeeded."""
        await asyncio.wait_for(self.client.run(), 15)
        return self.client.registration_id is not None

    async def stop(self) -> None:
        """Stop without leaving APScheduler jobs, report workers or sessions behind."""
        client = self.client
        if client.scheduler.running:
            client.scheduler.pause()
            pending = list(client.scheduler._executors["default"]._pending_futures)
            await asyncio.gather(*pending, return_exceptions=True)
            client.scheduler.shutdown(wait=False)
        workers = [
            task
            for task in asyncio.all_tasks()
            if getattr(task.get_coro(), "__qualname__", "").endswith("_report_queue_worker")
        ]
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if client.client_session is not None:
            await client.client_session.close()


VenFactory = Callable[..., Awaitable[Ven]]
