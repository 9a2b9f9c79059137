"""loadshed_ven: an OpenADR 2.0b VEN that sheds building load through verified BACnet overrides."""

from __future__ import annotations

import asyncio
from typing import Any, Final

from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryNotReady, HomeAssistantError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.storage import Store
from homeassistant.helpers.typing import ConfigType
from homeassistant.util import dt as dt_util

from . import settings, tls
from .bacnet.stack import BacnetStackError, LocalInterface, PortInUseError
from .bacnet.writer import BacnetOverrideWriter
from .const import CONF_METER_ENTITY, CONF_METER_SOURCE, DOMAIN, LOGGER, METER_SOURCE_ENTITY
from .coordinator import LoadshedConfigEntry, LoadshedData, MeterCoordinator
from .engine import ledger as ledger_records
from .engine.overrides import PointState
from .engine.schedule import StableOffset
from .engine.shed import ShedController
from .ledger_store import STORAGE_VERSION, OverrideLedger, storage_key
from .modbus.meter import ModbusMeter
from .openadr.ven import VenConnection
from .opt_outs import OptOutStore
from .repair_issues import RepairIssues, async_entry_removed
from .runtime import LoadshedRuntime
from .services import async_setup_services
from .stacks import stack_registry

PLATFORMS: Final = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.EVENT,
    Platform.SENSOR,
    Platform.SWITCH,
]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

# The longest one shed or release pass may take; what has not verified by then is retried.
PASS_DEADLINE_SECONDS: Final = 120.0
# How long unloading, or Home Assistant stopping, may spend releasing overrides.
RELEASE_BUDGET_SECONDS: Final = 10.0


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the integration's services (they target a config entry)."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: LoadshedConfigEntry) -> bool:
    """Start the BACnet stack, the meter and the VEN for one building."""
    data = entry.data
    address, port, instance, routes = settings.bacnet_interface(data)
    interface = LocalInterface(address=address, port=port, device_instance=instance, routes=routes)
    try:
        handle = await stack_registry(hass).acquire(interface)
    except PortInUseError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="port_in_use",
            translation_placeholders={"ip": interface.ip, "port": str(interface.port)},
        ) from err
    except BacnetStackError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="bacnet_unavailable",
            translation_placeholders={"error": str(err)},
        ) from err

    writer = BacnetOverrideWriter(handle.stack)
    # Pure parsing, but thousands of points take a noticeable time: keep it off the loop.
    points = await hass.async_add_executor_job(settings.points, data)
    controller = ShedController(
        points,
        writer,
        policy=settings.policy(data),
        clock=dt_util.utcnow,
        pass_deadline=PASS_DEADLINE_SECONDS,
    )
    # Settle what an earlier run left in the building before any event is acted on.
    ledger = OverrideLedger(hass, entry, controller, writer)
    entry.async_on_unload(ledger.async_stop)
    await ledger.async_reconcile()
    opt_outs = OptOutStore(hass, entry.entry_id)
    runtime = LoadshedRuntime(
        hass,
        entry,
        controller,
        random_offset=StableOffset(entry.entry_id),
        act_on_test_events=settings.act_on_test_events(data),
        opted_out=await opt_outs.async_load(),
    )
    runtime.save_opt_outs = opt_outs.async_save
    ledger.on_retry_report = runtime.handle_retry_report
    if data.get(CONF_METER_SOURCE) == METER_SOURCE_ENTITY:
        meter = MeterCoordinator(
            hass, entry, interval=settings.meter_interval(data), entity_id=data[CONF_METER_ENTITY]
        )
    else:
        meter = MeterCoordinator(
            hass,
            entry,
            interval=settings.meter_interval(data),
            modbus=ModbusMeter(settings.meter_config(data)),
        )
    # A dead meter must not stop the building from shedding: no first-refresh gate.
    await meter.async_refresh()

    def meter_watts() -> float | None:
        kw = meter.latest_kw
        return None if kw is None else kw * 1000.0

    files = await tls.async_write_entry_files(hass, entry.entry_id, data)
    ven = VenConnection(
        settings.ven_settings(data, files),
        hass.async_add_executor_job,
        on_event=runtime.handle_event,
        on_event_ids=runtime.handle_event_ids,
        on_connected=runtime.handle_connection,
        meter_power=meter_watts,
    )
    runtime.send_opt = ven.send_opt
    entry.runtime_data = LoadshedData(
        runtime=runtime, meter=meter, ven=ven, bacnet=handle, ledger=ledger
    )
    repairs = RepairIssues(
        hass,
        entry,
        runtime=runtime,
        ven=ven,
        ledger=ledger,
        outage_after=settings.vtn_outage_alert(data),
        vtn_url=settings.vtn_url(data),
    )
    repairs.async_start()
    # Runs after async_unload_entry has released: what could not be released stays listed.
    entry.async_on_unload(repairs.async_stop)
    _release_when_hass_stops(hass, entry)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_create_background_task(hass, ven.run(), f"{DOMAIN} VEN {entry.title}")
    return True


