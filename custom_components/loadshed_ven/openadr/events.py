"""The VEN's list of VTN events: one owner, every event handled on its own.

openleadr's event dispatch answered optOut for every event of a message when one handler call
failed, forgot its answer to a cancelled event (so the VTN listing it again raised KeyError on
every poll) and crashed on an all-digit vtnID or an overflowing date. :class:`EventBook`
replaces it:

* The event-id set goes to ``on_ids`` first, and only when it changed.
* Per event, keyed by (id, modification number): a pair already handled calls no handler; a
  new or changed one calls the handler in its own ``try``; an event that could not be read is
  refused alone (optOut with code 454, logged once per pair).
* Answers (one oadrCreatedEvent per message, never one per event): each pair is answered until
  the VTN accepts the answer. A pair is answered again only when the VTN lists it after a poll
  in which it did not (e.g. after a VTN restart), or after a re-registration. A VTN that lists
  the same events on every poll gets no repeated answers.
* Events the VTN no longer lists are forgotten, so the book never grows beyond one message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from xml.sax.saxutils import escape

from openleadr import enums

from .decoding import LISTED_KEY, EventKey, ListedEvent

_LOGGER = logging.getLogger(__name__)

OptType = Literal["optIn", "optOut"]
EventHandler = Callable[[dict[str, Any]], Awaitable[OptType]]
IdsHandler = Callable[[frozenset[str]], None]


@dataclass(slots=True)
class HeldEvent:
    """What the VEN holds for one listed event."""

    key: EventKey
    raw_event_id: str
    opt: OptType
    event: dict[str, Any] | None  # None: the event could not be read
    answered: bool = False


def is_completed(event: dict[str, Any], now: datetime | None = None) -> bool:
    """True when the event's active period is over; False when that cannot be told."""
    period = event.get("active_period")
    if not isinstance(period, dict):
        return False
    start, duration = period.get("dtstart"), period.get("duration")
    if not isinstance(start, datetime) or not isinstance(duration, timedelta):
        return False
    if start.tzinfo is None or duration <= timedelta(0):
        return False
    try:
        return (now or datetime.now(UTC)) >= start + duration
    except OverflowError:  # e.g. 9999-12-31T23:00Z + PT2H: not over for a long time
        return False


def _signals_supported(event: dict[str, Any]) -> bool:
    signals = event.get("event_signals")
    if isinstance(signals, dict):
        signals = signals.get("event_signals")
    if not isinstance(signals, list):
        return True
    return all(
        isinstance(signal, dict) and signal.get("signal_name") in enums.SIGNAL_NAME.values
        for signal in signals
    )


