"""The meter adapter against the simulated meter over real Modbus TCP (both pymodbus passes)."""

from __future__ import annotations

import logging
import math
import socket
import time
from collections.abc import AsyncIterator

import pytest

from custom_components.loadshed_ven.modbus.meter import (
    DEFAULT_MAX_KW,
    DataType,
    ImplausibleReadingError,
    MeterConfig,
    MeterError,
    ModbusMeter,
    RegisterType,
    WordOrder,
    check_plausible,
    decode,
    register_count,
)
from sim.meter import IMPLAUSIBLE_KW, SimMeter

pytestmark = pytest.mark.compat


@pytest.fixture
async def sim_meter(socket_enabled: None) -> AsyncIterator[SimMeter]:
    meter = SimMeter(base_kw=812.5)
    await meter.start()
    yield meter
    await meter.stop()


@pytest.fixture
async def meters() -> AsyncIterator[list[ModbusMeter]]:
    """Adapters created by a test, closed at teardown."""
    made: list[ModbusMeter] = []
    yield made
    for meter in made:
        meter.close()


def _adapter(made: list[ModbusMeter], **kwargs: object) -> ModbusMeter:
    meter = ModbusMeter(MeterConfig(**{"host": "127.0.0.1", "timeout": 0.5, **kwargs}))  # type: ignore[arg-type]
    made.append(meter)
    return meter


async def test_reads_kw_from_input_and_holding_registers(
    sim_meter: SimMeter, meters: list[ModbusMeter]
) -> None:
    for register_type in RegisterType:
        adapter = _adapter(meters, port=sim_meter.port, register_type=register_type)
        assert await adapter.read_kw() == 812.5


async def test_scale_turns_watts_into_kw(sim_meter: SimMeter, meters: list[ModbusMeter]) -> None:
    sim_meter.set_base_kw(250_000.0)  # a meter that reports W
    adapter = _adapter(meters, port=sim_meter.port, scale=0.001)
    assert await adapter.read_kw() == pytest.approx(250.0)


async def test_live_value_follows_the_building(
    sim_meter: SimMeter, meters: list[ModbusMeter]
) -> None:
    adapter = _adapter(meters, port=sim_meter.port)
    assert await adapter.read_kw() == 812.5
    sim_meter.overrides = lambda: 10
    assert await adapter.read_kw() == 812.5 - 10 * sim_meter.kw_per_override


async def test_wrong_register_is_a_readable_error(
    sim_meter: SimMeter, meters: list[ModbusMeter]
) -> None:
    adapter = _adapter(meters, port=sim_meter.port, register=4000)
    with pytest.raises(MeterError, match="refused to read input register 4000"):
        await adapter.read_kw()


async def test_nan_is_never_reported_as_a_value(
    sim_meter: SimMeter, meters: list[ModbusMeter]
) -> None:
    sim_meter.nan = True
    adapter = _adapter(meters, port=sim_meter.port)
    with pytest.raises(ImplausibleReadingError, match="returned nan kW, not a finite number"):
        await adapter.read_kw()


async def test_silent_meter_times_out_then_recovers(
    sim_meter: SimMeter, meters: list[ModbusMeter]
) -> None:
    adapter = _adapter(meters, port=sim_meter.port)
    sim_meter.silent = True
    with pytest.raises(MeterError, match="no answer"):
        await adapter.read_kw()
    sim_meter.silent = False
    for _ in range(20):  # pymodbus may drop and re-open the connection after timeouts
        try:
            assert await adapter.read_kw() == 812.5
            break
        except MeterError:
            continue
    else:
        pytest.fail("the adapter did not recover once the meter answered again")


