"""Builds what one config entry runs, each part given its collaborators when it is made.

The order is the safety order: the BACnet stack, then the ledger settles what an earlier run
left in the building, and only then are the meter and the VEN started, so that no event is acted
on before every earlier override is known.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.util import dt as dt_util

from . import settings as entry_settings
from . import tls
from .bacnet import BacnetOverrideWriter, BacnetStackError, PortInUseError, StackHandle
from .building_meter import BuildingMeter
from .bus_events import SOURCE_SCHEDULE, BusEvents
from .const import DOMAIN, LOGGER
from .coordinator import LoadshedCoordinator, Topic
from .data import EntryShape, LoadshedConfigEntry, LoadshedData, stack_registry
from .engine.event_history import EventHistory, EventStatus
from .engine.points import OverridePoint
from .engine.schedule import Schedule, StableOffset
from .engine.shed import ShedController
from .engine.status import VenStatus, ven_status
from .engine.verification import ShedVerifier
from .level_driver import LevelDriver, release_window_option
from .operator_actions import OperatorActions
from .opt_outs import OptOutStore
from .override_ledger import OverrideLedger
from .repair_issues import RepairIssues
from .settings import EntrySettings
from .switch import remove_stale, rename_controller_devices
from .targeting import build_targeting, refresh_targeting
from .ven_transport import create_transport
from .vtn_inbox import VtnInbox

# The longest one shed or release pass may take; what has not verified by then is retried.
PASS_DEADLINE_SECONDS: Final = 120.0


async def async_build(hass: HomeAssistant, entry: LoadshedConfigEntry) -> LoadshedData:
    """Start the BACnet stack, settle the ledger, start the meter; wire the VEN (not started)."""
    shape = EntryShape.of(entry)
    # Pure parsing, but thousands of points take a noticeable time: keep it off the loop.
    settings = await hass.async_add_executor_job(
        EntrySettings.from_entry, shape.data, shape.options, shape.controllers
    )
    handle = await _acquire_stack(hass, settings)
    try:
        return await _async_wire(hass, entry, settings, handle, shape)
    except BaseException:
        await handle.release()  # a set-up that fails must not keep the port
        raise


async def _async_wire(
    hass: HomeAssistant,
    entry: LoadshedConfigEntry,
    settings: EntrySettings,
    handle: StackHandle,
    shape: EntryShape,
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
    schedule.targeting = build_targeting(settings, shape.controllers)
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
    driver.release_window = release_window_option({**shape.data, **shape.options})
    vtn = VtnInbox(
        hass,
        entry,
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
        ven = create_transport(
            hass,
            settings.vtn,
            files,
            vtn,
            meter_power=lambda: None if meter.latest_kw is None else meter.latest_kw * 1000.0,
            status=lambda: _building_status(controller, driver, history),
        )
    except BaseException:
        await meter.async_shutdown()
        raise
    vtn.ven_id_source = lambda: None if (r := ven.registration) is None else r.ven_id
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
        shape=shape,
    )


def _building_status(
    controller: ShedController, driver: LevelDriver, history: EventHistory
) -> VenStatus:
    """The building as one OpenADR resource, for the VTN's status reports."""
    current = history.current(dt_util.utcnow())
    opted_out = current is not None and current.status is EventStatus.OPTED_OUT
    return ven_status(controller.states(), level=driver.level, opted_out=opted_out)


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
    entry.async_on_unload(entry.add_update_listener(async_entry_updated))
    entry.async_create_background_task(hass, data.ven.run(), f"{DOMAIN} VEN {entry.title}")


async def async_entry_updated(hass: HomeAssistant, entry: LoadshedConfigEntry) -> None:
    """Apply what changed: the policy and controllers live; the VTN, interface or meter by reload.

    A reload unloads first, and unloading releases every override of the points the entry ran
    with; what cannot be released stays in the ledger, which keeps its own copy of each point
    and settles it at the next set-up.
    """
    if entry.state is not ConfigEntryState.LOADED:
        return
    data = entry.runtime_data
    async with data.update_lock:
        old, new = data.shape, EntryShape.of(entry)
        if new.data != old.data or (
            new.controllers != old.controllers and not await _apply_controllers(hass, entry, new)
        ):
            hass.config_entries.async_schedule_reload(entry.entry_id)
            return
        if new.options != old.options:
            _apply_options(data, new)
        data.shape = new


async def _apply_controllers(
    hass: HomeAssistant, entry: LoadshedConfigEntry, shape: EntryShape
) -> bool:
    """Add and remove points of the running entry; False when only a reload can apply it.

    Removed points are released first (a removed controller's switches are already gone: Home
    Assistant removes a deleted subentry's entities); added ones get their switches, on their
    controller's subentry, and the level in force. A point whose definition changed, or whose
    release does not verify, takes a reload.
    """
    data = entry.runtime_data
    parsed = await hass.async_add_executor_job(
        EntrySettings.from_entry, shape.data, shape.options, shape.controllers
    )
    before = {point.key: point for point in data.settings.points}
    after = {point.key: point for point in parsed.points}
    if data.add_switches is None or any(
        before[k] != after[k] for k in before.keys() & after.keys()
    ):
        return False
    removed = [key for key in before if key not in after]
    added = [point for key, point in after.items() if key not in before]
    if removed:
        if stuck := await data.controller.remove_points(removed):
            LOGGER.warning(
                "%d removed point(s) could not be verified as released; reloading: %s",
                len(stuck),
                ", ".join(stuck[:10]),
            )
            return False
        remove_stale(hass, entry, [s.point for s in data.controller.states()])
    if added:
        await data.controller.add_points(added)
        by_subentry: dict[str | None, list[OverridePoint]] = {}
        for point in added:
            by_subentry.setdefault(parsed.subentry_of.get(point.key), []).append(point)
        for subentry_id, points in by_subentry.items():
            data.add_switches(points, subentry_id)
    data.settings = replace(data.settings, points=parsed.points, subentry_of=parsed.subentry_of)
    # A controller's resource_id or group_id may have changed without any point changing.
    refresh_targeting(data.driver.schedule, data.settings, shape.controllers)
    data.driver.reapply()
    rename_controller_devices(hass, entry, parsed.subentry_of)
    LOGGER.info("Controllers changed: %d point(s) added, %d removed", len(added), len(removed))
    return True


def _apply_options(data: LoadshedData, shape: EntryShape) -> None:
    """Hand a new policy to the running entry; the event in progress goes on."""
    merged = {**shape.data, **shape.options}
    try:
        policy = entry_settings.policy(merged)
    except ValueError as err:  # the options flow refuses this; stored by other means
        LOGGER.error("The shed policy in the options cannot be used and is ignored: %s", err)
        return
    act_on_test = entry_settings.act_on_test_events(merged)
    interval = entry_settings.meter_interval(merged)
    window = entry_settings.baseline_window(merged)
    outage_after = entry_settings.vtn_outage_alert(merged)
    data.driver.apply_policy(policy, act_on_test)
    # A release already in waves keeps its plan; the next one uses the new window.
    data.driver.release_window = release_window_option(merged)
    data.meter.set_interval(interval)
    # A shed in progress keeps the baseline it started with; the next one uses the new window.
    data.verification.set_window(window)
    data.repairs.set_outage_after(outage_after)
    data.settings = replace(
        data.settings,
        policy=policy,
        act_on_test_events=act_on_test,
        meter=replace(data.settings.meter, interval=interval),
        baseline_window=window,
        vtn_outage_alert=outage_after,
    )


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
