"""The simulated main meter, read with a real pymodbus client over loopback."""

from __future__ import annotations

import asyncio
import inspect
import math
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException

from sim.meter import IMPLAUSIBLE_KW, SimMeter, encode_float32_be

pytestmark = pytest.mark.compat

ClientFactory = Callable[[SimMeter], Awaitable[AsyncModbusTcpClient]]


def _unit(client: AsyncModbusTcpClient, unit_id: int) -> dict[str, int]:
    """The unit keyword: ``slave=`` up to pymodbus 3.9, ``device_id=`` from 3.10."""
    params = inspect.signature(client.read_input_registers).parameters
    return {"device_id" if "device_id" in params else "slave": unit_id}


def _decode(registers: list[int]) -> float:
    value: float = struct.unpack(">f", struct.pack(">HH", *registers))[0]
    return value


async def _read(
    client: AsyncModbusTcpClient,
    meter: SimMeter,
    *,
    holding: bool = False,
    address: int | None = None,
) -> float:
    read = client.read_holding_registers if holding else client.read_input_registers
    rr = await read(
        meter.register if address is None else address, count=2, **_unit(client, meter.unit_id)
    )
    assert not rr.isError(), rr
    return _decode(rr.registers)


@pytest.fixture
async def meter(socket_enabled: None) -> AsyncIterator[SimMeter]:
    sim = SimMeter()
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def connect(socket_enabled: None) -> AsyncIterator[ClientFactory]:
    clients: list[AsyncModbusTcpClient] = []

    async def _connect(sim: SimMeter) -> AsyncModbusTcpClient:
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=0.5, retries=0)
        clients.append(client)
        assert await client.connect()
        return client

    yield _connect
    for client in clients:
        client.close()


def test_load_model_without_sockets() -> None:
    points = [0]
    sim = SimMeter(base_kw=850.0, kw_per_override=1.5, overrides=lambda: points[0])
    assert sim.current_kw() == 850.0
    points[0] = 100
    assert sim.current_kw() == 700.0
    points[0] = 10_000
    assert sim.current_kw() == 0.0  # floored
    points[0] = -5
    assert sim.current_kw() == 850.0
    assert encode_float32_be(850.0) == [0x4454, 0x8000]
    assert encode_float32_be(1e39) == encode_float32_be(math.inf)


def test_binds_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        SimMeter(host="192.0.2.1")
    with pytest.raises(ValueError, match="register"):
        SimMeter(register=0xFFFF)


async def test_input_and_holding_serve_exact_float(meter: SimMeter, connect: ClientFactory) -> None:
    assert meter.port > 0
    assert meter.running
    client = await connect(meter)
    assert await _read(client, meter) == 850.0
    assert await _read(client, meter, holding=True) == 850.0
    rr = await client.read_input_registers(17, count=2, **_unit(client, 1))
    assert rr.registers == [0x4454, 0x8000]  # float32, big-endian words


async def test_value_is_live(meter: SimMeter, connect: ClientFactory) -> None:
    client = await connect(meter)
    meter.set_base_kw(612.25)
    assert await _read(client, meter) == 612.25
    assert await _read(client, meter, holding=True) == 612.25
    meter.base_kw = 1000.5
    assert await _read(client, meter) == 1000.5


async def test_overrides_shed_load(socket_enabled: None, connect: ClientFactory) -> None:
    points = [0]
    sim = SimMeter(base_kw=850.0, kw_per_override=2.5, overrides=lambda: points[0])
    await sim.start()
    try:
        client = await connect(sim)
        assert await _read(client, sim) == 850.0
        points[0] = 40
        assert await _read(client, sim) == 750.0
        assert await _read(client, sim, holding=True) == 750.0
        points[0] = 1000
        assert await _read(client, sim) == 0.0
    finally:
        await sim.stop()


async def test_configurable_register_and_unit(socket_enabled: None, connect: ClientFactory) -> None:
    sim = SimMeter(register=500, unit_id=7, base_kw=123.5)
    await sim.start()
    try:
        client = await connect(sim)
        assert await _read(client, sim, address=500) == 123.5
        assert await _read(client, sim, address=500, holding=True) == 123.5
        rr = await client.read_input_registers(17, count=2, **_unit(client, 7))
        assert rr.isError()
        assert rr.exception_code == 2  # illegal address
    finally:
        await sim.stop()


