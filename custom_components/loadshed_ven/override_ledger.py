"""The persistent override ledger of one config entry, and the retries that settle it.

Every write is recorded on disk *before* it is sent (the PENDING intent) and the ledger is saved
again after every pass, so whatever happens to Home Assistant (a restart, a crash, a power cut),
the next start knows every slot that may hold our value.

On start, before the VEN acts, each record is checked against a fresh read of its slot. Events
are not known yet at that point (the VTN re-delivers them after registration), so a record whose
slot still holds our value is *released*; if the event is still running, the re-delivered event
sheds again a few seconds later. That is simpler and safer than guessing that an event is still
active from stale data. A slot that is NULL is forgotten, a slot holding a value we did not
write is left alone and reported, and a slot that cannot be read stays in the ledger and is
checked again later. Records of points no longer configured are handled the same way: only
NULL is ever written to them, and only when our value is there. A point a release in waves has
not reached yet holds our value like any other, so a restart mid-release releases it at start.

Points whose last operation failed are retried with a capped exponential backoff of their own
(one timer, armed for the earliest due point), so a point that keeps failing never delays another;
writes the controller refused (access denied) are only retried at the cap. What a retry settles
is reported like any pass (``on_retry_report``), so entities and bus events follow at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN, LOGGER
from .engine import ledger_records
from .engine.overrides import FailureKind, Outcome, OverrideWriter, PointState
from .engine.retries import Backoff, RetrySchedule
from .engine.shed import ApplyReport, ShedController

if TYPE_CHECKING:
    from .data import LoadshedConfigEntry

STORAGE_VERSION: Final = 1

# Retry backoff: the first retry after RETRY_INITIAL_SECONDS, doubling up to RETRY_CAP_SECONDS.
RETRY_INITIAL_SECONDS: float = 10.0
RETRY_CAP_SECONDS: float = 300.0


def _backoff() -> Backoff:
    """The backoff in force (read at each use, so tests can shorten it)."""
    return Backoff(initial=RETRY_INITIAL_SECONDS, cap=RETRY_CAP_SECONDS)


def storage_key(entry_id: str) -> str:
    """The Store key of an entry's ledger_records."""
    return f"{DOMAIN}.{entry_id}.ledger"


