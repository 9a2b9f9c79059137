"""When to retry each unsettled override record: capped exponential backoff per record.

Each record (one slot: a point at its priority) keeps its own attempt count and due time, so a
point that keeps failing never holds back another one: a controller that answers again is
retried on its own schedule, from the first (short) delay. A record the controller refused
(access denied) is retried only at the cap. A record that settles is forgotten, which resets its
backoff. Times are plain seconds on any monotonic clock the caller chooses.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from .ledger_records import retry_delay


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """The delays: ``initial`` seconds, doubling per failed retry, never above ``cap``."""

    initial: float
    cap: float

    def delay(self, attempt: int, *, refused: bool) -> float:
        """Seconds before retry number ``attempt`` (0-based); a refused write waits the cap."""
        if refused:
            return self.cap
        return retry_delay(attempt, initial=self.initial, cap=self.cap)


@dataclass(frozen=True, kw_only=True)
class _Entry:
    attempt: int  # failed retries so far
    delay: float  # the backoff delay that led to ``due``
    due: float  # when the next retry is due


class RetrySchedule:
    """The next retry of every unsettled record, by record id."""

    def __init__(self) -> None:
        """Start with nothing scheduled."""
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        """Number of records waiting for a retry."""
        return len(self._entries)

    def __contains__(self, record_id: object) -> bool:
        """True when ``record_id`` waits for a retry."""
        return record_id in self._entries

    def due_at(self, record_id: str) -> float | None:
        """When ``record_id`` is retried next, or None when it is not scheduled."""
        entry = self._entries.get(record_id)
        return None if entry is None else entry.due

    def sync(self, unsettled: Mapping[str, bool], now: float, backoff: Backoff) -> None:
        """Match the schedule to ``unsettled`` (record id -> refused by the controller).

        Records no longer unsettled are dropped (their backoff starts again next time); new
        ones are first retried after the initial delay (the cap when refused); the others keep
        their time.
        """
        for record_id in [r for r in self._entries if r not in unsettled]:
            del self._entries[record_id]
        for record_id, refused in unsettled.items():
            if record_id not in self._entries:
                delay = backoff.delay(0, refused=refused)
                self._entries[record_id] = _Entry(attempt=0, delay=delay, due=now + delay)

    def due(self, now: float) -> set[str]:
        """The records whose retry is due at ``now``."""
        return {record_id for record_id, entry in self._entries.items() if entry.due <= now}

    def retried(
        self,
        still_unsettled: Mapping[str, bool],
        record_ids: Collection[str],
        now: float,
        backoff: Backoff,
    ) -> None:
        """After retrying ``record_ids``: push back those still unsettled, drop the others."""
        for record_id in record_ids:
            entry = self._entries.get(record_id)
            if entry is None:
                continue
            if record_id not in still_unsettled:
                del self._entries[record_id]
                continue
            attempt = entry.attempt + 1
            delay = backoff.delay(attempt, refused=still_unsettled[record_id])
            self._entries[record_id] = _Entry(attempt=attempt, delay=delay, due=now + delay)

    def next_due(self) -> float | None:
        """The earliest due time, or None when nothing is scheduled."""
        return min((entry.due for entry in self._entries.values()), default=None)

    def delay_of_next(self) -> float | None:
        """The backoff delay of the earliest due record, or None when nothing is scheduled."""
        entry = min(self._entries.values(), key=lambda e: e.due, default=None)
        return None if entry is None else entry.delay

    def clear(self) -> None:
        """Forget every record."""
        self._entries.clear()
