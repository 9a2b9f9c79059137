"""A BACnet controller served by bac-py, an implementation independent of bacpypes3.

One device on one loopback address and an ephemeral UDP port, holding a commandable
analog value (relinquish default 72.0) and a commandable binary value, plus a sensor (not
commandable) and a multi-state value, each with the names, units and ranges discovery reads
(:data:`OBJECTS`). Its broadcast
address is its own address, so its start-up I-Am (and any I-Am it answers a Who-Is with)
goes back to itself, where bac-py drops it, and to the addresses in ``broadcast_to`` (loopback
has no broadcast: this stands in for the other stations of its subnet). Every datagram it
sends is recorded so that tests can assert none left 127.0.0.0/8.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from bac_py import BACnetApplication, DefaultServerHandlers, DeviceConfig, DeviceObject
from bac_py.objects.analog import AnalogInputObject, AnalogValueObject
from bac_py.objects.base import BACnetObject
from bac_py.objects.binary import BinaryValueObject
from bac_py.objects.multistate import MultiStateValueObject
from bac_py.transport.bip import BIPTransport
from bac_py.types.enums import EngineeringUnits, ObjectType, PropertyIdentifier
from bac_py.types.primitives import ObjectIdentifier

RELINQUISH_DEFAULT = 72.0
DEVICE_NAME = "bac-py controller"
VENDOR_NAME = "bac-py test vendor"
MODEL_NAME = "BACPY-1"
# What discovery should find besides present values, as (object type, instance, name,
# units, min, max, commandable, description); the objects below are built to match.
OBJECTS: tuple[tuple[str, int, str, str | None, float | None, float | None, bool, str], ...] = (
    ("analog-value", 302, "zone setpoint", "degrees-fahrenheit", 55.0, 90.0, True,
     "zone cooling setpoint"),
    ("binary-value", 1, "fan enable", None, None, None, True, "supply fan enable"),
    ("analog-input", 1, "zone temperature", "degrees-fahrenheit", -40.0, 150.0, False,
     "space sensor"),
    ("multi-state-value", 4, "occupancy mode", None, 1.0, 3.0, False, "occupancy mode"),
)  # fmt: skip
LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


class BacPyController:
    """A running bac-py device; read its objects through bac-py's own object API."""

    def __init__(self, ip: str, device_instance: int = 8101) -> None:
        """Configure, without binding, a device on ``ip`` (an ephemeral port)."""
        self.ip = ip
        self.config = DeviceConfig(
            instance_number=device_instance,
            name=DEVICE_NAME,
            interface=ip,
            port=0,
            broadcast_address=ip,
            apdu_timeout=1000,
            apdu_retries=0,
        )
        self.app = BACnetApplication(self.config)
        self.sent_to: list[tuple[str, int]] = []
        self.broadcast_to: list[tuple[str, int]] = []
        device = DeviceObject(
            device_instance,
            object_name=DEVICE_NAME,
            vendor_identifier=0,
            vendor_name=VENDOR_NAME,
            model_name=MODEL_NAME,
        )
        self.app.object_db.add(device)
        fahrenheit = EngineeringUnits.DEGREES_FAHRENHEIT
        self.app.object_db.add(
            AnalogValueObject(
                302,
                commandable=True,
                object_name="zone setpoint",
                relinquish_default=RELINQUISH_DEFAULT,
                units=fahrenheit,
                min_pres_value=55.0,
                max_pres_value=90.0,
                description="zone cooling setpoint",
            )
        )
        self.app.object_db.add(
            BinaryValueObject(
                1, commandable=True, object_name="fan enable", description="supply fan enable"
            )
        )
        self.app.object_db.add(
            AnalogInputObject(
                1,
                object_name="zone temperature",
                present_value=73.5,
                units=fahrenheit,
                min_pres_value=-40.0,
                max_pres_value=150.0,
                description="space sensor",
            )
        )
        self.app.object_db.add(
            MultiStateValueObject(
                4,
                object_name="occupancy mode",
                present_value=2,
                number_of_states=3,
                description="occupancy mode",
            )
        )
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
        controller = self

        async def bind_and_record(bip: BIPTransport) -> None:
            await bind(bip)
            udp: Any = bip._transport  # the asyncio datagram transport
            send = udp.sendto

            def record(data: bytes, addr: tuple[str, int]) -> None:
                targets = [addr]
                if addr == (controller.broadcast_address, controller.port):
                    targets += controller.broadcast_to
                for target in targets:
                    controller.sent_to.append(target)
                    send(data, target)

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