class EventBook:
    """Dispatch oadrDistributeEvent payloads to one handler and build the answers."""

    def __init__(self, handler: EventHandler, on_ids: IdsHandler | None = None) -> None:
        self._handler = handler
        self._on_ids = on_ids
        self._held: dict[str, HeldEvent] = {}
        self._last_ids: frozenset[str] | None = None
        self._previous: set[EventKey] = set()
        self._logged: set[EventKey] = set()

    # ------------------------------------------------------------------ queries

    def known(self) -> frozenset[EventKey]:
        """The (id, modification number) pairs that need no parsing or handling again."""
        return frozenset(held.key for held in self._held.values())

    def find(self, event_id: str) -> HeldEvent | None:
        """The held, readable event with this (normalised) id."""
        held = self._held.get(event_id)
        return held if held is not None and held.event is not None else None

    def set_opt(self, event_id: str, opt: OptType) -> None:
        """Remember an opt sent on the operator's behalf (repeats then carry it)."""
        held = self._held.get(event_id)
        if held is not None:
            held.opt = opt

    # ------------------------------------------------------------------ updates

    def not_listed(self) -> None:
        """The VTN's last reply listed no events: a later listing is answered again."""
        self._previous = set()

    def forget_answers(self) -> None:
        """After a (re-)registration the VTN may have lost them: answer every event again."""
        for held in self._held.values():
            held.answered = False
        self._previous = set()

    def fill_known(self, payload: dict[str, Any]) -> None:
        """Put the held dicts of already-known events into a freshly decoded distribution."""
        listed: list[ListedEvent] = payload.get(LISTED_KEY) or []
        for item in listed:
            if item.event is None and item.error is None:
                held = self._held.get(item.event_id or "")
                if held is not None and held.key == item.key and held.event is not None:
                    item.event = held.event
                elif held is None or held.key != item.key:
                    item.error = "it was not parsed"  # cannot happen: the book is unchanged
        payload["events"] = [item.event for item in listed if item.event is not None]

    def confirm(self, keys: list[EventKey]) -> None:
        """The VTN accepted the answers for these pairs."""
        for key in keys:
            held = self._held.get(key[0])
            if held is not None and held.key == key:
                held.answered = True

    async def distribute(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """Handle one distribution; return the event responses to send (maybe none)."""
        listed: list[ListedEvent] = payload.get(LISTED_KEY) or []
        request_id = payload.get("request_id")
        ids = frozenset(item.event_id for item in listed if item.event_id is not None)
        if ids != self._last_ids and self._on_ids is not None:
            self._on_ids(ids)
        self._last_ids = ids
        responses: list[dict[str, Any]] = []
        keys: set[EventKey] = set()
        seen: set[EventKey] = set()
        for item in listed:
            key = item.key
            if key is None or item.raw_event_id is None:
                seen.add(("", repr(item.modification_number)))
                self._log_refused(("", repr(item.modification_number)), item)
                continue
            keys.add(key)
            held = self._held.get(key[0])
            if held is None or held.key != key:
                held = await self._handle(item, key, item.raw_event_id)
                self._held[key[0]] = held
            elif held.answered and key in self._previous:
                continue
            response = self._response(held, item, request_id)
            if response is not None:
                responses.append(response)
        listed_ids = {key[0] for key in keys}
        for event_id in [i for i in self._held if i not in listed_ids]:
            del self._held[event_id]
        # A refusal is logged again only after the event left the list and came back.
        self._logged &= keys | seen
        self._previous = keys
        return responses

    async def _handle(self, item: ListedEvent, key: EventKey, raw_id: str) -> HeldEvent:
        if item.event is None:
            self._log_refused(key, item)
            return HeldEvent(key, raw_id, "optOut", None)
        opt: OptType = "optOut"
        try:
            opt = await self._handler(item.event)
        except Exception:  # one failing event must not affect the others
            _LOGGER.exception("Handling event %r failed; opting out of it", item.event_id)
        if opt not in ("optIn", "optOut"):
            _LOGGER.error("Event %r got the answer %r; opting out of it", item.event_id, opt)
            opt = "optOut"
        # Many events in one message: let other callbacks run between the handler calls.
        await asyncio.sleep(0)
        return HeldEvent(key, raw_id, opt, item.event)

    def _response(
        self, held: HeldEvent, item: ListedEvent, request_id: Any
    ) -> dict[str, Any] | None:
        if (item.response_required or "always") != "always":
            return None
        code = 200
        if held.event is None:
            code = enums.STATUS_CODES.INVALID_DATA
        elif is_completed(held.event):
            return None
        elif not _signals_supported(held.event):
            code = enums.STATUS_CODES.SIGNAL_NOT_SUPPORTED
        # openleadr's templates do not escape: the ids are text from the VTN.
        return {
            "response_code": code,
            "response_description": "OK" if code == 200 else "ERROR",
            "opt_type": held.opt,
            "request_id": escape(str(request_id if request_id is not None else "")),
            "modification_number": held.key[1],
            "event_id": escape(held.raw_event_id),
        }

    def _log_refused(self, key: EventKey, item: ListedEvent) -> None:
        if key in self._logged:
            return
        self._logged.add(key)
        _LOGGER.warning(
            "Refused event %r (modification %s) from the VTN: %s",
            item.raw_event_id,
            item.modification_number,
            item.error,
        )
