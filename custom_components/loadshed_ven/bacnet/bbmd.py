"""Foreign-device registration with a BBMD: :class:`BbmdRegistration`, its status and upkeep.

Controllers on another subnet hear broadcasts (Who-Is, Who-Is-Router-To-Network) only through
that subnet's BBMD. A foreign device registers with it (Register-Foreign-Device with a TTL)
and sends its broadcasts as Distribute-Broadcast-To-Network; the BBMD forwards the
subnet's broadcasts back. bacpypes3's own upkeep (``BIPForeign.register``) ignores every
answer after a refusal and stops for good once a registration has lapsed, so the link layer
here leaves registration to :class:`BbmdRegistrar`, which keeps trying for as long as the
stack runs and reports what the BBMD last said.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from bacpypes3.apdu import ErrorRejectAbortNack
from bacpypes3.comm import bind
from bacpypes3.ipv4 import IPv4DatagramServer
from bacpypes3.ipv4.bvll import BVLLCodec, RegisterForeignDevice, Result
from bacpypes3.ipv4.service import BIPForeign, UDPMultiplexer
from bacpypes3.pdu import IPv4Address

from .interface import BbmdRegistration

_LOGGER = logging.getLogger(__name__)

_REGISTER_NAK: Final = 0x0030
# A BBMD that no longer has us in its table (it rebooted, say) NAKs our broadcasts.
_DISTRIBUTE_NAK: Final = 0x0060


class BbmdStatus(StrEnum):
    """What the BBMD last said about our registration."""

    REGISTERING = "registering"  # asked, no answer yet
    REGISTERED = "registered"  # acknowledged; broadcasts go through the BBMD
    REFUSED = "refused"  # the BBMD answered with a NAK
    UNREACHABLE = "unreachable"  # no answer to the last registration attempt


type BbmdListener = Callable[[BbmdStatus, str], None]
"""Called in the event loop with the new status and its reason whenever either changes."""


@dataclass(frozen=True, kw_only=True)
class BbmdTiming:
    """How the registration is kept up (defaults suit a building; tests shorten them).

    * ``answer_seconds``: wait this long for the BBMD's Result, ``tries`` times per attempt.
    * ``retry_seconds``: after a refusal or no answer, try again this often (capped by the TTL),
      so a BBMD that comes back has us registered again well within the TTL.
    * ``renew_seconds``: renew a registration this often; None: ``max(ttl - 30, ttl / 2)``,
      early enough that a lost answer can be retried before the BBMD drops us.
    """

    answer_seconds: float = 2.0
    tries: int = 3
    retry_seconds: float = 30.0
    renew_seconds: float | None = None

    def renew_after(self, ttl: int) -> float:
        """Seconds between renewals of an acknowledged registration."""
        return self.renew_seconds if self.renew_seconds is not None else max(ttl - 30, ttl / 2)

    def retry_after(self, ttl: int) -> float:
        """Seconds before trying again after a refusal or no answer."""
        return min(self.retry_seconds, float(ttl))


class ForeignLink(BIPForeign):  # type: ignore[misc]
    """bacpypes3's foreign-device link layer down to its UDP socket, registration left out.

    Broadcasts become Distribute-Broadcast-To-Network and forwarded broadcasts are accepted
    from the BBMD while bacpypes3's status fields say registered; :class:`BbmdRegistrar`
    sets them. The socket opens no broadcast listener: a foreign device hears broadcasts
    only through the BBMD.
    """

    def __init__(self, local: IPv4Address, bbmd: IPv4Address, ttl: int) -> None:
        """Build codec, multiplexer and socket (bound in a background task, as bacpypes3 does)."""
        BIPForeign.__init__(self)
        self.codec = BVLLCodec()
        self.multiplexer = UDPMultiplexer()
        self.server = IPv4DatagramServer(local, no_broadcast=True)
        bind(self, self.codec, self.multiplexer.annexJ)
        bind(self.multiplexer, self.server)
        self.bbmdAddress = bbmd
        self.bbmdTimeToLive = ttl
        self.bbmdRegistrationStatus = -1  # in process: broadcasts wait briefly for it
        self.on_result: Callable[[int], None] | None = None

    async def confirmation(self, lpdu: Any) -> None:
        """Hand the BBMD's Results to the registrar; everything else to bacpypes3."""
        if isinstance(lpdu, Result):
            if lpdu.pduSource == self.bbmdAddress and self.on_result is not None:
                self.on_result(int(lpdu.bvlciResultCode))
            return
        await super().confirmation(lpdu)

    def mark(self, *, registered: bool, code: int = -1) -> None:
        """Set bacpypes3's fields: ``registered`` lets broadcasts through the BBMD."""
        self.bbmdRegistrationStatus = 0 if registered else code
        if registered:
            self._registration_event.set()
        else:
            self._registration_event.clear()

    def close(self) -> None:
        """Close the socket."""
        self.server.close()


