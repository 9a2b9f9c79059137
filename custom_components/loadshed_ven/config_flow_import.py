"""The controller flow's import steps: a point CSV or EDE file becomes controllers at once.

``import_file`` takes the uploaded file and tells CSV from EDE by its header. A CSV names
addresses; an EDE names device instances, so ``ede_searching`` asks the network (a Who-Is on
the running entry's own stack, limited to the file's instances) and ``ede_addresses`` shows one
``instance = address`` line per device for the user to check and complete. ``import_confirm``
sums it up. Nothing is created until the whole file is valid; then every controller is created
at once: the last as this flow's result, the others as subentries of the same entry, all with
the data the manual step stores. Controllers already configured are refused by name: an
import adds controllers, it never rewrites configured ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import voluptuous as vol
from homeassistant.components.file_upload import DOMAIN as FILE_UPLOAD
from homeassistant.components.file_upload import process_uploaded_file
from homeassistant.config_entries import (
    ConfigEntryState,
    ConfigSubentry,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import selector
from homeassistant.setup import async_setup_component

from . import settings
from .bacnet import BacnetStack, BacnetStackError
from .bacnet.discovery import DiscoveryError, discover_devices
from .config_flow_picks import target_ids
from .const import CONF_ADDRESS, CONF_GROUP_ID
from .engine.ede import MAX_EDE_CHARS, EdeSkip, ede_devices, looks_like_ede, parse_ede
from .engine.point_files import PointFileError, parse_points_csv
from .engine.points import OverridePoint, PointError, normalise_address
from .validation import FlowError

_LOGGER = logging.getLogger(__name__)

CONF_FILE: Final = "file"
CONF_ADDRESSES: Final = "addresses"
# How many problems or skips a form lists (the rest are counted).
LISTED: Final = 10
# How long the Who-Is for an EDE's devices waits for answers.
EDE_WAIT: Final = 3.0
# Bytes read from an upload: a character takes at least one.
MAX_FILE_BYTES: Final = MAX_EDE_CHARS

IMPORT_FILE: Final = vol.Schema(
    {
        vol.Required(CONF_FILE): selector.FileSelector(
            selector.FileSelectorConfig(accept=".csv,.txt")
        )
    }
)
EDE_ADDRESSES: Final = vol.Schema(
    {
        vol.Required(CONF_ADDRESSES): selector.TextSelector(
            selector.TextSelectorConfig(multiline=True)
        )
    }
)


def read_upload(hass: HomeAssistant, file_id: str) -> str:
    """The uploaded file's text (UTF-8, else Windows-1252 as older tools write); blocking."""
    try:
        with process_uploaded_file(hass, file_id) as path, Path(path).open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except (ValueError, OSError) as err:
        raise FlowError("base", "file_unreadable", {"error": str(err)}) from None
    if len(raw) > MAX_FILE_BYTES:
        raise FlowError("base", "file_too_large", {"limit": f"{MAX_FILE_BYTES // 1_000_000} MB"})
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def listed(lines: Sequence[str], total: int | None = None) -> str:
    """The first :data:`LISTED` lines, and how many more there are."""
    more = (len(lines) if total is None else total) - min(len(lines), LISTED)
    shown = list(lines[:LISTED])
    if more > 0:
        shown.append(f"... and {more} more")
    return "\n".join(shown)


def skip_summary(skipped: Sequence[EdeSkip]) -> str:
    """The skipped rows by reason: how many, and the first of them."""
    by_reason: dict[str, list[EdeSkip]] = {}
    for skip in skipped:
        by_reason.setdefault(skip.reason, []).append(skip)
    lines = [
        f"{len(skips)} x {reason} (line {skips[0].line}: {skips[0].name or '-'})"
        for reason, skips in by_reason.items()
    ]
    return listed(lines) or "-"


def file_problems(err: PointFileError) -> FlowError:
    """A refused file as the form's error: its first problems by line, and their count."""
    lines = [f"line {n}: {why}" if n else why for n, why in err.problems]
    total = len(err.problems) + err.more
    return FlowError(
        "base", "invalid_file", {"problems": listed(lines, total), "count": str(total)}
    )


