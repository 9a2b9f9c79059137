"""Read the building's main meter over Modbus TCP, with any pymodbus from 3.8.3 to 3.x.

Differences between pymodbus versions are contained here:
- the unit id keyword is ``slave=`` up to 3.9 and ``device_id=`` from 3.10 (found by introspection);
- decoding uses ``struct`` because ``BinaryPayloadDecoder`` was removed in 3.10;
- error replies are *returned* (``isError()``), transport failures *raised*;
- pymodbus never retries a failed first ``connect()``, so every read connects when needed;
- pymodbus decodes replies inside the asyncio protocol callback, where a malformed reply (a byte
  count that does not match the data) raises, asyncio logs "Fatal error: protocol.data_received()
  call failed" with a traceback, and drops the connection; the read then only times out. The
  adapter wraps that callback: a reply that cannot be decoded is discarded, the pending read
  fails at once with a readable :class:`MeterError`, and the connection stays up.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

# A building main meter beyond 100 MW does not exist (the largest single-site services, data
# centres and campuses, draw tens of MW); a float32 read with the wrong word order or register
# lands far beyond it, so the default catches garbage without limiting real sites.
DEFAULT_MAX_KW: Final = 100_000.0
# An energy register beyond 1 PWh (a 100 MW site running flat out for over a millennium) is a
# misread too; the energy tracker also refuses increases the site's power could not explain.
MAX_KWH: Final = 1e12


class RegisterType(StrEnum):
    """Which register table holds the value."""

    INPUT = "input"  # function code 4 (eGauge)
    HOLDING = "holding"  # function code 3


class DataType(StrEnum):
    """How the registers encode the value."""

    FLOAT32 = "float32"
    INT32 = "int32"
    UINT32 = "uint32"
    INT16 = "int16"
    UINT16 = "uint16"


class WordOrder(StrEnum):
    """Order of the 16-bit words of a 32-bit value (bytes within a word are always big-endian)."""

    BIG = "big"  # most significant word first (eGauge)
    LITTLE = "little"


_FORMATS: dict[DataType, tuple[int, str]] = {
    DataType.FLOAT32: (2, ">f"),
    DataType.INT32: (2, ">i"),
    DataType.UINT32: (2, ">I"),
    DataType.INT16: (1, ">h"),
    DataType.UINT16: (1, ">H"),
}


class MeterError(Exception):
    """The meter gave no usable value; the message says why, for a person."""


class ImplausibleReadingError(MeterError):
    """The meter answered with a value no building draws (or not a finite number)."""

    def __init__(self, value: float, limit: float) -> None:
        """Remember the value read and the limit it broke."""
        super().__init__(
            f"the meter returned {value:g} kW, not a finite number within ±{limit:g} kW"
        )
        self.value = value
        self.limit = limit


class _UndecodableReplyError(Exception):
    """Set on pymodbus' pending request when its reply could not be decoded."""


def check_plausible(kw: float, max_kw: float) -> float:
    """Return ``kw`` if it is finite and within ±``max_kw``; raise ImplausibleReadingError."""
    if not math.isfinite(kw) or abs(kw) > max_kw:
        raise ImplausibleReadingError(kw, max_kw)
    return kw


@dataclass(frozen=True, kw_only=True)
class MeterConfig:
    """Where the kW value lives and how to turn it into kW."""

    host: str
    port: int = 502
    unit_id: int = 1
    register: int = 17
    register_type: RegisterType = RegisterType.INPUT
    data_type: DataType = DataType.FLOAT32
    word_order: WordOrder = WordOrder.BIG
    scale: float = 1.0  # multiply the decoded value by this to get kW (0.001 for a meter in W)
    max_kw: float = DEFAULT_MAX_KW  # readings beyond ±max_kw are refused as implausible
    timeout: float = 3.0
    # The kWh imported, as a float32 in the same unit, register table and word order (eGauge);
    # ``data_type`` and ``scale`` apply to the power register only. None: the meter has none.
    energy_register: int | None = None


def register_count(data_type: DataType) -> int:
    """Number of 16-bit registers that ``data_type`` occupies."""
    return _FORMATS[data_type][0]