def _release_when_hass_stops(hass: HomeAssistant, entry: LoadshedConfigEntry) -> None:
    """Home Assistant does not unload entries when it stops: release the building then."""
    unsubscribe: CALLBACK_TYPE | None = None

    async def _on_stop(_: Event) -> None:
        nonlocal unsubscribe
        unsubscribe = None
        await _stop_and_release(entry.runtime_data, "Home Assistant stops")

    unsubscribe = hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _on_stop)

    @callback
    def _cancel() -> None:
        if unsubscribe is not None:
            unsubscribe()

    entry.async_on_unload(_cancel)


async def async_unload_entry(hass: HomeAssistant, entry: LoadshedConfigEntry) -> bool:
    """Stop the VEN, release every override within the budget, free the stack."""
    if not await hass.config_entries.async_unload_platforms(entry, PLATFORMS):
        return False
    data = entry.runtime_data
    await _stop_and_release(data, "unloading")
    await data.meter.async_shutdown()
    await data.bacnet.release()
    return True


async def _stop_and_release(data: LoadshedData, why: str) -> None:
    """Stop acting on events, then release every override within the time budget."""
    await data.runtime.async_stop()
    await data.ven.stop()
    await data.ledger.async_stop()  # a retry in progress must not hold up the release
    try:
        async with asyncio.timeout(RELEASE_BUDGET_SECONDS):
            report = await data.runtime.controller.release_all()
    except TimeoutError:
        LOGGER.warning(
            "Releasing overrides while %s did not finish within %.0f s",
            why,
            RELEASE_BUDGET_SECONDS,
        )
    else:
        if report.failed:
            LOGGER.warning(
                "%d override(s) could not be released while %s: %s",
                len(report.failed),
                why,
                ", ".join(report.failed[:10]),
            )


async def async_remove_entry(hass: HomeAssistant, entry: LoadshedConfigEntry) -> None:
    """Delete the entry's files; name any override it could not release in a repair issue."""
    await tls.async_remove_entry_files(hass, entry.entry_id)
    leftover = await _async_remove_ledger(hass, entry.entry_id)
    await OptOutStore(hass, entry.entry_id).async_remove()
    if leftover:
        LOGGER.error(
            "Entry %s was deleted while %d override(s) could not be verified as released: %s",
            entry.title,
            len(leftover),
            ", ".join(s.point.key for s in leftover[:10]),
        )
    async_entry_removed(hass, entry.entry_id, entry.title, leftover)


async def _async_remove_ledger(hass: HomeAssistant, entry_id: str) -> list[PointState]:
    """Delete a removed entry's ledger file; return what it still listed."""
    store: Store[dict[str, Any]] = Store(hass, STORAGE_VERSION, storage_key(entry_id))
    try:
        leftover = ledger_records.load(await store.async_load())
    except (HomeAssistantError, ValueError) as err:
        LOGGER.error("The override ledger of a deleted entry could not be read: %s", err)
        leftover = []
    await store.async_remove()
    return leftover
