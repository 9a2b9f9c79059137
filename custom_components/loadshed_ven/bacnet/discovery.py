"""BACnet discovery for commissioning: which devices answer, and what objects one of them holds.

:func:`discover_devices` sends a Who-Is (global, to one routed network, or to one address),
collects the I-Ams and reads each device's name, vendor and model. :func:`read_objects` reads
one device's object list and, for each object worth listing, its name, units, present value,
range and whether it is commandable. Both are bounded in concurrency and time, and a device
or object that does not answer is reported with what was read instead of failing the whole.
Nothing here imports Home Assistant; every request goes through :mod:`.discovery_reads`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from bacpypes3.apdu import ErrorRejectAbortNack
from bacpypes3.pdu import Address

from ..engine.addresses import normalise_address
from .discovery_model import (
    ANALOG_PROPS,
    COMMON_PROPS,
    DEVICE_PROPS,
    LISTED_TYPES,
    MULTI_STATE_PROPS,
    DiscoveredDevice,
    DiscoveredObject,
    DiscoveryError,
    DiscoveryProgress,
    ObjectListResult,
    Progress,
    ReadFailure,
    discovered_object,
    identifier,
    text_of,
)
from .discovery_reads import DeviceReader, PropertyKey, ReadError, property_text
from .stack import BacnetStack
from .values import routed_network, to_address

__all__ = [
    "DiscoveredDevice",
    "DiscoveredObject",
    "DiscoveryError",
    "DiscoveryProgress",
    "ObjectListResult",
    "ReadFailure",
    "discover_devices",
    "read_objects",
]

_LOGGER = logging.getLogger(__name__)

MAX_INSTANCE: Final = 4194303
MAX_CONCURRENCY: Final = 8  # far below the 255 outstanding requests that freeze bacpypes3


def _report(progress: Progress | None, phase: str, done: int, total: int) -> None:
    if progress is None:
        return
    try:
        progress(DiscoveryProgress(phase, done, total))
    except Exception:  # a broken listener must not stop discovery
        _LOGGER.exception("Discovery progress callback failed")


def _check_concurrency(concurrency: int) -> None:
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise DiscoveryError(f"concurrency must be 1-{MAX_CONCURRENCY}, got {concurrency}")


def _check_route(stack: BacnetStack, network: int | None) -> None:
    """Refuse a routed network that can be reached neither statically nor discovered."""
    if network is None or network in stack.routes or stack.interface.can_broadcast:
        return
    raise DiscoveryError(
        f"no router is configured for network {network} and this interface cannot "
        "broadcast to discover one"
    )


def _destination(stack: BacnetStack, network: int | None, address: str | None) -> Address | None:
    """Where the Who-Is goes: one address, one routed network, or everywhere (None)."""
    if network is not None and address is not None:
        raise DiscoveryError("give a network or an address, not both")
    if address is not None:
        try:
            destination = to_address(address)
        except ValueError as err:
            raise DiscoveryError(str(err)) from None
        _check_route(stack, routed_network(address))
        return destination
    if network is not None:
        if not 1 <= network <= 65534:
            raise DiscoveryError(f"network {network} is outside 1-65534")
        _check_route(stack, network)
        return Address(f"{network}:*")
    # A foreign device's broadcasts go through its BBMD: it can broadcast whatever its socket.
    if not stack.interface.can_broadcast:
        raise DiscoveryError(
            "this interface cannot broadcast (a /32 address or port 0, and no BBMD): give a "
            "network or an address, or register with a BBMD"
        )
    return None


def _address_text(address: Address) -> str:
    """The address as the rest of the product writes it (bacpypes3's text if unusual)."""
    text = str(address)
    try:
        return normalise_address(text)
    except ValueError:
        return text


def _check_limits(low: int | None, high: int | None) -> None:
    if (low is None) != (high is None):
        raise DiscoveryError("give both instance limits or neither")
    if low is not None and high is not None and not 0 <= low <= high <= MAX_INSTANCE:
        raise DiscoveryError(f"instance limits must satisfy 0 <= low <= high <= {MAX_INSTANCE}")


async def discover_devices(
    stack: BacnetStack,
    *,
    network: int | None = None,
    address: str | None = None,
    low_limit: int | None = None,
    high_limit: int | None = None,
    wait: float = 3.0,
    concurrency: int = 4,
    device_timeout: float | None = None,
    progress: Progress | None = None,
) -> list[DiscoveredDevice]:
    """Who-Is, collect I-Ams for ``wait`` seconds, then read each device's identity.

    ``network`` sends the Who-Is to one routed network, ``address`` to one device (which
    ends the wait at its answer); neither broadcasts it (through the BBMD for a foreign
    device). At most ``concurrency`` devices are read at once, each within
    ``device_timeout`` (default: two request timeouts); one that does not answer is still
    listed, without a name. Sorted by instance; an instance answering from two addresses
    is listed twice. Raises DiscoveryError for a request that cannot be sent,
    StackClosedError when the stack is not running.
    """
    _check_limits(low_limit, high_limit)
    _check_concurrency(concurrency)
    if not 0 < wait <= 60:
        raise DiscoveryError(f"wait must be within 0-60 s, got {wait}")
    destination = _destination(stack, network, address)
    found = await _who_is(stack.app, low_limit, high_limit, destination, wait)
    slots = asyncio.Semaphore(concurrency)
    done = 0
    _report(progress, "devices", 0, len(found))

    async def identify(instance: int, where: str) -> DiscoveredDevice:
        nonlocal done
        async with slots:
            device = await _identify(stack, instance, where, device_timeout)
        done += 1
        _report(progress, "devices", done, len(found))
        return device

    devices = await asyncio.gather(*(identify(i, a) for i, a in found))
    return list(devices)


class _IAmCollector:
    """Keeps every matching I-Am, where bacpypes3's Who-Is keeps one per instance.

    Two devices answering with one instance (a classic commissioning mistake) must both be
    shown. It sits in the application's list of pending Who-Is requests, which bacpypes3
    offers each incoming I-Am (``match``).
    """

    def __init__(self, low: int | None, high: int | None, source: Address | None) -> None:
        self._low, self._high, self._source = low, high, source
        self.found: list[tuple[int, str]] = []

    def match(self, apdu: Any) -> None:
        instance = int(apdu.iAmDeviceIdentifier[1])
        if self._source is not None and apdu.pduSource != self._source:
            return
        low, high = self._low, self._high
        if low is not None and high is not None and not low <= instance <= high:
            return
        answer = (instance, _address_text(apdu.pduSource))
        if answer not in self.found:
            self.found.append(answer)


async def _who_is(
    app: Any, low: int | None, high: int | None, destination: Address | None, wait: float
) -> list[tuple[int, str]]:
    """Send the Who-Is and return every (instance, address) that answered, sorted."""
    station = destination is not None and (
        destination.is_localstation or destination.is_remotestation
    )
    collector = _IAmCollector(low, high, destination if station else None)
    if not hasattr(app, "_who_is_futures"):  # bacpypes3 creates it on first use
        app._who_is_futures = []
    app._who_is_futures.append(collector)
    try:
        async with asyncio.timeout(wait + 1.0):
            i_ams = await app.who_is(low, high, destination, timeout=wait)
    except TimeoutError:
        i_ams = []
    except (ErrorRejectAbortNack, ValueError, RuntimeError, OSError) as err:
        raise DiscoveryError(f"Who-Is could not be sent: {err!r}") from None
    finally:
        app._who_is_futures.remove(collector)
    found = set(collector.found)
    found.update((int(i.iAmDeviceIdentifier[1]), _address_text(i.pduSource)) for i in i_ams)
    return sorted(found)


async def _identify(
    stack: BacnetStack, instance: int, address: str, limit: float | None
) -> DiscoveredDevice:
    values: dict[PropertyKey, Any] = {}
    try:
        reader = DeviceReader(stack, address, concurrency=1)
        async with asyncio.timeout(limit or reader.timeout * 2):
            values = await reader.read_many(f"device,{instance}", DEVICE_PROPS)
    except TimeoutError:
        _LOGGER.debug("Device %s at %s did not say who it is in time", instance, address)
    except ValueError:  # an address form the product cannot use (e.g. a 2-byte MAC)
        _LOGGER.debug("Device %s answered from %s, which cannot be read", instance, address)
    return DiscoveredDevice(
        instance=instance,
        address=address,
        name=text_of(values.get(("object-name", None))),
        vendor=text_of(values.get(("vendor-name", None))),
        model=text_of(values.get(("model-name", None))),
    )


async def read_objects(
    stack: BacnetStack,
    device: DiscoveredDevice,
    *,
    concurrency: int = 2,
    request_timeout: float | None = None,
    deadline: float = 120.0,
    progress: Progress | None = None,
) -> ObjectListResult:
    """Read ``device``'s object list, then each listed object's properties.

    The object list is read whole; when the device refuses that (or does not answer), its
    length and then each index. At most ``concurrency`` requests are in flight, each
    within ``request_timeout`` (default: the stack's retries plus a margin), all within
    ``deadline`` seconds; what is not read by then is reported as a failure, like every
    object or property that could not be read (objects keep what was read). After a few
    unanswered requests in a row the device counts as gone and the rest fails at once.
    Past 200 requests (a device of about 200 objects) they are paced to 20 a second, so
    that invoke IDs do not repeat while the controller remembers them (see
    :mod:`.discovery_reads`): the default deadline covers about 2000 objects, half that
    when the list has to be read index by index.
    Raises DiscoveryError only for an address that cannot be used.
    """
    _check_concurrency(concurrency)
    try:
        reader = DeviceReader(
            stack, device.address, concurrency=concurrency, timeout=request_timeout
        )
    except ValueError as err:
        raise DiscoveryError(str(err)) from None
    _check_route(stack, routed_network(device.address))
    walk = _Walk(reader, device, progress)
    try:
        async with asyncio.timeout(deadline):
            await walk.run()
    except TimeoutError:
        walk.cut_at = deadline
    return walk.result()


class _Walk:
    """One read of a device's objects; keeps what was read when the deadline cuts it short."""

    def __init__(
        self, reader: DeviceReader, device: DiscoveredDevice, progress: Progress | None
    ) -> None:
        self.reader = reader
        self.device = device
        self.device_id = f"device,{device.instance}"
        self.progress = progress
        self.identifiers: list[tuple[str, int]] = []
        self.per_index = False
        self.read: dict[tuple[str, int], dict[PropertyKey, Any]] = {}
        self.failures: list[ReadFailure] = []
        self.cut_at: float | None = None  # the deadline, once it cut the walk short

    async def run(self) -> None:
        await self._read_list()
        wanted = [oid for oid in self.identifiers if oid[0] in LISTED_TYPES]
        done = 0
        _report(self.progress, "objects", 0, len(wanted))

        async def one(oid: tuple[str, int]) -> None:
            nonlocal done
            await self._read_object(oid)
            done += 1
            _report(self.progress, "objects", done, len(wanted))

        await asyncio.gather(*(one(oid) for oid in wanted))

    async def _read_list(self) -> None:
        try:
            whole = await self.reader.read(self.device_id, "object-list")
        except ReadError as err:
            refused = err.reason
        else:
            self.identifiers = [identifier(oid) for oid in whole]
            return
        self.per_index = True
        try:
            length = int(await self.reader.read(self.device_id, "object-list", 0))
        except ReadError as err:
            self.failures.append(
                ReadFailure(
                    self.device_id,
                    f"object list unreadable ({refused}); its length too ({err.reason})",
                )
            )
            return
        found: dict[int, tuple[str, int]] = {}
        done = 0
        _report(self.progress, "object-list", 0, length)

        async def at(index: int) -> None:
            nonlocal done
            try:
                found[index] = identifier(
                    await self.reader.read(self.device_id, "object-list", index)
                )
            except ReadError as err:
                self.failures.append(
                    ReadFailure(self.device_id, f"object-list[{index}]: {err.reason}")
                )
            done += 1
            _report(self.progress, "object-list", done, length)

        try:
            await asyncio.gather(*(at(index) for index in range(1, length + 1)))
        finally:
            self.identifiers = [found[index] for index in sorted(found)]

    async def _read_object(self, oid: tuple[str, int]) -> None:
        object_type, instance = oid
        props = list(COMMON_PROPS)
        if object_type.startswith("analog-"):
            props += ANALOG_PROPS
        elif object_type.startswith("multi-state-"):
            props += MULTI_STATE_PROPS
        values = await self.reader.read_many(f"{object_type},{instance}", props)
        self.read[oid] = values
        by_reason: dict[str, list[str]] = {}
        for key, value in values.items():
            if isinstance(value, ReadError) and not value.absent:
                by_reason.setdefault(value.reason, []).append(property_text(*key))
        if by_reason:
            text = "; ".join(f"{', '.join(names)}: {why}" for why, names in by_reason.items())
            self.failures.append(ReadFailure(f"{object_type},{instance}", text))

    def result(self) -> ObjectListResult:
        listed = [oid for oid in self.identifiers if oid[0] in LISTED_TYPES]
        objects = tuple(discovered_object(oid, self.read.get(oid, {})) for oid in listed)
        failures = [*self.failures]
        if self.cut_at is not None:
            failures.append(
                ReadFailure(self.device_id, f"stopped at the {self.cut_at:g} s deadline")
            )
            failures += [
                ReadFailure(f"{t},{i}", "not read before the deadline")
                for t, i in listed
                if (t, i) not in self.read
            ]
        return ObjectListResult(
            device=self.device,
            objects=objects,
            failures=tuple(failures),
            listed=len(self.identifiers),
            per_index=self.per_index,
        )
