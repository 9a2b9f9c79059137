"""A BACnet controller served by bac-py, an implementation independent of bacpypes3.

One device on one loopback address and an ephemeral UDP port, holding a commandable
analog value (relinquish default 72.0) and a commandable binary value. Its broadcast
address is its own address, so its start-up I-Am (and any I-Am it answers a Who-Is with)
goes back to itself, where bac-py drops it; every datagram it sends is recorded so that
tests can assert none left 127.0.0.0/8.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from bac_py import BACnetApplication, DefaultServerHandlers, DeviceConfig, DeviceObject
from bac_py.objects.analog import AnalogValueObject
from bac_py.objects.base import BACnetObject
from bac_py.objects.binary import BinaryValueObject
from bac_py.transport.bip import BIPTransport
from bac_py.types.enums import ObjectType, PropertyIdentifier
from bac_py.types.primitives import ObjectIdentifier

RELINQUISH_DEFAULT = 72.0
LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


class BacPyController:
    """A running bac-py device; read its objects through bac-py's own object API."""

    def __init__(self, ip: str, device_instance: int = 8101) -> None:
        """Configure, without binding, a device on ``ip`` (an ephemeral port)."""
        self.ip = ip
        self.config = DeviceConfig(
            instance_number=device_instance,
            name="bac-py controller",
            interface=ip,
            port=0,
            broadcast_address=ip,
            apdu_timeout=1000,
            apdu_retries=0,
        )
        self.app = BACnetApplication(self.config)
        self.sent_to: list[tuple[str, int]] = []
        device = DeviceObject(
            device_instance,
            object_name="bac-py controller",
            vendor_identifier=0,
        )
        self.app.object_db.add(device)
        self.app.object_db.add(
            AnalogValueObject(
                302,
                commandable=True,
                object_name="zone setpoint",
                relinquish_default=RELINQUISH_DEFAULT,
            )
        )
        self.app.object_db.add(BinaryValueObject(1, commandable=True, object_name="fan enable"))
        DefaultServerHandlers(self.app, self.app.object_db, device).register()

    @property
    def port(self) -> int:
        """The UDP port the device bound."""
        return int(self._bip.local_address.port)

    @property
    def address(self) -> str:
        """The device's address as our client writes it."""
        return f"{self.ip}:{self.port}"

    @property
    def broadcast_address(self) -> str:
        """Where bac-py sends a broadcast (Original-Broadcast-NPDU)."""
        return str(self._bip._broadcast_address)  # no public accessor

    @property
    def _bip(self) -> Any:
        return self.app._transport  # the single BACnet/IP transport

    async def start(self) -> None:
        """Bind and serve; every datagram's destination is recorded from the first one on.

        bac-py binds and sends its I-Am within ``start()``, so the recorder wraps the
        transport's own start for that call.
        """
        bind = BIPTransport.start
        sent_to = self.sent_to

        async def bind_and_record(bip: BIPTransport) -> None:
            await bind(bip)
            udp: Any = bip._transport  # the asyncio datagram transport
            send = udp.sendto

            def record(data: bytes, addr: tuple[str, int]) -> None:
                sent_to.append(addr)
                send(data, addr)

            udp.sendto = record

        BIPTransport.start = bind_and_record  # type: ignore[method-assign,assignment]
        try:
            await self.app.start()
        finally:
            BIPTransport.start = bind  # type: ignore[method-assign]

    async def stop(self) -> None:
        """Stop serving, close the socket and cancel bac-py's leftover server timers.

        bac-py 1.5.7's ``stop()`` keeps each answered request's duplicate-detection timer
        (6 s, ``ServerTSM._start_timeout``) on the loop; cancel them so none outlives the test.
        """
        server_tsm: Any = self.app._server_tsm  # no public way to clear it
        await self.app.stop()
        if server_tsm is not None:
            for txn in server_tsm._transactions.values():
                if txn.timeout_handle is not None:
                    txn.timeout_handle.cancel()
            server_tsm._transactions.clear()

    def left_loopback(self) -> list[tuple[str, int]]:
        """Destinations of sent datagrams outside 127.0.0.0/8 (should be none)."""
        return [addr for addr in self.sent_to if ipaddress.IPv4Address(addr[0]) not in LOOPBACK]

    def obj(self, object_type: ObjectType, instance: int) -> BACnetObject:
        """One object as bac-py holds it."""
        found = self.app.object_db.get(ObjectIdentifier(object_type, instance))
        assert found is not None
        return found

    def priority_array(self, object_type: ObjectType, instance: int) -> list[Any]:
        """The 16 slots (None for NULL) as bac-py holds them."""
        slots = self.obj(object_type, instance).read_property(PropertyIdentifier.PRIORITY_ARRAY)
        return list(slots)

    def present_value(self, object_type: ObjectType, instance: int) -> Any:
        """The present value as bac-py holds it."""
        return self.obj(object_type, instance).read_property(PropertyIdentifier.PRESENT_VALUE)

    def write_local(
        self, object_type: ObjectType, instance: int, value: Any, priority: int
    ) -> None:
        """Command a slot locally, as another client or an operator would."""
        self.obj(object_type, instance).write_property(
            PropertyIdentifier.PRESENT_VALUE, value, priority
        )