class BbmdRegistrar:
    """Registers ``link`` with its BBMD, renews it, retries, and reports the status."""

    def __init__(
        self,
        link: ForeignLink,
        bbmd: BbmdRegistration,
        timing: BbmdTiming,
        listeners: list[BbmdListener],
    ) -> None:
        """Prepare; nothing is sent until :meth:`run`. ``listeners`` is shared, not copied."""
        self._link = link
        self._bbmd = bbmd
        self._timing = timing
        self._status = BbmdStatus.REGISTERING
        self._reason = f"registering with the BBMD at {bbmd.text}"
        self._listeners = listeners
        self._answer: asyncio.Future[int] | None = None
        self._acknowledged_at: float | None = None
        self._wake = asyncio.Event()
        link.on_result = self._on_result

    @property
    def status(self) -> BbmdStatus:
        """What the BBMD last said."""
        return self._status

    @property
    def reason(self) -> str:
        """A sentence explaining :attr:`status`."""
        return self._reason

    def _on_result(self, code: int) -> None:
        if code == _DISTRIBUTE_NAK:
            # Not registered there after all: register again now rather than at renewal.
            _LOGGER.debug("BBMD %s refused a broadcast; registering again", self._bbmd.text)
            self._wake.set()
        elif self._answer is not None and not self._answer.done():
            self._answer.set_result(code)

    def _set(self, status: BbmdStatus, reason: str) -> None:
        if (status, reason) == (self._status, self._reason):
            return
        self._status, self._reason = status, reason
        _LOGGER.debug("BBMD %s: %s (%s)", self._bbmd.text, status, reason)
        for listener in list(self._listeners):
            try:
                listener(status, reason)
            except Exception:
                _LOGGER.exception("BBMD status listener failed")

    async def run(self) -> None:
        """Register, renew and retry until cancelled; never raises anything else."""
        while True:
            try:
                delay = await self._attempt()
            except asyncio.CancelledError:
                raise
            except (Exception, ErrorRejectAbortNack) as err:  # keep the upkeep alive
                _LOGGER.exception("BBMD registration attempt failed")
                self._unanswered(f"registration with the BBMD at {self._bbmd.text} failed: {err}")
                delay = self._timing.retry_after(self._bbmd.ttl)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def _attempt(self) -> float:
        """One registration (with retries); returns the seconds until the next one."""
        bbmd, timing = self._bbmd, self._timing
        code = await self._register()
        if code == 0:
            self._acknowledged_at = time.monotonic()
            self._link.mark(registered=True)
            self._set(BbmdStatus.REGISTERED, f"registered with the BBMD at {bbmd.text}")
            return timing.renew_after(bbmd.ttl)
        if code is None:
            self._unanswered(
                f"the BBMD at {bbmd.text} did not answer the registration "
                f"({timing.tries} x {timing.answer_seconds:g} s)"
            )
        else:
            self._link.mark(registered=False, code=code)
            what = "NAK" if code == _REGISTER_NAK else "result"
            self._set(
                BbmdStatus.REFUSED,
                f"the BBMD at {bbmd.text} refused the registration ({what} 0x{code:04X}); "
                "it may not accept foreign devices",
            )
        return timing.retry_after(bbmd.ttl)

    def _unanswered(self, reason: str) -> None:
        # The BBMD keeps an acknowledged entry for TTL + 30 s: broadcasts may still work.
        acked = self._acknowledged_at
        if acked is None or time.monotonic() - acked > self._bbmd.ttl:
            self._link.mark(registered=False)
        self._set(BbmdStatus.UNREACHABLE, reason)

    async def _register(self) -> int | None:
        """Send Register-Foreign-Device until a Result comes back; None when none does."""
        loop = asyncio.get_running_loop()
        destination = self._link.bbmdAddress
        for _ in range(self._timing.tries):
            answer = self._answer = loop.create_future()
            try:
                await self._link.request(
                    RegisterForeignDevice(self._bbmd.ttl, destination=destination)
                )
                async with asyncio.timeout(self._timing.answer_seconds):
                    code: int = await answer
                    return code
            except TimeoutError:
                continue
            finally:
                self._answer = None
        return None