async def test_writes_are_refused(meter: SimMeter, connect: ClientFactory) -> None:
    client = await connect(meter)
    rr = await client.write_register(17, 1, **_unit(client, 1))
    assert rr.isError()
    assert rr.exception_code == 2
    assert await _read(client, meter, holding=True) == 850.0


async def test_silent_meter_times_out(meter: SimMeter, connect: ClientFactory) -> None:
    client = await connect(meter)
    meter.silent = True
    started = time.monotonic()
    with pytest.raises(ModbusIOException):
        await client.read_input_registers(17, count=2, **_unit(client, 1))
    assert time.monotonic() - started < 2.0
    meter.silent = False
    assert await _read(client, meter) == 850.0


async def test_other_unit_ids_get_no_reply(meter: SimMeter, connect: ClientFactory) -> None:
    client = await connect(meter)
    with pytest.raises(ModbusIOException):
        await client.read_input_registers(17, count=2, **_unit(client, 9))
    assert await _read(client, meter) == 850.0


async def test_nan(meter: SimMeter, connect: ClientFactory) -> None:
    client = await connect(meter)
    meter.nan = True
    assert math.isnan(await _read(client, meter))
    assert math.isnan(await _read(client, meter, holding=True))
    assert meter.current_kw() == 850.0  # the load model is unaffected by the fault
    meter.nan = False
    assert await _read(client, meter) == 850.0


async def test_stop_refuses_connections(socket_enabled: None, connect: ClientFactory) -> None:
    sim = SimMeter()
    await sim.start()
    client = await connect(sim)
    assert await _read(client, sim) == 850.0
    await sim.stop()
    assert not sim.running
    await sim.stop()  # idempotent
    # The server has closed the connection; the client notices on its next loop iterations.
    for _ in range(200):
        if not client.connected:
            break
        await asyncio.sleep(0.01)
    assert not client.connected
    with pytest.raises(ConnectionException):
        await client.read_input_registers(17, count=2, **_unit(client, 1))
    late = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=0.5, retries=0)
    try:
        assert not await late.connect()
    finally:
        late.close()


async def test_port_in_use_and_double_start(meter: SimMeter) -> None:
    with pytest.raises(RuntimeError, match="already started"):
        await meter.start()
    other = SimMeter(port=meter.port)
    with pytest.raises(OSError, match="cannot listen"):
        await other.start()
    assert not other.running
    await other.stop()


