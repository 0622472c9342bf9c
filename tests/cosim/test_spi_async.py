"""An SPI host whose edges are asynchronous to the chip clock, within the slave's spec.

hdl/spi.py oversamples SCLK with a two-flop synchroniser and an edge-detect flop, so it samples
MOSI (and moves MISO) at the third rising clock edge after an SCLK edge: 2 to 3 clocks later,
depending on the edge's phase. It needs SCLK high and low for >= 2 clocks (clk/4). The benches
so far put every edge at one phase (a falling clock edge), i.e. one latency only.

* amaranth.sim of `SPISlave` alone: a seeded host with half periods in [2, 3] clocks drives the
  pins at arbitrary times; every rising SCLK edge is answered exactly at the third rising clock
  edge after it (MISO toggles there; the slave sends 0x55), the measured latencies span
  (2, 3) clocks with every eighth of a clock hit, and every byte arrives intact both ways. At
  clk/2, faster than the spec, the host reads MISO before the slave has moved it.
* Co-simulation on Icarus and Verilator: the bench's `SpiMaster` with `SpiJitter` (seeded from
  the config's seeds), register writes read back, five images with parity on what the RTL
  computed, no link error counted, and the phase of every SCLK edge relative to the chip clock
  counted in the bench: every latency bucket hit. A host at clk/2 breaks the link.
"""

import json
import math

import numpy as np
import pytest
from amaranth.sim import Simulator

from xbarflow.cocotb_tests.spi_master import JITTER_STREAM
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.sim.runner import SimulatorError, build, run
from xbarflow.hdl.spi import SPISlave

PERIOD_PS = 20_000     # 50 MHz chip clock (configs/slp.toml)
BINS = 8               # phase buckets per clock period: latency (3 - phase) clocks
TX_BYTE = 0x55         # alternating bits: MISO toggles at every sample


# -- the slave alone in amaranth.sim -------------------------------------------------------------

def drive_slave(seed, n_bytes, half_min_ps, jitter_ps):
    """Clock `n_bytes` bytes through `SPISlave` from a host with random edge times.

    Times are in ps from the first rising clock edge (tick 1). Returns the SCLK rise times, the
    ticks at which MISO changed, the bytes the slave received and the bytes the host read."""
    dut = SPISlave()
    rng = np.random.default_rng([seed, JITTER_STREAM])
    sent = [int(b) for b in rng.integers(0, 256, size=n_bytes)]
    out = {"rises": [], "miso_ticks": [], "rx": [], "host": []}

    def delay_ps(base):
        d = base + int(rng.integers(0, jitter_ps + 1)) if jitter_ps else base
        return d

    async def host(ctx):
        await ctx.tick()                     # t = 0: the first rising clock edge
        t = 0

        async def wait(d):
            nonlocal t
            if (t + d) % PERIOD_PS == 0:     # never on a clock edge: a race, not a latency
                d += 1
            await ctx.delay(d * 1e-12)
            t += d

        await wait(3 * PERIOD_PS + 1234)
        ctx.set(dut.cs_n, 0)
        await wait(delay_ps(4 * PERIOD_PS))
        for byte in sent:
            value = 0
            for shift in range(7, -1, -1):
                ctx.set(dut.mosi, (byte >> shift) & 1)
                await wait(delay_ps(half_min_ps))
                value = (value << 1) | ctx.get(dut.miso)
                ctx.set(dut.sclk, 1)
                out["rises"].append(t)
                await wait(delay_ps(half_min_ps))
                ctx.set(dut.sclk, 0)
            out["host"].append(value)
        await wait(delay_ps(half_min_ps))
        ctx.set(dut.cs_n, 1)
        await wait(8 * PERIOD_PS)

    async def monitor(ctx):
        ctx.set(dut.tx.valid, 1)
        ctx.set(dut.tx.payload, TX_BYTE)
        ctx.set(dut.rx.ready, 1)
        await ctx.tick()                     # tick 1, t = 0
        tick, miso = 1, ctx.get(dut.miso)
        while True:
            await ctx.tick()
            tick += 1
            if ctx.get(dut.miso) != miso:
                miso = ctx.get(dut.miso)
                out["miso_ticks"].append((tick - 1) * PERIOD_PS)
            if ctx.get(dut.rx.valid):
                out["rx"].append(ctx.get(dut.rx.payload))

    sim = Simulator(dut)
    sim.add_clock(PERIOD_PS * 1e-12)
    sim.add_testbench(monitor, background=True)
    sim.add_testbench(host)
    sim.run()
    return sent, out


