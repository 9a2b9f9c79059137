"""A building main meter on Modbus TCP that reads like an eGauge: kW as float32, big-endian.

The value sits at one register pair (default 17-18, 0-based PDU addresses) in both the input
and the holding registers, and is computed afresh on every read from a simple load model::

    kW = max(0, base_kw - kw_per_override * overrides())

so that overriding BACnet points visibly sheds load. An energy register pair (default 19-20)
serves the kWh imported, float32 as well, counting up from ``initial_kwh`` with that load
(trapezoidal between accesses, so a change of load counts from when it was seen).

Faults can be switched on at any time:
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
import time
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
        energy_register: int | None = 19,
        initial_kwh: float = 250_000.0,
    ) -> None:
        """Configure the meter; nothing is bound until :meth:`start`.

        ``energy_register=None`` makes a meter without an energy register.
        """
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the simulated meter binds loopback only, not {host!r}")
        for pair in (register, energy_register):
            if pair is not None and not 0 <= pair <= 0xFFFF - _WIDTH + 1:
                raise ValueError(f"register out of range: {pair}")
        if energy_register is not None and abs(energy_register - register) < _WIDTH:
            raise ValueError("the energy register overlaps the power register")
        if not 0 <= unit_id <= 255:
            raise ValueError(f"unit id out of range: {unit_id}")
        self.host = host
        self.register = register
        self.unit_id = unit_id
        self.base_kw = base_kw
        self.kw_per_override = kw_per_override
        self.overrides = overrides
        self.energy_register = energy_register
        self._kwh = initial_kwh
        self._kwh_at = time.monotonic()
        self._kwh_kw = self.current_kw()
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
        """Set the building's load with no overrides in effect (the energy count follows)."""
        self.energy_kwh()  # count the old load up to now
        self.base_kw = kw
        self._kwh_kw = self.current_kw()

    def energy_kwh(self) -> float:
        """The energy register's count now: kWh imported since the meter was made, and before."""
        now, kw = time.monotonic(), self.current_kw()
        self._kwh += (self._kwh_kw + kw) / 2 * (now - self._kwh_at) / 3600
        self._kwh_at, self._kwh_kw = now, kw
        return self._kwh

    def current_kw(self) -> float:
        """The load model's value now, regardless of the faults switched on."""
        overridden = max(0, self.overrides()) if self.overrides is not None else 0
        return max(0.0, self.base_kw - self.kw_per_override * overridden)

    def _served_registers(self) -> dict[int, int]:
        """Address -> value of every register a read may return now.

        Raising makes the server drop the request.
        """
        if self.silent:
            raise _NoSuchUnit("meter is silent")
        kwh = self.energy_kwh()  # counted on every access, whatever the faults
        if self.nan:
            kw = kwh = math.nan
        elif self.implausible:
            kw = kwh = IMPLAUSIBLE_KW
        else:
            kw = self.current_kw()
        served = dict(enumerate(encode_float32_be(kw), start=self.register))
        if self.energy_register is not None:
            served.update(enumerate(encode_float32_be(kwh), start=self.energy_register))
        return served

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

            pairs = sorted(p for p in (self.register, self.energy_register) if p is not None)

            def block() -> list[Any]:
                # One shared block: holding and input reads hit the same registers.
                return [
                    SimData(pair, values=[0] * _WIDTH, datatype=DataType.REGISTERS, readonly=True)
                    for pair in pairs
                ]

            devices = [SimDevice(self.unit_id, simdata=block(), action=self._on_access)]
            if self.unit_id != 0:
                # Device 0 catches every other unit id; it stays silent, as the older path does.
                devices.append(SimDevice(0, simdata=block(), action=_unknown_unit))
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
        for served_address, value in self._served_registers().items():
            current_registers[served_address - start_address] = value


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

    def _addresses(self) -> set[int]:
        meter = self._meter
        pairs = [p for p in (meter.register, meter.energy_register) if p is not None]
        return {pair + i for pair in pairs for i in range(_WIDTH)}

    def validate(self, func_code: int, address: int, count: int = 1) -> bool:
        """Accept reads within the register pairs; refuse everything else."""
        return (
            func_code in (_READ_HOLDING, _READ_INPUT)
            and count >= 1
            and set(range(address, address + count)) <= self._addresses()
        )

    async def async_getValues(self, func_code: int, address: int, count: int = 1) -> Any:  # noqa: N802
        """Return the requested registers, or an exception code when out of range."""
        registers = self._meter._served_registers()
        if not self.validate(func_code, address, count):
            return _ILLEGAL_ADDRESS
        served = [registers[a] for a in range(address, address + count)]
        # These versions give the server handlers no packet hook: lie about the length instead.
        return _OverlongRegisters(served) if self._meter.wrong_byte_count else served

    async def async_setValues(self, func_code: int, address: int, values: list[int]) -> Any:  # noqa: N802
        """Refuse writes: the meter is read-only."""
        return _ILLEGAL_ADDRESS

    def reset(self) -> None:
        """Nothing to reset; the values are computed."""