def parse_address_lines(text: str, devices: Mapping[int, str | None]) -> dict[int, str]:
    """``instance = address`` lines (``#`` starts a comment).

    A device left without an address is not imported (the summary lists its rows as skipped).
    """
    addresses: dict[int, str] = {}
    problems: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        instance_text, sep, address_text = (part.strip() for part in line.partition("="))
        if not sep or not instance_text.isdigit():
            problems.append(f"line {lineno}: '{line}': write device instance = address")
            continue
        instance = int(instance_text)
        if instance not in devices:
            problems.append(f"line {lineno}: device {instance} has no points in the file")
        elif instance in addresses:
            problems.append(f"line {lineno}: device {instance} is given twice")
        elif address_text:
            try:
                address = normalise_address(address_text)
            except PointError as err:
                problems.append(f"line {lineno}: device {instance}: {err}")
                continue
            other = next((n for n, known in addresses.items() if known == address), None)
            if other is not None:
                problems.append(f"line {lineno}: {address} is device {other}'s address already")
            addresses[instance] = address
    if problems:
        raise FlowError(
            "base", "invalid_addresses", {"problems": listed(problems), "count": str(len(problems))}
        )
    return addresses


def address_lines(devices: Mapping[int, str | None], found: Mapping[int, str]) -> str:
    """One line per device: its address if known, its name as a comment."""
    lines = []
    for instance, name in sorted(devices.items()):
        line = f"{instance} = {found.get(instance, '')}".rstrip()
        lines.append(f"{line}  # {name}" if name else line)
    return "\n".join(lines)


