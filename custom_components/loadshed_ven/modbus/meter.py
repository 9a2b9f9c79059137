"""Read the building's main meter over Modbus TCP, with any pymodbus from 3.8.3 to 3.x.

Differences between pymodbus versions are contained here:
- the unit id keyword is ``slave=`` up to 3.9 and ``device_id=`` from 3.10 (found by introspection);
- decoding uses ``struct`` because ``BinaryPayloadDecoder`` was removed in 3.10;
- error replies are *returned* (``isError()``), transport failures *raised*;
- pymodbus never retries a failed first ``connect()``, so every read connects when needed.
"""

from __future__ import annotations

import inspect
import math
import struct
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException


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
    timeout: float = 3.0


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

    async def read_kw(self) -> float:
        """Read the meter once and return kW; raise :class:`MeterError` on any failure."""
        cfg = self.config
        if not self._client.connected and not await self._client.connect():
            raise MeterError(f"cannot connect to the meter at {cfg.host}:{cfg.port}")
        try:
            response = await self._read(
                cfg.register, count=register_count(cfg.data_type), **self._unit
            )
        except ModbusException as err:
            raise MeterError(f"no answer from the meter at {cfg.host}:{cfg.port}: {err}") from err
        if response.isError():
            code = getattr(response, "exception_code", "?")
            raise MeterError(
                f"the meter refused to read {cfg.register_type} register {cfg.register} "
                f"of unit {cfg.unit_id} (Modbus exception code {code})"
            )
        value = decode(list(response.registers), cfg.data_type, cfg.word_order) * cfg.scale
        if not math.isfinite(value):
            raise MeterError(f"the meter returned {value}, not a number of kW")
        return value

    def close(self) -> None:
        """Close the connection and stop pymodbus' reconnect task."""
        self._client.close()