async def _raw_read(meter: SimMeter, function_code: int = 4) -> bytes:
    """One Modbus TCP read of the meter's two registers, as the raw reply bytes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", meter.port)
    try:
        pdu = struct.pack(">BHH", function_code, meter.register, 2)
        writer.write(struct.pack(">HHHB", 7, 0, len(pdu) + 1, meter.unit_id) + pdu)
        await writer.drain()
        header = await asyncio.wait_for(reader.readexactly(6), 2)
        length = struct.unpack(">H", header[4:6])[0]
        return header + await asyncio.wait_for(reader.readexactly(length), 2)
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("function_code", [3, 4])
async def test_wrong_byte_count_reply(meter: SimMeter, function_code: int) -> None:
    good = await _raw_read(meter, function_code)
    # MBAP (7 bytes), function code, byte count 4, then the two registers.
    assert good[7:9] == bytes([function_code, 4])
    assert good[9:] == struct.pack(">HH", *encode_float32_be(850.0))
    meter.wrong_byte_count = True
    bad = await _raw_read(meter, function_code)
    # The frame's own length still matches what was sent; only the byte count lies.
    assert struct.unpack(">H", bad[4:6])[0] == len(bad) - 6
    assert bad[7:9] == bytes([function_code, 6])
    assert bad[9:] == good[9:]
    meter.wrong_byte_count = False
    assert await _raw_read(meter, function_code) == good


async def test_implausible_value(meter: SimMeter, connect: ClientFactory) -> None:
    client = await connect(meter)
    meter.implausible = True
    assert await _read(client, meter) == pytest.approx(IMPLAUSIBLE_KW, rel=1e-6)
    assert meter.current_kw() == 850.0  # the load model is unaffected by the fault
    meter.implausible = False
    assert await _read(client, meter) == 850.0


# ---- the energy register ------------------------------------------------------------------------


def test_energy_counts_the_load_without_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    points = [0]
    sim = SimMeter(base_kw=720.0, kw_per_override=7.2, overrides=lambda: points[0], initial_kwh=10)
    assert sim.energy_kwh() == 10.0
    clock[0] += 10  # 720 kW for 10 s: 2 kWh
    assert sim.energy_kwh() == pytest.approx(12.0)
    sim.set_base_kw(360.0)  # counted from the change on
    clock[0] += 10
    assert sim.energy_kwh() == pytest.approx(13.0)
    points[0] = 50  # 360 -> 0 kW seen at the next access: trapezoidal
    clock[0] += 10
    assert sim.energy_kwh() == pytest.approx(13.5)
    clock[0] += 10
    assert sim.energy_kwh() == pytest.approx(13.5)


def test_energy_register_is_checked() -> None:
    with pytest.raises(ValueError, match="out of range"):
        SimMeter(energy_register=0xFFFF)
    with pytest.raises(ValueError, match="overlaps"):
        SimMeter(register=18, energy_register=19)


async def test_energy_register_counts_up_with_the_power(
    socket_enabled: None, connect: ClientFactory
) -> None:
    sim = SimMeter(base_kw=3600.0, initial_kwh=0.0)  # 1 kWh per second
    await sim.start()
    try:
        client = await connect(sim)
        first = await _read(client, sim, address=19)
        started = time.monotonic()
        await asyncio.sleep(0.5)
        assert await _read(client, sim, address=19, holding=True) == pytest.approx(
            first + (time.monotonic() - started), abs=0.05
        )
        # Power and energy in one read of the four registers: both pairs are live.
        rr = await client.read_input_registers(17, count=4, **_unit(client, 1))
        assert _decode(rr.registers[:2]) == 3600.0
        assert _decode(rr.registers[2:]) == pytest.approx(sim.energy_kwh(), abs=0.01)
        sim.set_base_kw(0.0)
        stopped = await _read(client, sim, address=19)
        await asyncio.sleep(0.2)
        assert await _read(client, sim, address=19) == stopped
    finally:
        await sim.stop()


async def test_energy_register_faults(meter: SimMeter, connect: ClientFactory) -> None:
    client = await connect(meter)
    counted = await _read(client, meter, address=19)
    assert counted >= 250_000.0
    meter.nan = True
    assert math.isnan(await _read(client, meter, address=19))
    meter.nan = False
    meter.implausible = True
    assert await _read(client, meter, address=19) == pytest.approx(IMPLAUSIBLE_KW, rel=1e-6)
    meter.implausible = False
    assert await _read(client, meter, address=19) >= counted  # counting went on meanwhile


async def test_meter_without_energy_register(socket_enabled: None, connect: ClientFactory) -> None:
    sim = SimMeter(energy_register=None)
    await sim.start()
    try:
        client = await connect(sim)
        rr = await client.read_input_registers(19, count=2, **_unit(client, 1))
        assert rr.isError()
        assert rr.exception_code == 2
        assert await _read(client, sim) == 850.0
    finally:
        await sim.stop()


async def test_energy_register_far_from_the_power(
    socket_enabled: None, connect: ClientFactory
) -> None:
    sim = SimMeter(register=500, energy_register=100, initial_kwh=42.0, base_kw=0.0)
    await sim.start()
    try:
        client = await connect(sim)
        assert await _read(client, sim, address=100) == 42.0
        assert await _read(client, sim, address=500) == 0.0
        rr = await client.read_input_registers(300, count=2, **_unit(client, 1))
        assert rr.isError()  # the gap between the pairs is no register
    finally:
        await sim.stop()