def controllers_of(
    points: Sequence[OverridePoint], names: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Points grouped by address, in file order: one controller subentry's data each."""
    grouped: dict[str, list[OverridePoint]] = {}
    for point in points:
        grouped.setdefault(point.address, []).append(point)
    return [
        settings.controller_data(address, (names or {}).get(address, ""), pts)
        for address, pts in grouped.items()
    ]


async def find_addresses(stack: BacnetStack, instances: Sequence[int]) -> dict[int, str]:
    """Where the devices answer, by a Who-Is limited to ``instances``' range.

    Global when the stack can broadcast (itself or through its BBMD), else one to each routed
    network it knows. An instance answering from two addresses keeps the first; a failed
    Who-Is finds nothing.
    """
    networks: list[int | None] = [None]
    if not stack.interface.can_broadcast:
        networks = [*sorted(stack.routes)]
    found: dict[int, str] = {}
    wanted = set(instances)
    for network in networks:
        try:
            devices = await discover_devices(
                stack,
                network=network,
                low_limit=min(instances),
                high_limit=max(instances),
                wait=EDE_WAIT,
            )
        except (DiscoveryError, BacnetStackError) as err:
            _LOGGER.debug("Who-Is for the EDE's devices (network %s) failed: %s", network, err)
            continue
        for device in devices:
            if device.instance in wanted:
                found.setdefault(device.instance, device.address)
    return found


class ImportSteps(ConfigSubentryFlow):
    """The import half of the controller flow; it creates every imported controller itself."""

    _import_text = ""
    _import_devices: dict[int, str | None]
    _import_found: dict[int, str] | None = None
    _import_task: asyncio.Task[dict[int, str]] | None = None
    _import_controllers: list[dict[str, Any]]
    _import_skipped: tuple[EdeSkip, ...] = ()

    async def async_step_import_file(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """The point CSV or EDE file to import; which one it is, its header tells."""
        # Uploads go through HA's file_upload: set up here, only when a file is imported, so the
        # running entry never needs the HTTP server.
        if not await async_setup_component(self.hass, FILE_UPLOAD, {}):
            return self.async_abort(reason="file_upload_unavailable")
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            try:
                text = await self.hass.async_add_executor_job(
                    read_upload, self.hass, str(user_input[CONF_FILE])
                )
                if await self.hass.async_add_executor_job(looks_like_ede, text):
                    return await self._start_ede(text)
                network = settings.local_network(self._get_entry().data)
                points = await self._off_loop(lambda: parse_points_csv(text, local_network=network))
                self._accept(controllers_of(points), ())
            except FlowError as err:
                errors[err.field] = err.key
                placeholders.update(err.placeholders)
            else:
                return await self.async_step_import_confirm()
        return self.async_show_form(
            step_id="import_file",
            data_schema=IMPORT_FILE,
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _off_loop[T](self, parse: Callable[[], T]) -> T:
        """Run a file parser in the executor (a large file takes a while); problems as errors."""
        try:
            return await self.hass.async_add_executor_job(parse)
        except PointFileError as err:
            raise file_problems(err) from None

    def _accept(self, controllers: list[dict[str, Any]], skipped: tuple[EdeSkip, ...]) -> None:
        """Keep what the file gives; refuses an empty import and configured controllers."""
        if not controllers:
            raise FlowError("base", "nothing_to_import", {"skipped": skip_summary(skipped)})
        configured = {s.unique_id: s.title for s in self._get_entry().subentries.values()}
        clashes = [
            address if configured[address] == address else f"{address} ({configured[address]})"
            for address in (c[CONF_ADDRESS] for c in controllers)
            if address in configured
        ]
        if clashes:
            raise FlowError(
                "base",
                "controllers_configured",
                {"controllers": listed(clashes), "count": str(len(clashes))},
            )
        self._import_controllers, self._import_skipped = controllers, skipped

    # ---- EDE ------------------------------------------------------------------------------

    async def _start_ede(self, text: str) -> SubentryFlowResult:
        """List the file's devices, then look for their addresses on the running stack."""
        self._import_text = text
        self._import_devices = await self._off_loop(lambda: ede_devices(text))
        self._import_found = None
        if not self._import_devices:  # refused with the reasons its rows are left out
            result = await self._off_loop(lambda: parse_ede(text, addresses={}))
            self._accept([], result.skipped)
        entry = self._get_entry()
        if entry.state is not ConfigEntryState.LOADED:
            self._import_found = {}
            return await self.async_step_ede_addresses()
        stack: BacnetStack = entry.runtime_data.bacnet.stack
        self._import_task = self.hass.async_create_task(
            find_addresses(stack, sorted(self._import_devices)), "loadshed_ven EDE Who-Is"
        )
        return await self.async_step_ede_searching()

    async def async_step_ede_searching(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """The Who-Is for the EDE's devices."""
        task = self._import_task
        if task is not None and not task.done():
            return self.async_show_progress(
                step_id="ede_searching",
                progress_action="ede_searching",
                progress_task=task,
                description_placeholders={"devices": str(len(self._import_devices))},
            )
        self._import_task = None
        self._import_found = task.result() if task is not None else {}
        return self.async_show_progress_done(next_step_id="ede_addresses")

    async def async_step_ede_addresses(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """One ``instance = address`` line per device, pre-filled with those that answered."""
        devices, found = self._import_devices, self._import_found or {}
        errors: dict[str, str] = {}
        placeholders = {"devices": str(len(devices)), "found": str(len(found))}
        if user_input is not None:
            try:
                addresses = parse_address_lines(str(user_input[CONF_ADDRESSES]), devices)
                result = await self._off_loop(
                    lambda: parse_ede(self._import_text, addresses=addresses, skip_unaddressed=True)
                )
                names = {
                    address: result.device_names.get(instance, "")
                    for instance, address in addresses.items()
                }
                self._accept(controllers_of(result.points, names), result.skipped)
            except FlowError as err:
                errors[err.field] = err.key
                placeholders.update(err.placeholders)
            else:
                return await self.async_step_import_confirm()
        suggested = user_input or {CONF_ADDRESSES: address_lines(devices, found)}
        return self.async_show_form(
            step_id="ede_addresses",
            data_schema=self.add_suggested_values_to_schema(EDE_ADDRESSES, suggested),
            errors=errors,
            description_placeholders=placeholders,
        )

    # ---- confirm and create ---------------------------------------------------------------

    async def async_step_import_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """What the import creates and what it leaves out; nothing exists before this."""
        controllers = self._import_controllers
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                group = target_ids(user_input).get(CONF_GROUP_ID)
            except FlowError as err:
                errors[err.field] = err.key
            else:
                # One group for every imported controller; resource ids are set per controller.
                extra = {} if group is None else {CONF_GROUP_ID: group}
                return self._create_imported([{**c, **extra} for c in controllers])
        return self.async_show_form(
            step_id="import_confirm",
            data_schema=vol.Schema({vol.Optional(CONF_GROUP_ID): selector.TextSelector()}),
            errors=errors,
            description_placeholders={
                "controllers": str(len(controllers)),
                "points": str(sum(len(c["points"]) for c in controllers)),
                "skipped": str(len(self._import_skipped)),
                "skips": skip_summary(self._import_skipped),
            },
        )

    def _create_imported(self, controllers: list[dict[str, Any]]) -> SubentryFlowResult:
        """Every controller at once; one configured since the check aborts them all."""
        entry = self._get_entry()
        configured = {s.unique_id for s in entry.subentries.values()}
        if clashes := [c[CONF_ADDRESS] for c in controllers if c[CONF_ADDRESS] in configured]:
            return self.async_abort(
                reason="import_configured_meanwhile",
                description_placeholders={"controllers": listed(clashes)},
            )
        # The flow's own result is added last: the subentries keep the file's order.
        *others, last = controllers
        for data in others:
            self.hass.config_entries.async_add_subentry(
                entry,
                ConfigSubentry(
                    data=MappingProxyType(data),
                    subentry_type=self.handler[1],
                    title=settings.controller_title(data),
                    unique_id=data[CONF_ADDRESS],
                ),
            )
        return self.async_create_entry(
            title=settings.controller_title(last), data=last, unique_id=last[CONF_ADDRESS]
        )