class OverrideLedger:
    """Keeps the entry's ledger on disk and settles what an earlier run left behind."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: LoadshedConfigEntry,
        controller: ShedController,
        writer: OverrideWriter,
        *,
        on_retry_report: Callable[[ApplyReport], None],
    ) -> None:
        """Attach to ``controller``: intents are saved before each write, states after each pass.

        ``on_retry_report`` is told what each retry settled or newly failed, so that entities
        and bus events follow.
        """
        self._hass = hass
        self._entry = entry
        self._controller = controller
        self._writer = writer
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, storage_key(entry.entry_id)
        )
        # Records of points no longer configured that are not settled yet.
        self._pending: dict[str, PointState] = {}  # by ledger_records.record_id
        self._schedule = RetrySchedule()
        self._armed_for = 0.0  # the loop time the armed timer is due at
        self._delay = 0.0
        self._unsub_retry: CALLBACK_TYPE | None = None
        self._retry_task: asyncio.Task[None] | None = None
        self._stopped = False
        self._on_retry_report = on_retry_report
        controller.set_persistence(before_send=self._before_send, after_pass=self._after_pass)

    @property
    def pending(self) -> list[PointState]:
        """Records of points no longer configured that still wait to be settled."""
        return list(self._pending.values())

    @property
    def retry_delay(self) -> float | None:
        """The backoff delay of the next retry (of the earliest due record); None when none."""
        return self._delay if self._unsub_retry is not None else None

    def next_retry(self, state: PointState) -> float | None:
        """Seconds until ``state``'s record is retried next; None when it is not scheduled."""
        due = self._schedule.due_at(ledger_records.record_id(state))
        return None if due is None else max(0.0, due - self._now())

    def records(self) -> list[PointState]:
        """Everything the ledger tracks now: held or failing points and unsettled records."""
        held = [s for s in self._controller.states() if s.holds_override]
        return [*held, *self._pending.values()]

    async def async_save(self) -> None:
        """Write the ledger now (Store logs and swallows write errors itself)."""
        await self._store.async_save(ledger_records.dump(self.records()))

    async def _before_send(self, _intents: Sequence[PointState]) -> None:
        await self.async_save()

    async def _after_pass(self, _changed: Sequence[PointState]) -> None:
        await self.async_save()
        self._schedule_retry()

    # ---- start ------------------------------------------------------------------------

    async def async_reconcile(self) -> None:
        """Settle every record an earlier run left, before the VEN starts acting."""
        try:
            stored = await self._store.async_load()
        except (HomeAssistantError, NotImplementedError, ValueError) as err:
            LOGGER.error("Override ledger could not be read (%s); starting without it", err)
            stored = None
        records = ledger_records.load(stored)
        if records:
            LOGGER.info("Override ledger: checking %d point(s) left by the last run", len(records))
            await self._settle(records, at_start=True)
        await self.async_save()
        self._schedule_retry()

    async def _settle(self, records: Sequence[PointState], *, at_start: bool) -> None:
        """Read each record's slot, decide, and release what is ours and no longer needed."""
        configured = {s.point.key: s.point for s in self._controller.states()}
        readings = await asyncio.gather(*(self._writer.read(s.point) for s in records))
        work = []
        for record, reading in zip(records, readings, strict=True):
            point = ledger_records.configured_match(record, configured)
            if point is not None and self._controller.state(point.key).holds_override:
                continue  # the controller has acted on it since: its state is the record now
            decision = ledger_records.decide(
                record,
                reading,
                configured=point,
                event_active=False,  # events are not known before the VEN registers
            )
            work.append(
                self._act(decision, reading, configured=point is not None, at_start=at_start)
            )
        await asyncio.gather(*work)  # the writer bounds how many requests go out at once

    async def _act(
        self,
        decision: ledger_records.Decision,
        reading: Outcome,
        *,
        configured: bool,
        at_start: bool,
    ) -> None:
        state, action = decision.state, decision.action
        key, rid = state.point.key, ledger_records.record_id(state)
        if action is ledger_records.Action.KEEP:
            self._controller.restore(ledger_records.adopted(state, reading, dt_util.utcnow()))
            LOGGER.info("Override ledger: %s adopted (%s)", key, decision.reason)
            return
        if action is ledger_records.Action.FORGET:
            self._pending.pop(rid, None)
            LOGGER.info("Override ledger: %s forgotten: %s", key, decision.reason)
            return
        if action is ledger_records.Action.LEAVE:
            self._pending.pop(rid, None)
            LOGGER.warning(
                "Override ledger: %s left alone: %s (written by someone else; not touched)",
                key,
                decision.reason,
            )
            return
        if action is ledger_records.Action.RETRY:
            if at_start:
                LOGGER.warning("Override ledger: %s kept for retry: %s", key, decision.reason)
            self._keep_failing(state.after_release(reading, dt_util.utcnow()), configured)
            return
        outcome = await self._writer.release(state.point)
        if outcome.ok:
            self._pending.pop(rid, None)
            LOGGER.info("Override ledger: %s released (%s)", key, decision.reason)
            return
        LOGGER.warning(
            "Override ledger: releasing %s failed (%s: %s); will retry",
            key,
            outcome.failure,
            outcome.detail,
        )
        self._keep_failing(state.after_release(outcome, dt_util.utcnow()), configured)

    def _keep_failing(self, state: PointState, configured: bool) -> None:
        """Track a record that may still hold our value until a later retry settles it.

        A configured point goes back into the controller, whose retries (under its lock, so
        never racing a new event's write) release it or write the level in force then. A point
        no longer configured stays here and is only ever re-read and released.
        """
        if configured:
            self._controller.restore(state)
        else:
            self._pending[ledger_records.record_id(state)] = state

    # ---- retries ----------------------------------------------------------------------

    def _now(self) -> float:
        """The clock of the retry times: the one ``async_call_later`` schedules on."""
        return self._hass.loop.time()

    def _unsettled(self) -> dict[str, bool]:
        """Record id -> refused, of configured points not verified and unsettled records."""
        failing = [s for s in self._controller.states() if not s.verified]
        return {
            ledger_records.record_id(s): s.failure is FailureKind.ACCESS_DENIED
            for s in [*failing, *self._pending.values()]
        }

    @callback
    def _schedule_retry(self) -> None:
        """Bring each record's retry time up to date and arm the timer for the earliest one."""
        if self._stopped:
            return
        now = self._now()
        self._schedule.sync(self._unsettled(), now, _backoff())
        if self._retry_task is None:  # else the retry re-arms when it ends
            self._arm(now)

    def _arm(self, now: float) -> None:
        """Arm the one timer for the earliest due record (none when nothing is unsettled)."""
        due = self._schedule.next_due()
        if due is None:
            self._cancel_timer()
            return
        if self._unsub_retry is not None and self._armed_for == due:
            return
        self._cancel_timer()
        self._armed_for = due
        self._delay = self._schedule.delay_of_next() or 0.0
        self._unsub_retry = async_call_later(self._hass, max(0.0, due - now), self._retry_fired)

    @callback
    def _retry_fired(self, _now: datetime) -> None:
        self._unsub_retry = None
        if self._stopped:
            return
        self._retry_task = self._entry.async_create_background_task(
            self._hass, self._retry(self._armed_for), f"{DOMAIN} override retry"
        )

    async def _retry(self, armed_for: float) -> None:
        """Retry the records due now (the timer may fire a little early: it counts as due)."""
        due = self._schedule.due(max(self._now(), armed_for))
        try:
            failing = [s for s in self._controller.states() if not s.verified]
            keys = {s.point.key for s in failing if ledger_records.record_id(s) in due}
            report = ApplyReport()
            if keys:
                before = {key: self._controller.state(key).failure for key in keys}
                report = await self._controller.retry_failed(keys)
                if settled := len(report.written) + len(report.released):
                    LOGGER.info("Override retry settled %d point(s)", settled)
                # A point failing again for the same reason is not news.
                failed = [k for k in report.failed if self._state_failure(k) != before.get(k)]
                report = replace(report, failed=tuple(failed))
            if orphans := [s for rid, s in self._pending.items() if rid in due]:
                await self._settle(orphans, at_start=False)
                await self.async_save()
            if keys or orphans:
                self._on_retry_report(report)
        finally:
            self._retry_task = None
            # Pushed back even when the retry raised: a failing retry must not spin.
            self._schedule.retried(self._unsettled(), due, max(self._now(), armed_for), _backoff())
            self._schedule_retry()

    def _state_failure(self, key: str) -> FailureKind | None:
        return self._controller.state(key).failure

    def _cancel_timer(self) -> None:
        if self._unsub_retry is not None:
            self._unsub_retry()
            self._unsub_retry = None

    async def async_stop(self) -> None:
        """Stop retrying (cancel the timer and any retry in progress); the ledger stays saved."""
        self._stopped = True
        self._cancel_timer()
        task, self._retry_task = self._retry_task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                if (current := asyncio.current_task()) is not None and current.cancelling():
                    raise


async def async_remove_ledger(hass: HomeAssistant, entry_id: str) -> list[PointState]:
    """Delete a removed entry's ledger file; return what it still listed."""
    store: Store[dict[str, Any]] = Store(hass, STORAGE_VERSION, storage_key(entry_id))
    try:
        leftover = ledger_records.load(await store.async_load())
    except (HomeAssistantError, ValueError) as err:
        LOGGER.error("The override ledger of a deleted entry could not be read: %s", err)
        leftover = []
    await store.async_remove()
    return leftover
