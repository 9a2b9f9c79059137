"""Builds what one config entry runs, each part given its collaborators when it is made.

The order is the safety order: the BACnet stack, then the ledger settles what an earlier run
left in the building, and only then are the meter and the VEN started, so that no event is acted
on before every earlier override is known.
"""

from __future__ import annotations

from typing import Final

from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.util import dt as dt_util

from . import tls
from .bacnet import BacnetOverrideWriter, BacnetStackError, PortInUseError, StackHandle
from .building_meter import BuildingMeter
from .bus_events import SOURCE_SCHEDULE, BusEvents
from .const import DOMAIN
from .coordinator import LoadshedCoordinator, Topic
from .data import LoadshedConfigEntry, LoadshedData, stack_registry
from .engine.event_history import EventHistory
from .engine.schedule import Schedule, StableOffset
from .engine.shed import ShedController
from .engine.verification import ShedVerifier
from .level_driver import LevelDriver
from .openadr.ven import VenConnection
from .operator_actions import OperatorActions
from .opt_outs import OptOutStore
from .override_ledger import OverrideLedger
from .repair_issues import RepairIssues
from .settings import EntrySettings
from .vtn_inbox import VtnInbox

# The longest one shed or release pass may take; what has not verified by then is retried.
PASS_DEADLINE_SECONDS: Final = 120.0


async def async_build(hass: HomeAssistant, entry: LoadshedConfigEntry) -> LoadshedData:
    """Start the BACnet stack, settle the ledger, start the meter; wire the VEN (not started)."""
    # Pure parsing, but thousands of points take a noticeable time: keep it off the loop.
    settings = await hass.async_add_executor_job(EntrySettings.parse, dict(entry.data))
    handle = await _acquire_stack(hass, settings)
    try:
        return await _async_wire(hass, entry, settings, handle)
    except BaseException:
        await handle.release()  # a set-up that fails must not keep the port
        raise


async def _async_wire(
    hass: HomeAssistant, entry: LoadshedConfigEntry, settings: EntrySettings, handle: StackHandle
) -> LoadshedData:
    writer = BacnetOverrideWriter(handle.stack)
    controller = ShedController(
        list(settings.points),
        writer,
        policy=settings.policy,
        clock=dt_util.utcnow,
        pass_deadline=PASS_DEADLINE_SECONDS,
    )
    coordinator = LoadshedCoordinator(hass, entry)
    bus = BusEvents(hass, entry.entry_id, coordinator, controller)
    ledger = OverrideLedger(
        hass,
        entry,
        controller,
        writer,
        on_retry_report=lambda report: bus.report_pass(report, SOURCE_SCHEDULE, None),
    )
    entry.async_on_unload(ledger.async_stop)
    # Settle what an earlier run left in the building before any event is acted on.
    await ledger.async_reconcile()

    opt_outs = OptOutStore(hass, entry.entry_id)
    await opt_outs.async_load()
    schedule = Schedule(act_on_test=settings.act_on_test_events)
    history = EventHistory(schedule, opt_outs.ids)
    verification = ShedVerifier(settings.baseline_window)
    driver = LevelDriver(
        hass,
        entry,
        schedule=schedule,
        controller=controller,
        verifier=verification,
        bus=bus,
        coordinator=coordinator,
    )
    vtn = VtnInbox(
        driver=driver,
        history=history,
        opted_out=opt_outs.ids,
        bus=bus,
        coordinator=coordinator,
        random_offset=StableOffset(entry.entry_id),
    )
    meter = BuildingMeter(hass, entry, settings.meter)
    entry.async_on_unload(_feed_meter_readings(meter, verification, coordinator))
    await meter.async_start()
    try:
        files = await tls.async_write_entry_files(hass, entry.entry_id, entry.data)
        ven = VenConnection(
            settings.vtn.ven(files),
            hass.async_add_executor_job,
            on_event=vtn.handle_event,
            on_event_ids=vtn.handle_event_ids,
            on_connected=vtn.handle_connection,
            meter_power=lambda: None if meter.latest_kw is None else meter.latest_kw * 1000.0,
        )
    except BaseException:
        await meter.async_shutdown()
        raise
    actions = OperatorActions(
        driver=driver,
        controller=controller,
        history=history,
        opt_outs=opt_outs,
        send_opt=ven.send_opt,
        bus=bus,
        coordinator=coordinator,
    )
    repairs = RepairIssues(
        hass,
        entry,
        controller=controller,
        vtn=vtn,
        coordinator=coordinator,
        ven=ven,
        ledger=ledger,
        outage_after=settings.vtn_outage_alert,
        vtn_url=settings.vtn.url,
    )
    return LoadshedData(
        settings=settings,
        coordinator=coordinator,
        bacnet=handle,
        controller=controller,
        ledger=ledger,
        history=history,
        verification=verification,
        driver=driver,
        vtn=vtn,
        actions=actions,
        meter=meter,
        ven=ven,
        bus=bus,
        repairs=repairs,
    )


async def _acquire_stack(hass: HomeAssistant, settings: EntrySettings) -> StackHandle:
    interface = settings.interface
    try:
        return await stack_registry(hass).acquire(interface)
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


def _feed_meter_readings(
    meter: BuildingMeter, verifier: ShedVerifier, coordinator: LoadshedCoordinator
) -> CALLBACK_TYPE:
    """Every meter reading, good or failed, goes to the shed verifier and then the entities."""

    @callback
    def _reading() -> None:
        # latest_kw is None after a failed read: a gap, never a made-up value.
        verifier.add_reading(dt_util.utcnow(), meter.latest_kw)
        coordinator.push(Topic.METER)

    # Listening keeps the meter's own timer running until the entry unloads.
    return meter.async_add_listener(_reading)


def async_start(hass: HomeAssistant, entry: LoadshedConfigEntry) -> None:
    """Start watching for repairs and the VEN; release the building when Home Assistant stops."""
    data = entry.runtime_data
    data.repairs.async_start()
    # Runs after async_unload_entry has released: what could not be released stays listed.
    entry.async_on_unload(data.repairs.async_stop)
    _release_when_hass_stops(hass, entry)
    entry.async_create_background_task(hass, data.ven.run(), f"{DOMAIN} VEN {entry.title}")


def _release_when_hass_stops(hass: HomeAssistant, entry: LoadshedConfigEntry) -> None:
    """Home Assistant does not unload entries when it stops: release the building then."""
    unsubscribe: CALLBACK_TYPE | None = None

    async def _on_stop(_: Event) -> None:
        nonlocal unsubscribe
        unsubscribe = None
        await entry.runtime_data.stop_and_release("Home Assistant stops")

    unsubscribe = hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _on_stop)

    @callback
    def _cancel() -> None:
        if unsubscribe is not None:
            unsubscribe()

    entry.async_on_unload(_cancel)
