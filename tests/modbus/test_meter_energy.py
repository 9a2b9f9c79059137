"""The meter adapter reads an eGauge-style energy register (float32 kWh) over real Modbus TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from custom_components.loadshed_ven.modbus.meter import (
    MeterConfig,
    MeterError,
    ModbusMeter,
    RegisterType,
    WordOrder,
)
from sim.meter import SimMeter

pytestmark = pytest.mark.compat


@pytest.fixture
async def sim_meter(socket_enabled: None) -> AsyncIterator[SimMeter]:
    meter = SimMeter(base_kw=0.0, initial_kwh=1234.5)  # no load: the count stands still
    await meter.start()
    yield meter
    await meter.stop()


@pytest.fixture
async def meters() -> AsyncIterator[list[ModbusMeter]]:
    made: list[ModbusMeter] = []
    yield made
    for meter in made:
        meter.close()


def _adapter(made: list[ModbusMeter], port: int, **kwargs: object) -> ModbusMeter:
    config = MeterConfig(host="127.0.0.1", port=port, timeout=0.5, **kwargs)  # type: ignore[arg-type]
    meter = ModbusMeter(config)
    made.append(meter)
    return meter


@pytest.mark.parametrize("register_type", list(RegisterType))
async def test_reads_kwh(
    sim_meter: SimMeter, meters: list[ModbusMeter], register_type: RegisterType
) -> None:
    adapter = _adapter(meters, sim_meter.port, energy_register=19, register_type=register_type)
    assert await adapter.read_kwh() == 1234.5
    assert await adapter.read_kw() == 0.0  # the same connection reads the power too


async def test_energy_ignores_the_power_registers_type_and_scale(
    sim_meter: SimMeter, meters: list[ModbusMeter]
) -> None:
    adapter = _adapter(meters, sim_meter.port, energy_register=19, data_type="int16", scale=0.001)
    assert await adapter.read_kwh() == 1234.5


async def test_little_word_order_applies_to_energy(
    sim_meter: SimMeter, meters: list[ModbusMeter]
) -> None:
    adapter = _adapter(meters, sim_meter.port, energy_register=19, word_order=WordOrder.LITTLE)
    assert await adapter.read_kwh() != 1234.5  # the sim is big-endian: swapped words differ


async def test_no_energy_register(sim_meter: SimMeter, meters: list[ModbusMeter]) -> None:
    with pytest.raises(MeterError, match="no energy register"):
        await _adapter(meters, sim_meter.port).read_kwh()


async def test_wrong_energy_register(sim_meter: SimMeter, meters: list[ModbusMeter]) -> None:
    adapter = _adapter(meters, sim_meter.port, energy_register=4000)
    with pytest.raises(MeterError, match=r"register 4000 of unit 1 .*exception code 2"):
        await adapter.read_kwh()


@pytest.mark.parametrize("fault", ["nan", "implausible"])
async def test_unusable_count_is_refused(
    sim_meter: SimMeter, meters: list[ModbusMeter], fault: str
) -> None:
    adapter = _adapter(meters, sim_meter.port, energy_register=19)
    setattr(sim_meter, fault, True)
    with pytest.raises(MeterError, match=r"energy register 19 reads .* kWh, not a count"):
        await adapter.read_kwh()
    setattr(sim_meter, fault, False)
    assert await adapter.read_kwh() == 1234.5


async def test_dead_meter(socket_enabled: None, meters: list[ModbusMeter]) -> None:
    sim = SimMeter()
    await sim.start()
    port = sim.port
    await sim.stop()
    with pytest.raises(MeterError, match="cannot connect"):
        await _adapter(meters, port, energy_register=19).read_kwh()
