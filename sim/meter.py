"""A building main meter on Modbus TCP that reads like an eGauge: kW as float32, big-endian.

The value sits at one register pair (default 17-18, 0-based PDU addresses) in both the input
and the holding registers, and is computed afresh on every read from a simple load model::

    kW = max(0, base_kw - kw_per_override * overrides())

so that overriding BACnet points visibly sheds load. Faults can be switched on at any time:
``silent`` (requests are accepted but never answered, so clients time out), ``nan`` (the meter
serves NaN), ``implausible`` (it serves :data:`IMPLAUSIBLE_KW`, a float32 no building draws)
and ``wrong_byte_count`` (a read reply whose byte count claims one register more than the
reply carries, as a faulty gateway sends). Writes are refused with exception code 2 (illegal
address).
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import math
import struct
from collections.abc import Callable
from typing import Any

import pymodbus
from pymodbus import constants as modbus_constants
from pymodbus import exceptions as modbus_exceptions
from pymodbus.datastore import ModbusServerContext
from pymodbus.server import ModbusTcpServer

_READ_HOLDING = 3
_READ_INPUT = 4
_WIDTH = 2  # registers per float32
_MBAP = 7  # Modbus TCP header: transaction id, protocol id, length, unit id
IMPLAUSIBLE_KW = 1e30


def _pymodbus_version() -> tuple[int, int]:
    major, minor = str(pymodbus.__version__).split(".")[:2]
    return int(major), int(minor)


# --- pymodbus version differences, all in this block ------------------------------------------
# <= 3.12: the server asks a device context object for values; a duck-typed context that
#          computes the registers on each call is served as is.
# >= 3.13: the server converts every datastore into SimDevice/SimRuntime (deep-copying old
#          datastore classes at construction), so the only live hook is SimDevice's `action`,
#          whose signature also changed in 3.13.
# Silence works the same way everywhere: the lookup raises the "no such unit" exception and the
# server, started with ignore_missing_*, drops the request without replying.
_USE_SIM_DEVICE = _pymodbus_version() >= (3, 13)
# The unit lookup's exception (NoSuchSlaveException up to 3.9).
_NoSuchUnit: type[Exception] = (
    getattr(modbus_exceptions, "NoSuchIdException", None) or modbus_exceptions.NoSuchSlaveException
)
_IGNORE_MISSING_KW = (
    "ignore_missing_devices"
    if "ignore_missing_devices" in inspect.signature(ModbusTcpServer).parameters
    else "ignore_missing_slaves"  # <= 3.9
)
# 3.9 - 3.12 take an exception code returned by the context (an ExcCodes member from 3.10 on,
# a plain int before); 3.8 asks validate() first.
_ILLEGAL_ADDRESS: Any = getattr(getattr(modbus_constants, "ExcCodes", None), "ILLEGAL_ADDRESS", 2)
# ------------------------------------------------------------------------------------------------


def encode_float32_be(value: float) -> list[int]:
    """Encode ``value`` as two registers, float32 with big-endian byte and word order."""
    try:
        raw = struct.pack(">f", value)
    except OverflowError:  # beyond float32 range: a real meter would show infinity
        raw = struct.pack(">f", math.copysign(math.inf, value))
    high, low = struct.unpack(">HH", raw)
    return [high, low]


class SimMeter:
    """A Modbus TCP server on loopback that serves a live building kW reading.

    ``overrides`` is called on every read (e.g. the BACnet network's ``overridden_points``).
    ``port=0`` binds a free port; :attr:`port` reports the real one once started.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        register: int = 17,
        unit_id: int = 1,
        base_kw: float = 850.0,
        kw_per_override: float = 1.5,
        overrides: Callable[[], int] | None = None,
    ) -> None:
        """Configure the meter; nothing is bound until :meth:`start`."""
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the simulated meter binds loopback only, not {host!r}")
        if not 0 <= register <= 0xFFFF - _WIDTH + 1:
            raise ValueError(f"register out of range: {register}")
        if not 0 <= unit_id <= 255:
            raise ValueError(f"unit id out of range: {unit_id}")
        self.host = host
        self.register = register
        self.unit_id = unit_id
        self.base_kw = base_kw
        self.kw_per_override = kw_per_override
        self.overrides = overrides
        #: Accept requests but never answer them (a hung meter or gateway).
        self.silent = False
        #: Serve NaN instead of the load (a meter reporting an invalid reading).
        self.nan = False
        #: Serve IMPLAUSIBLE_KW instead of the load (a finite value no building draws).
        self.implausible = False
        #: Send read replies whose byte count is 2 more than the register bytes that follow.
        self.wrong_byte_count = False
        self._port = port
        self._server: Any = None
        self._listener: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The TCP port: the bound one after :meth:`start`, the requested one before."""
        return self._port

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._server is not None

    def set_base_kw(self, kw: float) -> None:
        """Set the building's load with no overrides in effect."""
        self.base_kw = kw

    def current_kw(self) -> float:
        """The load model's value now, regardless of the faults switched on."""
        overridden = max(0, self.overrides()) if self.overrides is not None else 0
        return max(0.0, self.base_kw - self.kw_per_override * overridden)

    def _served_registers(self) -> list[int]:
        """The two registers a read returns now; raising makes the server drop the request."""
        if self.silent:
            raise _NoSuchUnit("meter is silent")
        if self.nan:
            return encode_float32_be(math.nan)
        return encode_float32_be(IMPLAUSIBLE_KW if self.implausible else self.current_kw())

    def _trace_packet(self, sending: bool, packet: bytes) -> bytes:
        """Pymodbus' packet hook: corrupt outgoing read replies while ``wrong_byte_count``."""
        if not (sending and self.wrong_byte_count) or len(packet) < _MBAP + 2:
            return packet
        if packet[_MBAP] not in (_READ_HOLDING, _READ_INPUT):
            return packet  # exception replies and anything else pass unchanged
        # The MBAP length still matches the bytes sent; only the PDU's own count lies.
        corrupted = bytearray(packet)
        corrupted[_MBAP + 1] = (corrupted[_MBAP + 1] + 2) & 0xFF
        return bytes(corrupted)

    async def start(self) -> None:
        """Bind and start serving; raise OSError if the address is unavailable."""
        if self._server is not None:
            raise RuntimeError("meter already started")
        server = ModbusTcpServer(
            self._build_context(),
            address=(self.host, self._port),
            trace_packet=self._trace_packet,
            **{_IGNORE_MISSING_KW: True},
        )
        failure = f"cannot listen on {self.host}:{self._port} (see the pymodbus log)"
        try:
            await server.serve_forever(background=True)
        except RuntimeError as err:  # newer pymodbus raises when the bind fails
            await server.shutdown()
            raise OSError(failure) from err
        listener = server.transport
        if not isinstance(listener, asyncio.Server):  # 3.8 and 3.9 only log it
            await server.shutdown()
            raise OSError(failure)
        self._server, self._listener = server, listener
        self._port = int(listener.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close the listener and every client connection, and wait until they are gone."""
        server, listener = self._server, self._listener
        self._server = self._listener = None
        if server is None:
            return
        await server.shutdown()
        if listener is not None:
            # pymodbus closes without waiting; wait_closed returns once connections are gone.
            await listener.wait_closed()

    def _build_context(self) -> Any:
        """Build the datastore argument for ModbusTcpServer on the installed pymodbus."""
        if _USE_SIM_DEVICE:
            from pymodbus.simulator import (  # noqa: PLC0415 - absent before 3.12
                DataType,
                SimData,
                SimDevice,
            )

            def block() -> Any:
                # One shared block: holding and input reads hit the same registers.
                return SimData(
                    self.register, values=[0] * _WIDTH, datatype=DataType.REGISTERS, readonly=True
                )

            devices = [SimDevice(self.unit_id, simdata=[block()], action=self._on_access)]
            if self.unit_id != 0:
                # Device 0 catches every other unit id; it stays silent, as the older path does.
                devices.append(SimDevice(0, simdata=[block()], action=_unknown_unit))
            return devices
        # Positional: the keyword is slaves= up to 3.9 and devices= from 3.10. single=False.
        return ModbusServerContext({self.unit_id: _LiveContext(self)}, False)

    async def _on_access(  # noqa: PLR0917 - pymodbus calls it positionally
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> None:
        """SimDevice hook (pymodbus >= 3.13): refresh the registers before they are read."""
        offset = self.register - start_address
        current_registers[offset : offset + _WIDTH] = self._served_registers()


async def _unknown_unit(*_access: object) -> None:
    """SimDevice hook (pymodbus >= 3.13) for unit ids the meter does not have."""
    raise _NoSuchUnit("no such unit")


class _OverlongRegisters(list[int]):
    """Registers whose length claims one more than they hold.

    pymodbus <= 3.12 writes ``len(registers) * 2`` as the reply's byte count, then only the
    registers it iterates.
    """

    def __len__(self) -> int:
        return super().__len__() + 1


class _LiveContext:
    """Device context for pymodbus <= 3.12, computing the registers on each read."""

    def __init__(self, meter: SimMeter) -> None:
        self._meter = meter

    def validate(self, func_code: int, address: int, count: int = 1) -> bool:
        """Accept reads of (part of) the register pair; refuse everything else."""
        first = self._meter.register
        return (
            func_code in (_READ_HOLDING, _READ_INPUT)
            and count >= 1
            and first <= address
            and address + count <= first + _WIDTH
        )

    async def async_getValues(self, func_code: int, address: int, count: int = 1) -> Any:  # noqa: N802
        """Return the requested registers, or an exception code when out of range."""
        registers = self._meter._served_registers()
        if not self.validate(func_code, address, count):
            return _ILLEGAL_ADDRESS
        offset = address - self._meter.register
        served = registers[offset : offset + count]
        # These versions give the server handlers no packet hook: lie about the length instead.
        return _OverlongRegisters(served) if self._meter.wrong_byte_count else served

    async def async_setValues(self, func_code: int, address: int, values: list[int]) -> Any:  # noqa: N802
        """Refuse writes: the meter is read-only."""
        return _ILLEGAL_ADDRESS

    def reset(self) -> None:
        """Nothing to reset; the values are computed."""