async def test_dead_port_fails_fast_and_connects_once_the_meter_is_up(
    socket_enabled: None, meters: list[ModbusMeter]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = _adapter(meters, port=port)
    with pytest.raises(MeterError, match="cannot connect"):
        await adapter.read_kw()
    # pymodbus never retries a failed first connect; the adapter does, on the next read.
    late = SimMeter(port=port, base_kw=5.0)
    await late.start()
    try:
        assert await adapter.read_kw() == 5.0
    finally:
        adapter.close()
        await late.stop()


@pytest.mark.parametrize(
    ("registers", "data_type", "word_order", "expected"),
    [
        ([0x4448, 0x4000], DataType.FLOAT32, WordOrder.BIG, 801.0),
        ([0x4000, 0x4448], DataType.FLOAT32, WordOrder.LITTLE, 801.0),
        ([0xFFFF, 0xFFFE], DataType.INT32, WordOrder.BIG, -2.0),
        ([0xFFFE, 0xFFFF], DataType.INT32, WordOrder.LITTLE, -2.0),
        ([0x0001, 0x0000], DataType.UINT32, WordOrder.BIG, 65536.0),
        ([0x8000], DataType.INT16, WordOrder.BIG, -32768.0),
        ([0x8000], DataType.UINT16, WordOrder.LITTLE, 32768.0),
    ],
)
def test_decode(
    registers: list[int], data_type: DataType, word_order: WordOrder, expected: float
) -> None:
    assert len(registers) == register_count(data_type)
    assert decode(registers, data_type, word_order) == expected


def test_decode_refuses_the_wrong_register_count() -> None:
    with pytest.raises(MeterError, match="expected 2 registers, got 1"):
        decode([1], DataType.FLOAT32, WordOrder.BIG)
    assert math.isnan(decode([0x7FC0, 0x0000], DataType.FLOAT32, WordOrder.BIG))


async def test_meter_refuses_implausible_reading(
    sim_meter: SimMeter, meters: list[ModbusMeter]
) -> None:
    adapter = _adapter(meters, port=sim_meter.port)
    sim_meter.implausible = True
    with pytest.raises(ImplausibleReadingError) as err:
        await adapter.read_kw()
    assert err.value.value == pytest.approx(IMPLAUSIBLE_KW, rel=1e-6)  # via float32
    assert err.value.limit == DEFAULT_MAX_KW
    assert "1e+30 kW" in str(err.value)
    assert "±100000 kW" in str(err.value)
    sim_meter.implausible = False
    assert await adapter.read_kw() == 812.5


async def test_meter_limit_is_configurable_and_applies_after_scaling(
    sim_meter: SimMeter, meters: list[ModbusMeter]
) -> None:
    sim_meter.set_base_kw(2_000_000.0)  # 2 MW from a meter in W: 2,000 kW
    assert await _adapter(meters, port=sim_meter.port, scale=0.001).read_kw() == 2000.0
    with pytest.raises(ImplausibleReadingError, match="±1500 kW"):
        await _adapter(meters, port=sim_meter.port, scale=0.001, max_kw=1500.0).read_kw()


@pytest.mark.parametrize(
    ("kw", "plausible"),
    [(0.0, True), (-100_000.0, True), (100_000.0, True), (100_000.5, False), (math.inf, False)],
)
def test_check_plausible(kw: float, plausible: bool) -> None:
    if plausible:
        assert check_plausible(kw, DEFAULT_MAX_KW) == kw
    else:
        with pytest.raises(ImplausibleReadingError):
            check_plausible(kw, DEFAULT_MAX_KW)
    with pytest.raises(ImplausibleReadingError, match="nan"):
        check_plausible(math.nan, DEFAULT_MAX_KW)


async def test_meter_wrong_byte_count_fails_fast_without_a_fatal_error(
    sim_meter: SimMeter, meters: list[ModbusMeter], caplog: pytest.LogCaptureFixture
) -> None:
    adapter = _adapter(meters, port=sim_meter.port)
    assert await adapter.read_kw() == 812.5
    sim_meter.wrong_byte_count = True
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(MeterError, match="malformed reply"):
                await adapter.read_kw()
            assert time.monotonic() - started < 0.5  # the read failed at once, no timeout
    fatal = [r for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.WARNING]
    assert not fatal, caplog.text  # asyncio logged no "Fatal error" traceback
    assert "Fatal error" not in caplog.text
    sim_meter.wrong_byte_count = False
    # The connection stayed up: the very next read works.
    assert await adapter.read_kw() == 812.5