def decode(registers: list[int], data_type: DataType, word_order: WordOrder) -> float:
    """Decode raw 16-bit ``registers`` into a number."""
    count, fmt = _FORMATS[data_type]
    if len(registers) != count:
        raise MeterError(f"expected {count} registers, got {len(registers)}")
    words = registers if word_order is WordOrder.BIG else list(reversed(registers))
    value: float = struct.unpack(fmt, struct.pack(f">{count}H", *words))[0]
    return float(value)


def _unit_keyword(method: Any) -> str:
    """``device_id`` (pymodbus >= 3.10) or ``slave`` (3.8, 3.9)."""
    return "device_id" if "device_id" in inspect.signature(method).parameters else "slave"


class ModbusMeter:
    """One meter connection. Not thread-safe; use from one event loop."""

    def __init__(self, config: MeterConfig) -> None:
        """Prepare the client; nothing connects until the first read."""
        self.config = config
        self._client = AsyncModbusTcpClient(
            config.host,
            port=config.port,
            timeout=config.timeout,
            retries=1,
            reconnect_delay=0.5,
            reconnect_delay_max=30,  # pymodbus' 300 s default could mean minutes without data
        )
        reader = (
            self._client.read_input_registers
            if config.register_type is RegisterType.INPUT
            else self._client.read_holding_registers
        )
        self._read = reader
        self._unit = {_unit_keyword(reader): config.unit_id}
        self._contain_undecodable_replies()

    def _contain_undecodable_replies(self) -> None:
        """Catch decoding errors in pymodbus' data callback (see the module docstring).

        The client reuses one protocol object (``ctx``) for every connection, so wrapping its
        ``callback_data`` once covers reconnections too. Checked on pymodbus 3.8.3 and 3.13.1;
        if a later version renames these, reads still work and only the containment is lost.
        """
        protocol = getattr(self._client, "ctx", None)
        original: Callable[..., int] | None = getattr(protocol, "callback_data", None)
        if protocol is None or original is None:
            return

        def contained(data: bytes, addr: tuple[str, int] | None = None) -> int:
            try:
                return original(data, addr)
            except (ModbusException, ValueError, IndexError, struct.error) as err:
                pending: asyncio.Future[Any] | None = getattr(protocol, "response_future", None)
                if pending is not None and not pending.done():
                    pending.set_exception(_UndecodableReplyError(str(err)))
                return len(data)  # drop the whole buffer: nothing in it can be trusted

        setattr(protocol, "callback_data", contained)  # noqa: B010 - a method, replaced

    async def read_kw(self) -> float:
        """Read the meter once and return kW; raise :class:`MeterError` on any failure."""
        cfg = self.config
        registers = await self._registers(cfg.register, register_count(cfg.data_type))
        value = decode(registers, cfg.data_type, cfg.word_order) * cfg.scale
        return check_plausible(value, cfg.max_kw)

    async def read_kwh(self) -> float:
        """Read the energy register once and return kWh; raise :class:`MeterError` on failure."""
        cfg = self.config
        if cfg.energy_register is None:
            raise MeterError("no energy register is configured")
        registers = await self._registers(cfg.energy_register, register_count(DataType.FLOAT32))
        kwh = decode(registers, DataType.FLOAT32, cfg.word_order)
        if not math.isfinite(kwh) or not 0 <= kwh <= MAX_KWH:
            raise MeterError(
                f"the energy register {cfg.energy_register} reads {kwh:g} kWh, "
                f"not a count from 0 to {MAX_KWH:g} kWh"
            )
        return kwh

    async def _registers(self, address: int, count: int) -> list[int]:
        """Read ``count`` registers from ``address`` of the configured table."""
        cfg = self.config
        if not self._client.connected and not await self._client.connect():
            raise MeterError(f"cannot connect to the meter at {cfg.host}:{cfg.port}")
        try:
            response = await self._read(address, count=count, **self._unit)
        except _UndecodableReplyError as err:
            raise MeterError(
                f"the meter at {cfg.host}:{cfg.port} sent a malformed reply ({err})"
            ) from err
        except ModbusException as err:
            raise MeterError(f"no answer from the meter at {cfg.host}:{cfg.port}: {err}") from err
        if response.isError():
            code = getattr(response, "exception_code", "?")
            raise MeterError(
                f"the meter refused to read {cfg.register_type} register {address} "
                f"of unit {cfg.unit_id} (Modbus exception code {code})"
            )
        return list(response.registers)

    def close(self) -> None:
        """Close the connection and stop pymodbus' reconnect task."""
        self._client.close()
