"""How a simulated controller misbehaves, and remembers, like a real one.

:class:`FaultyServiceAccessPoint` sits where bacpypes3's application service access point does
and applies the controller's run-time faults (offline, latency) and its duplicate-request
detection; :class:`FaultyApplication` refuses services a small controller lacks (reading the
whole object list, ReadPropertyMultiple); :class:`InFlightGauge` counts the requests held for
latency.
"""

from __future__ import annotations

import time
from typing import Any, Protocol, override

from bacpypes3.apdu import AbortPDU, ComplexAckPDU, ErrorPDU, RejectPDU, SimpleAckPDU
from bacpypes3.app import Application
from bacpypes3.appservice import ApplicationServiceAccessPoint
from bacpypes3.basetypes import PropertyIdentifier
from bacpypes3.comm import Client
from bacpypes3.errors import UnrecognizedService
from bacpypes3.pdu import PDU

# How long a controller remembers its answer to a (client address, invoke ID), in seconds.
DEFAULT_DUPLICATE_WINDOW = 5.0


class FaultSource(Protocol):
    """What the access point reads from its controller at every request."""

    offline: bool
    latency: float
    duplicate_window: float
    duplicates_answered: int

    async def _answer_late(self) -> bool: ...


class InFlightGauge:
    """Counts confirmed requests being held for latency right now, and the peak seen.

    Only requests delayed by a non-zero ``latency`` are counted: that is the window in
    which a client's concurrency shows up at the controller.
    """

    def __init__(self) -> None:
        """Start at zero."""
        self.current = 0
        self.peak = 0

    def enter(self) -> None:
        """A request starts waiting."""
        self.current += 1
        self.peak = max(self.peak, self.current)

    def leave(self) -> None:
        """A request stops waiting (answered, dropped or cancelled)."""
        self.current -= 1

    def reset(self) -> None:
        """Forget the peak (the current count is kept)."""
        self.peak = self.current


type _RequestKey = tuple[Any, int]  # (client address, invoke ID)


def _is_last_answer(apdu: Any) -> bool:
    """True for the (single-segment) answer that completes a confirmed request."""
    if isinstance(apdu, ComplexAckPDU):
        return not apdu.apduSeg
    if isinstance(apdu, AbortPDU):
        return bool(apdu.apduSrv)
    return isinstance(apdu, SimpleAckPDU | ErrorPDU | RejectPDU)


class FaultyServiceAccessPoint(ApplicationServiceAccessPoint):  # type: ignore[misc]
    """Application service access point that can play dead or slow for its device.

    It also detects duplicate requests the way real controllers do: the answer to each
    (client address, invoke ID) is kept for the device's ``duplicate_window`` seconds, and a
    confirmed request repeating that pair within the window gets the kept answer again without
    being executed; a repeat that arrives while the first is still being handled is ignored.
    """

    def __init__(self, device_object: Any, device_info_cache: Any, owner: FaultSource):
        super().__init__(device_object, device_info_cache)
        self._owner = owner
        self._answers: dict[_RequestKey, tuple[float, bytes]] = {}  # -> (kept until, APDU)
        self._handling: set[_RequestKey] = set()

    async def confirmation(self, pdu: Any) -> None:
        """Drop everything while offline; delay confirmed requests by the latency."""
        owner = self._owner
        if owner.offline:
            return
        # Checked below the transaction layer so a dropped request leaves no server timer.
        is_confirmed_request = len(pdu.pduData) > 2 and (pdu.pduData[0] >> 4) == 0
        if not is_confirmed_request:
            await super().confirmation(pdu)
            return
        key: _RequestKey = (pdu.pduSource, pdu.pduData[2])
        if owner.duplicate_window > 0:
            if key in self._handling:
                return
            if (answer := self._kept_answer(key)) is not None:
                owner.duplicates_answered += 1
                await Client.request(self, PDU(answer, destination=pdu.pduSource))
                return
        self._handling.add(key)
        try:
            if owner.latency > 0 and not await owner._answer_late():
                return
            await super().confirmation(pdu)
        finally:
            self._handling.discard(key)

    async def request(self, apdu: Any) -> None:
        """Send an APDU; keep a copy of each final answer for duplicate detection."""
        pdu = apdu.encode()
        window = self._owner.duplicate_window
        if window > 0 and _is_last_answer(apdu):
            now = time.monotonic()
            self._answers = {k: v for k, v in self._answers.items() if v[0] > now}
            key: _RequestKey = (pdu.pduDestination, apdu.apduInvokeID)
            self._answers[key] = (now + window, bytes(pdu.pduData))
        await Client.request(self, pdu)

    def _kept_answer(self, key: _RequestKey) -> bytes | None:
        kept = self._answers.get(key)
        if kept is None or kept[0] <= time.monotonic():
            return None
        return kept[1]


class ServiceFaults(Protocol):
    """Which services the controller refuses, read at every request."""

    refuse_object_list: bool
    refuse_rpm: bool


def _whole_object_list(reference: Any) -> bool:
    return bool(
        reference.propertyIdentifier == PropertyIdentifier.objectList
        and reference.propertyArrayIndex is None
    )


class FaultyApplication(Application):  # type: ignore[misc]
    """Application that can refuse services the way small controllers do.

    ``refuse_object_list``: reading the object list whole is aborted with
    segmentation-not-supported (the list does not fit one APDU and the controller cannot
    segment), so a client must read its length and then each index. ``refuse_rpm``:
    ReadPropertyMultiple is rejected as an unrecognized service.
    """

    def __init__(self, faults: ServiceFaults) -> None:
        super().__init__()
        self._faults = faults

    @override
    async def do_ReadPropertyRequest(self, apdu: Any) -> None:
        """Abort a whole-object-list read while that fault is on."""
        if self._faults.refuse_object_list and _whole_object_list(apdu):
            await self._abort_segmentation(apdu)
            return
        await super().do_ReadPropertyRequest(apdu)

    @override
    async def do_ReadPropertyMultipleRequest(self, apdu: Any) -> None:
        """Reject the service, or abort a request asking for the whole object list."""
        if self._faults.refuse_rpm:
            raise UnrecognizedService()
        if self._faults.refuse_object_list and any(
            _whole_object_list(ref)
            for spec in apdu.listOfReadAccessSpecs
            for ref in spec.listOfPropertyReferences
        ):
            await self._abort_segmentation(apdu)
            return
        await super().do_ReadPropertyMultipleRequest(apdu)

    async def _abort_segmentation(self, request: Any) -> None:
        # Raising SegmentationNotSupported would send an abort without the server flag,
        # which clients (bacpypes3 too) drop as not theirs: send the server's abort.
        await self.response(AbortPDU(True, reason="segmentationNotSupported", context=request))
