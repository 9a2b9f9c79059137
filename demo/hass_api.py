"""The parts of Home Assistant's REST and websocket APIs the demo uses, as a logged-in user."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Final

import aiohttp

REQUEST_TIMEOUT: Final = aiohttp.ClientTimeout(total=60)


class HassApiError(RuntimeError):
    """Home Assistant answered something the demo cannot go on from."""


class HassApi:
    """A client of one Home Assistant at ``base_url`` (``http://127.0.0.1:8123``)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        """Use ``session``; log in with :meth:`onboard_or_login` before anything else."""
        self._session = session
        self.base_url = base_url.rstrip("/")
        # The frontend's own client id: an auth code for it also logs a browser in.
        self.client_id = f"{self.base_url}/"
        self._token: str | None = None

    # ---- plumbing ---------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    async def _request(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        data: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201),
    ) -> Any:
        async with self._session.request(
            method,
            self.base_url + path,
            json=json,
            data=data,
            headers=self._headers(),
            timeout=REQUEST_TIMEOUT,
        ) as response:
            if response.status not in ok:
                raise HassApiError(
                    f"{method} {path} answered {response.status}: {await response.text()}"
                )
            if response.content_type == "application/json":
                return await response.json()
            return await response.text()

    # ---- start-up and login -----------------------------------------------------------------

    async def wait_until_up(self, alive: Callable[[], bool]) -> None:
        """Wait until the HTTP API answers; fail early when ``alive()`` turns false."""
        while True:
            if not alive():
                raise HassApiError("Home Assistant exited during start-up")
            try:
                # Answers without a login: 400 "onboarding required" on a new instance.
                await self._request("GET", "/auth/providers", ok=(200, 400))
            except (aiohttp.ClientError, HassApiError):
                await asyncio.sleep(0.5)
            else:
                return

    async def onboard_or_login(self, name: str, username: str, password: str) -> None:
        """Create the owner on a new instance (onboarding), else log in; then finish onboarding."""
        # Once onboarding is complete, its API is gone (404).
        onboarding = await self._request("GET", "/api/onboarding", ok=(200, 404))
        steps = (
            {s["step"]: s["done"] for s in onboarding}
            if isinstance(onboarding, list)
            else dict.fromkeys(("user", "core_config", "analytics", "integration"), True)
        )
        if not steps.get("user"):
            created = await self._request(
                "POST",
                "/api/onboarding/users",
                {
                    "client_id": self.client_id,
                    "name": name,
                    "username": username,
                    "password": password,
                    "language": "en",
                },
            )
            code = created["auth_code"]
        else:
            code = await self._login(username, password)
        token = await self._request(
            "POST",
            "/auth/token",
            data={"grant_type": "authorization_code", "code": code, "client_id": self.client_id},
        )
        self._token = token["access_token"]
        # The core configuration step is done ahead (see hass_config); finish the others.
        if not steps.get("core_config"):
            await self._request("POST", "/api/onboarding/core_config", {})
        if not steps.get("analytics"):
            await self._request("POST", "/api/onboarding/analytics", {})  # analytics stay off
        if not steps.get("integration"):
            await self._request(
                "POST",
                "/api/onboarding/integration",
                {"client_id": self.client_id, "redirect_uri": f"{self.base_url}/?auth_callback=1"},
            )

    async def _login(self, username: str, password: str) -> str:
        """An auth code from the login flow, as the login page gets one."""
        flow = await self._request(
            "POST",
            "/auth/login_flow",
            {
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": self.client_id,
            },
        )
        result = await self._request(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            {"client_id": self.client_id, "username": username, "password": password},
        )
        if result.get("type") != "create_entry":
            raise HassApiError(f"cannot log in as {username}: {result.get('errors')}")
        return str(result["result"])

    async def wait_running(self) -> list[str]:
        """Wait until Home Assistant has started; the components it loaded."""
        while True:
            config = await self._request("GET", "/api/config")
            if config.get("state") == "RUNNING":
                return list(config.get("components", []))
            await asyncio.sleep(0.5)

    # ---- config entries ---------------------------------------------------------------------

    async def entries(self, domain: str) -> list[dict[str, Any]]:
        """The config entries of ``domain``."""
        found = await self._request("GET", f"/api/config/config_entries/entry?domain={domain}")
        return list(found)

    async def delete_entry(self, entry_id: str) -> None:
        """Delete a config entry (it is unloaded first)."""
        await self._request("DELETE", f"/api/config/config_entries/entry/{entry_id}")

    async def run_config_flow(self, handler: str, answers: Mapping[str, Mapping[str, Any]]) -> str:
        """Go through ``handler``'s config flow answering each step; the new entry's id.

        ``answers`` maps step ids to the fields to fill (a menu's to ``{"next_step_id": ...}``);
        other fields keep the form's defaults.
        A step shown again (with errors) stops the flow with those errors.
        """
        result = await self._request(
            "POST",
            "/api/config/config_entries/flow",
            {"handler": handler, "show_advanced_options": False},
        )
        answered: set[str] = set()
        while result.get("type") in ("form", "menu"):
            step = result["step_id"]
            if step in answered:
                raise HassApiError(f"config flow step {step!r} refused: {result.get('errors')}")
            if step not in answers:
                raise HassApiError(f"config flow asked an unexpected step {step!r}")
            answered.add(step)
            if result["type"] == "menu":  # answered with {"next_step_id": ...}
                result = await self._request(
                    "POST", f"/api/config/config_entries/flow/{result['flow_id']}", answers[step]
                )
                continue
            fields = {
                field["name"]: field["default"]
                for field in result.get("data_schema") or []
                if "default" in field
            }
            fields.update(answers[step])
            result = await self._request(
                "POST", f"/api/config/config_entries/flow/{result['flow_id']}", fields
            )
        if result.get("type") != "create_entry":
            raise HassApiError(f"config flow ended with {result.get('type')}: {result}")
        return str(result["result"]["entry_id"])

    async def wait_entry_loaded(self, domain: str, entry_id: str) -> None:
        """Wait until the entry is set up; fail on a set-up error."""
        while True:
            entry = next((e for e in await self.entries(domain) if e["entry_id"] == entry_id), None)
            if entry is None:
                raise HassApiError(f"config entry {entry_id} disappeared")
            if entry["state"] == "loaded":
                return
            if entry["state"] in ("setup_error", "migration_error", "failed_unload"):
                raise HassApiError(f"config entry {entry_id}: {entry['state']}")
            await asyncio.sleep(0.5)

    # ---- states, actions and dashboards -----------------------------------------------------

    async def state(self, entity_id: str) -> str | None:
        """The state of ``entity_id``, or None when it has none."""
        found = await self._request("GET", f"/api/states/{entity_id}", ok=(200, 404))
        return found.get("state") if isinstance(found, dict) else None

    async def call_for_response(
        self, domain: str, service: str, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Perform an action that returns a response; the response."""
        result = await self._request(
            "POST", f"/api/services/{domain}/{service}?return_response", dict(data)
        )
        return dict(result["service_response"])

    async def save_default_dashboard(self, config: Mapping[str, Any]) -> None:
        """Store ``config`` as the default dashboard (Overview)."""
        await self._websocket({"type": "lovelace/config/save", "config": dict(config)})

    async def _websocket(self, command: dict[str, Any]) -> Any:
        """Send one command over the websocket API; its result."""
        url = self.base_url.replace("http", "ws", 1) + "/api/websocket"
        async with self._session.ws_connect(
            url, timeout=aiohttp.ClientWSTimeout(ws_close=10)
        ) as ws:
            if (await ws.receive_json())["type"] != "auth_required":
                raise HassApiError("unexpected websocket greeting")
            await ws.send_json({"type": "auth", "access_token": self._token})
            if (reply := await ws.receive_json())["type"] != "auth_ok":
                raise HassApiError(f"websocket login refused: {reply}")
            await ws.send_json({"id": 1, **command})
            result = await ws.receive_json()
            if not result.get("success"):
                raise HassApiError(f"{command['type']} failed: {result.get('error')}")
            return result.get("result")