def test_slave_samples_at_the_third_clock_edge_after_every_async_edge(cfg):
    sent, out = drive_slave(cfg.seeds.noise, 48, 2 * PERIOD_PS, PERIOD_PS)
    assert out["rx"] == sent, "every byte received intact"
    assert out["host"] == [TX_BYTE] * len(sent), "the host read every MISO bit in time"
    rises, changes = out["rises"], out["miso_ticks"]
    assert len(changes) == len(rises), "MISO moved once per SCLK rising edge"
    latencies, buckets = [], [0] * BINS
    for t_rise, t_change in zip(rises, changes):
        # First rising clock edge after the pin edge, then two more clocks.
        assert t_change == (math.ceil(t_rise / PERIOD_PS) + 2) * PERIOD_PS
        latencies.append((t_change - t_rise) / PERIOD_PS)
        buckets[(t_rise % PERIOD_PS) * BINS // PERIOD_PS] += 1
    assert 2 < min(latencies) < 2.05 and 2.95 < max(latencies) < 3, (min(latencies), max(latencies))
    assert all(buckets), f"every eighth of a clock of edge phase: {buckets}"


def test_slave_at_clk_over_2_is_too_fast(cfg):
    """SCLK = clk/2 (high and low one clock each) is outside the spec: MISO moves 2-3 clocks
    after a rising edge, after the host's next rising edge has already read it."""
    sent, out = drive_slave(cfg.seeds.noise, 8, PERIOD_PS, PERIOD_PS // 3)
    assert out["host"] != [TX_BYTE] * len(sent)


# -- co-simulation on both simulators --------------------------------------------------------------

IMAGES = 5


@pytest.fixture(scope="module")
def conductance(cfg):
    rng = np.random.default_rng(cfg.seeds.train)
    w = 0.15 * rng.standard_normal((cfg.rows, cfg.outputs))
    w[0, 0], w[1, 1] = 1.0, -1.0
    return GoldenChip.from_weights(cfg, w).array.conductance


def spi_timing(cfg, **extra):
    """Half periods in [2, 3] clocks, each window at a random phase of one clock."""
    period_ns = 1e9 / cfg.clock.freq_hz
    assert round(period_ns * 1000) == PERIOD_PS
    return {"seed": cfg.seeds.noise, "jitter_ns": period_ns, "phase_ns": period_ns, "bins": BINS, **extra}


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_async_host_cosimulation(sim, cfg, dataset, conductance, sim_root, tmp_path):
    indices = np.linspace(0, len(dataset.y_test) - 1, IMAGES).astype(np.int64)
    x, y = dataset.x_test[indices], dataset.y_test[indices]
    result = run(build(cfg, sim, root=sim_root), conductance, x, y, indices, tmp_path,
                 timeout_s=900, spi_timing=spi_timing(cfg))
    golden = GoldenChip(cfg, conductance).infer(to_dac_codes(x, cfg), indices)
    assert result.mismatches == [], "parity, SCRATCH read-back and no link error"
    assert all(len(image) == 1 and image[0][0] == 0 and np.array_equal(image[0][1], code)
               for image, code in zip(result.tile_dac_codes, to_dac_codes(x, cfg)))
    assert np.array_equal(result.sums, golden.adc_codes), "sums the RTL read back"
    assert np.array_equal(result.classes, golden.classes)
    edges = result.spi_edges
    for kind in ("sclk_rise", "sclk_fall"):
        assert len(edges[kind]) == BINS and all(edges[kind]), f"{kind} phases {edges[kind]}"
        assert min(edges[kind]) > sum(edges[kind]) / BINS / 2, f"{kind}: roughly uniform {edges[kind]}"
    assert sum(edges["cs_fall"]) == sum(edges["cs_rise"]) > 8 * IMAGES
    assert sum(1 for n in edges["cs_fall"] if n) >= BINS - 1, f"CS phases {edges['cs_fall']}"


def test_async_host_faster_than_spec_breaks_the_link(cfg, dataset, conductance, sim_root, tmp_path):
    """SCLK at clk/2: the first exchange already fails (a malformed or missing response)."""
    period_ns = 1e9 / cfg.clock.freq_hz
    with pytest.raises(SimulatorError):
        run(build(cfg, "verilator", root=sim_root), conductance, dataset.x_test[:1],
            dataset.y_test[:1], np.arange(1), tmp_path, timeout_s=600,
            spi_timing=spi_timing(cfg, half_period_ns=period_ns, jitter_ns=period_ns / 3))
    error = json.loads((tmp_path / "cosim.json").read_text())["error"]
    assert "ProtocolError" in error, error
