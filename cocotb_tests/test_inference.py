"""End-to-end inference bench: images over SPI through the generated chip and the analog
bridge, each checked against the golden model. `InferenceTestbench` owns the driver (the host),
the monitor (the bridge's tile events), the reference model (the golden chip) and the
scoreboard; the cocotb test only builds and runs it.

For every image the host reads back what the chip computed, the class (RESULT) and the
final-layer sums (the output buffer), and the monitor records the DAC codes the chip drove on
each tile; the results file carries these (parity is defined on them, `xbarflow.flow.sim.parity`) and the
bridge's own ADC codes only as a diagnostic. The cycle counters are read for the first image
(every image with the job's "cycles_every_image"). For the scoreboard's self-tests,
`xbarflow.cocotb_tests.sabotage` can flip one of those answers on its way to the scoreboard.

Parameters come from the job file named by $XBARFLOW_JOB (written by `xbarflow.flow.sim.runner.run`). The host
transport is the job's "transport": "pins" (the bit-banged SpiMaster BFM, the reference) or
"hdl" (the HDL transactor of the harness build, one await per frame); parity is checked either way.
On the "hdl" transport the host also writes only the span of input-buffer bytes that differ from
the previous image (`DeltaHost`): ~73 of 98 bytes on MNIST, ~18 % fewer SPI clocks per image.

Speed: the clock runs in the simulator (in the harness itself on "hdl", cocotb's GPI clock on
"pins": no Python per edge), and the bridge and the transactor wake Python once per transaction. Set XBARFLOW_PROFILE=<file> to write a
cProfile of the image loop (read it with `python -m pstats <file>`).
"""

from __future__ import annotations

import cProfile
import math
import os
import time
from dataclasses import replace
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, with_timeout
from cocotb.utils import get_sim_time

from .analog_bridge import AnalogBridge
from .coverage_monitor import CoverageMonitor
from .programming import program_chip
from .sabotage import WireFaults
from .transports import make_transport
from .watchdog import Watchdog, bridge_task
from xbarflow.flow.core import config as config_mod
from xbarflow.flow.data import pack_codes, to_dac_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.model.programming import layer_conductances
from xbarflow.flow.core.hold import hold
from xbarflow.flow.host.driver import HostDriver, NackError
from xbarflow.flow.sim.schema import LAYERED_CYCLE_COUNTERS, BenchJob, BenchResult
from xbarflow.hdl import protocol

__all__ = [
    "BIT_TIMES_PER_IMAGE", "DeltaHost", "EXCHANGES_PER_IMAGE", "InferenceTestbench", "Progress",
    "Scoreboard", "check_registers", "classify_images", "classify_probing_busy", "register_patterns",
    "reset",
]

#: Simulated time allowed per image, in SPI bit times: a frame exchange is a few hundred bytes.
BIT_TIMES_PER_IMAGE = 40_000
#: Host exchanges per image at most: classify, read-back and the cycle counters (four, and the
#: layered controller's four phases).
EXCHANGES_PER_IMAGE = 10


def _test_timeout_ns() -> int:
    """A bound on the whole test's simulated time, so no run can hang even if an exchange
    escaped its own bound: every image's exchanges at their bound, plus programming with every
    cell at the write-ack timeout (the watchdogs inside fire long before)."""
    path = os.environ.get("XBARFLOW_JOB")
    if not path:
        return 1_000_000_000
    job = BenchJob.read(path)
    cfg = config_mod.from_dict(job.config)
    period_ns = 1e9 / cfg.clock.freq_hz
    bit_cycles = cfg.host.bit_cycles
    images = int(job.arrays().indices.size)
    total_ns = (images + 2) * EXCHANGES_PER_IMAGE * BIT_TIMES_PER_IMAGE * bit_cycles * period_ns
    if job.program:
        per_step = cfg.sense_cycles + cfg.pulse_cycles + 32 + cfg.crossbar.partitions
        cells = len(cfg.tiles) * cfg.target_bytes    # every cell of every tile
        steps = cells * (cfg.programming.timeout_pulses + 1)
        total_ns += 2 * (steps * per_step + cells * 16 * bit_cycles) * period_ns
    # Whole nanoseconds: a float number of ms may not be a whole number of simulator steps.
    return math.ceil(total_ns)


class Scoreboard:
    """Compares each image's chip results with the reference model, tile event by tile event;
    collects mismatches (the first divergent step of an image names the tile)."""

    def __init__(self, golden, codes):
        self.golden, self.codes, self.mismatches = golden, codes, []

    def inputs_of(self, k: int, tile) -> np.ndarray:
        """The codes tile `tile` must see for image k: the image, or a hidden layer's codes."""
        layer_inputs = self.codes[k] if tile.layer == 0 else self.golden.trace.activations[tile.layer - 1][k]
        return layer_inputs[tile.row_start:tile.row_stop]

    def check(self, k: int, idx: int, cls: int, events, sums) -> bool:
        """Image k (test-set index `idx`): the tile transactions the monitor saw, and the class and
        final-layer sums read back from the chip."""
        problems = []
        tiles, trace = self.golden.trace.tiles, self.golden.trace
        if trace.feature_maps:   # a layered network: every VMM event of the trace, in order
            problems += self.layered_problems(k, events)
        elif [e.tile for e in events] != list(range(len(tiles))):
            problems.append(f"tiles driven {[e.tile for e in events]}, expected 0..{len(tiles) - 1}")
        else:
            for e in events:
                want = self.inputs_of(k, tiles[e.tile])
                if not np.array_equal(e.dac_codes, want):
                    rows = np.flatnonzero(e.dac_codes != want) if e.dac_codes.shape == want.shape else []
                    where = (f" in rows {rows[:8].tolist()} (row {rows[0]}: {int(e.dac_codes[rows[0]])} "
                             f"!= {int(want[rows[0]])})") if len(rows) else ""
                    problems.append(f"tile {e.tile}: DAC codes on the bus differ from the reference{where}")
                    break
                if not np.array_equal(e.adc_codes, trace.tile_adc_codes[e.tile][k]):
                    problems.append(f"tile {e.tile}: ADC codes {e.adc_codes.tolist()} != golden "
                                    f"{trace.tile_adc_codes[e.tile][k].tolist()}")
                    break
        want = self.golden.adc_codes[k].tolist()
        if list(sums) != want:
            problems.append(f"read-back sums {list(sums)} != golden {want}")
        if cls != int(self.golden.classes[k]):
            problems.append(f"class {cls} != golden {int(self.golden.classes[k])}")
        self.mismatches += [f"image {idx}: {p}" for p in problems]
        return not problems

    def layered_problems(self, k: int, events) -> list[str]:
        """Image k of a layered network: the events the monitor saw against the golden trace's
        (tile, the window's slice on the tile's rows, the tile's ADC codes), in order."""
        trace = self.golden.trace
        want = [ev.tile for ev in trace.events]
        if [e.tile for e in events] != want:
            return [f"{len(events)} VMM events on tiles {[e.tile for e in events][:12]}..., "
                    f"expected {len(want)} on {want[:12]}..."]
        for j, e in enumerate(events):
            rows = trace.tiles[e.tile].rows
            dac = trace.event_dac_codes(j)[k][:rows]
            if not np.array_equal(e.dac_codes, dac):
                bad = np.flatnonzero(e.dac_codes != dac)
                return [f"VMM event {j} (tile {e.tile}): DAC codes on the bus differ from the "
                        f"reference in rows {bad[:8].tolist()} (row {bad[0]}: "
                        f"{int(e.dac_codes[bad[0]])} != {int(dac[bad[0]])})"]
            adc = trace.event_adc_codes(j)[k]
            if not np.array_equal(e.adc_codes, adc):
                return [f"VMM event {j} (tile {e.tile}): ADC codes {e.adc_codes.tolist()} != "
                        f"golden {adc.tolist()}"]
        return []

    def output_codes(self, events, outputs: int) -> np.ndarray:
        """The last layer's sums as the analog side delivered them (sum over row tiles): a
        diagnostic, never parity (the bridge computes them as the golden model does)."""
        tiles, sums = self.golden.trace.tiles, np.zeros(outputs, dtype=np.int64)
        last = tiles[-1].layer
        for e in events:
            spec = tiles[e.tile] if 0 <= e.tile < len(tiles) else None
            if spec is not None and spec.layer == last:
                sums[spec.out_start:spec.out_stop] += e.adc_codes
        return sums


async def check_registers(host: HostDriver, scoreboard: Scoreboard, seed: int, timeout_ns: float) -> None:
    """Write SCRATCH with edge patterns and seeded random words and read each back."""
    rng = np.random.default_rng([seed, 0x52454753])   # b"REGS": its own stream of the seed
    values = [0x00000000, 0xFFFFFFFF, 0xA5A55A5A, 0x80000001,
              *(int(v) for v in rng.integers(0, 1 << 32, size=4, dtype=np.uint64))]
    for value in values:
        await with_timeout(host.write_reg(protocol.Reg.SCRATCH, value), timeout_ns, "ns")
        got = await with_timeout(host.read_reg(protocol.Reg.SCRATCH), timeout_ns, "ns")
        if got != value:
            scoreboard.mismatches.append(f"register SCRATCH: wrote 0x{value:08x}, read 0x{got:08x}")


async def register_patterns(host: HostDriver, tiles: int) -> tuple[int, list[str]]:
    """Every writable register's bits to all ones and back to zero, each read back: SCRATCH
    and REQUANT_MULT (32 bits, read/write), PROG_TILE with every tile index, then one past the
    last (the register keeps its value: the protocol ignores an index past the chip's tiles),
    then 0. CTRL (write-only, self-clearing strobes) is left out. Returns (reads, problems)."""
    expected = [(reg, value, value) for reg in (protocol.Reg.SCRATCH, protocol.Reg.REQUANT_MULT)
                for value in (0xFFFFFFFF, 0)]
    expected += [(protocol.Reg.PROG_TILE, k, k) for k in range(tiles)]
    expected += [(protocol.Reg.PROG_TILE, tiles, tiles - 1), (protocol.Reg.PROG_TILE, 0, 0)]
    problems = []
    for reg, value, want in expected:
        await host.write_reg(reg, value)
        got = await host.read_reg(reg)
        if got != want:
            problems.append(f"register {reg.name}: wrote 0x{value:08x}, read 0x{got:08x}, "
                            f"expected 0x{want:08x}")
    return len(expected), problems


async def classify_probing_busy(host: HostDriver, packed: bytes, max_polls: int = 10_000
                                ) -> tuple[int, int, list[str]]:
    """Classify like `HostDriver.classify`, but right after START send a START and a WRITE_BUF
    of the first input byte inverted: the inference still runs, so the chip must refuse both
    with NACK BUSY (an executed WRITE_BUF would change the codes the chip drives, which the
    scoreboard checks). Returns (class, refusals, problems)."""
    await host.write_input(packed)
    await host.start()
    refused, problems = 0, []
    probes = (("START", host.start), ("WRITE_BUF", lambda: host.write_input(bytes([packed[0] ^ 0xFF]))))
    for what, send in probes:
        try:
            await send()
        except NackError as exc:
            if exc.error == protocol.Error.BUSY:
                refused += 1
                continue
            problems.append(f"{what} during an inference: {exc}, expected NACK BUSY")
        else:
            problems.append(f"{what} during an inference: ACK, expected NACK BUSY")
    return await host.wait_result(max_polls), refused, problems


async def reset(dut, cycles: int = 4) -> None:
    dut.rst.value = 1
    if hasattr(dut, "spi_cs_n"):   # only the configured host interface's pins exist
        dut.spi_cs_n.value = 1
        dut.spi_sclk.value = 0
        dut.spi_mosi.value = 0
    if hasattr(dut, "uart_rx"):
        dut.uart_rx.value = 1      # the host's UART line idles high from power-on
    await ClockCycles(dut.clk, cycles, rising=False)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2, rising=False)


class DeltaHost:
    """Classifies like `HostDriver.classify`, but writes only the span of input-buffer bytes
    that differ from the previous image (the chip's buffer keeps its contents between
    inferences). The scoreboard's DAC-code check proves the buffer held the whole image."""

    def __init__(self, host: HostDriver):
        self.host = host
        self.shadow: bytes | None = None

    async def classify(self, packed: bytes, max_polls: int = 10_000) -> int:
        host = self.host
        if self.shadow is None:
            await host.write_input(packed)
        else:
            diff = [i for i, (a, b) in enumerate(zip(packed, self.shadow)) if a != b]
            if diff:
                await host.write_input(packed[diff[0]:diff[-1] + 1], offset=diff[0])
        self.shadow = packed
        await host.start()
        return await host.wait_result(max_polls)


class Progress:
    """Keeps a small file updated with the number of images done (for progress bars)."""

    def __init__(self, path: str | None, interval_s: float = 0.5):
        self.path, self.interval_s, self._last = path, interval_s, 0.0

    def update(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if self.path and (force or now - self._last >= self.interval_s):
            self._last = now
            tmp = f"{self.path}.tmp"
            Path(tmp).write_text(str(done))
            os.replace(tmp, self.path)


class InferenceTestbench:
    """The inference bench, as cocotb's matrix-multiplier example structures one: a driver
    (the host, over the job's transport), a monitor (the analog bridge's tile events), a
    reference model (the golden chip on the same conductances) and a scoreboard; `run()`
    drives every image and writes the results file whatever happens."""

    def __init__(self, dut, job: BenchJob):
        self.dut, self.job = dut, job
        self.hooks = job.to_json()   # the test-fault hooks and the watchdog read the job as a dict
        self.cfg = cfg = config_mod.from_dict(job.config)
        self.data = job.arrays()
        self.indices, self.images = self.data.indices, self.data.images
        # What the chip computed (classes, sums, tile_dac_codes: parity is checked on these) and
        # the bridge's own ADC codes (a diagnostic).
        self.results = BenchResult()
        self.period_ns = 1e9 / cfg.clock.freq_hz
        bit_cycles = cfg.host.bit_cycles
        self.image_timeout_ns = BIT_TIMES_PER_IMAGE * self.period_ns * bit_cycles
        self.master = None   # the SPI master when its edges are asynchronous (spi_timing)
        self.monitor = None  # the coverage monitor (coverage runs only)
        self.probes = {"busy_refused": 0, "register_reads": 0}

    async def start(self) -> None:
        """Clock, reset, then the monitor, the reference model, the driver and the scoreboard."""
        dut, cfg, job = self.dut, self.cfg, self.job
        if job.transport == "hdl":
            # The harness toggles its own clock (no VPI write per edge); SPI pins from the transactor.
            dut.xtor_en.value = 0
            dut.xtor_tag.value = 0
        else:
            # The GPI clock toggles from C; cocotb's default on Icarus is a Python coroutine per
            # edge, ~9,000 Python wake-ups per image.
            Clock(dut.clk, self.period_ns, unit="ns", impl="gpi").start()
        await reset(dut)

        # One set of tile arrays for the bridge and the reference model.
        layers = self.data.conductances[:len(cfg.network.layers)]
        self.requant_mult = [int(m) for m in self.data.requant_mult]
        self.chip = GoldenChip(cfg, layers, self.requant_mult)
        self.bridge = AnalogBridge(dut, self.chip)   # the monitor: one event per tile transaction
        cocotb.start_soon(bridge_task(self.bridge, self.hooks))   # bridge.run(), unless a test fault is asked for
        self.watchdog = Watchdog.for_job(dut, self.hooks)          # a stall names the FSM state it stalled in
        # With the job's "spi_timing", the host's SPI edges are asynchronous to the chip clock
        # (seeded jitter and phase) and their phases are counted against the clock.
        link = make_transport(dut, cfg, job.transport, spi_timing=job.spi_timing)
        if job.spi_timing:
            self.master = link.master
            await RisingEdge(dut.clk)
            self.master.watch_clock(get_sim_time("ps"), round(self.period_ns * 1000),
                                    int(job.spi_timing.get("bins", 8)))
        # Coverage runs only: FSM state changes and every exchange's command and response.
        self.monitor = CoverageMonitor.from_env(dut, job.sidecar)
        if self.monitor is not None:
            self.monitor.start()
            link = self.monitor.wrap(link)
        self.host = HostDriver(link, cfg)   # the driver
        self.classifier = DeltaHost(self.host) if job.transport == "hdl" else self.host
        self.progress = Progress(job.progress)
        self.wire = WireFaults.from_job(self.hooks)   # test-only: corrupts one answer on its way to the scoreboard

        self.codes = to_dac_codes(self.images, cfg)
        self.scoreboard = Scoreboard(self.chip.infer(self.codes, self.indices, trace=True), self.codes)

    async def prepare_chip(self) -> None:
        """Chip ID, the link checks, the ReLU multipliers and (if asked) the array's programming."""
        host, job, timeout_ns = self.host, self.job, self.image_timeout_ns
        ident = await with_timeout(host.read_reg(protocol.Reg.ID), timeout_ns, "ns")
        assert ident == protocol.CHIP_ID, f"chip ID 0x{ident:08x} != 0x{protocol.CHIP_ID:08x}"
        if job.spi_timing:
            await check_registers(host, self.scoreboard, int(job.spi_timing["seed"]), timeout_ns)
        if job.register_patterns:   # before REQUANT_MULT gets its calibrated value below
            reads, problems = await self.watchdog.guard(
                register_patterns(host, len(self.cfg.tiles)), timeout_ns * 8, "register patterns")
            self.probes["register_reads"] += reads
            self.scoreboard.mismatches.extend(problems)
        if self.requant_mult:   # the calibrated ReLU scales travel with the weights, into a register
            packed = sum(m << (8 * l) for l, m in enumerate(self.requant_mult))
            await with_timeout(host.write_reg(protocol.Reg.REQUANT_MULT, packed), timeout_ns, "ns")
        if job.program:
            # The chip programs its own array; inference then runs on the programmed
            # conductances, so the reference becomes the golden chip on the same state.
            conductance, self.results.programming, problems = await program_chip(
                self.dut, self.cfg, host, self.data.targets, wire=self.wire,
                tiles=job.program_tiles, replay=self.data.golden_programming)
            self.scoreboard.mismatches.extend(f"programming: {p}" for p in problems)
            self.chip = GoldenChip(self.cfg, layer_conductances(self.cfg, conductance),
                                   self.requant_mult)
            self.bridge.chip = self.chip
            self.scoreboard.golden = self.chip.infer(self.codes, self.indices, trace=True)

    async def classify(self, k: int, idx: int) -> None:
        """Image k (test-set index `idx`): drive it, read back what the chip computed, score it."""
        host, bridge, wire, timeout_ns = self.host, self.bridge, self.wire, self.image_timeout_ns
        hold(f"image-{idx}")   # test hook (flow/core/hold.py): no-op unless a test holds this image
        bridge.event_index, bridge.image_event = idx, 0
        before = len(bridge.events)
        await FallingEdge(self.dut.clk)   # keep SPI edges away from the rising clock edge
        packed = pack_codes(self.codes[k], self.cfg.quant.dac_bits)
        if self.job.busy_probe:
            cls, refused, problems = await self.watchdog.guard(
                classify_probing_busy(host, packed), timeout_ns, f"image {idx}")
            self.probes["busy_refused"] += refused
            self.scoreboard.mismatches.extend(f"image {idx}: {p}" for p in problems)
        else:
            cls = await self.watchdog.guard(self.classifier.classify(packed), timeout_ns,
                                            f"image {idx}")
        # Read back what the chip computed: the final-layer sums it accumulated (the class
        # came from RESULT above). Cycle counters: the first image's, unless asked for all.
        sums = await self.watchdog.guard(host.read_outputs(self.cfg.outputs), timeout_ns,
                                         f"image {idx} read-back")
        if k == 0 or self.job.cycles_every_image:
            counters = [("total", protocol.Reg.CYCLES_TOTAL), ("drive", protocol.Reg.CYCLES_DRIVE),
                        ("convert", protocol.Reg.CYCLES_CONVERT), ("argmax", protocol.Reg.CYCLES_ARGMAX)]
            if self.cfg.network.layered:   # the layered controller's phases, registers too
                counters += [(name, protocol.Reg[f"CYCLES_{name.upper()}"]) for name in LAYERED_CYCLE_COUNTERS]
            for name, reg in counters:
                value = await with_timeout(host.read_reg(reg), timeout_ns, "ns")
                self.results.cycles.setdefault(name, []).append(value)
        events = [replace(e, dac_codes=wire.dac_codes(k, e.tile, e.dac_codes))
                  for e in bridge.events[before:]]
        cls, sums = wire.result_class(k, cls), wire.sums(k, sums)
        self.scoreboard.check(k, idx, cls, events, sums)
        self.results.add_image(idx, cls, sums, [(e.tile, e.dac_codes) for e in events],
                               self.scoreboard.output_codes(events, self.cfg.outputs))
        bridge.events.clear()

    async def check_link(self) -> None:
        """With asynchronous SPI: no frame may have been damaged, every error counter still 0."""
        for reg in (protocol.Reg.ERR_CRC, protocol.Reg.ERR_CMD, protocol.Reg.ERR_LEN,
                    protocol.Reg.ERR_TIMEOUT):
            count = await with_timeout(self.host.read_reg(reg), self.image_timeout_ns, "ns")
            if count:
                self.scoreboard.mismatches.append(f"link: {reg.name} = {count}")
        self.results.spi_edges = self.master.coverage

    async def run(self) -> None:
        deadline = time.monotonic() + float(self.job.timeout_s)
        await self.start()
        results, indices = self.results, self.indices
        try:
            await self.prepare_chip()
            profiler = None
            if os.environ.get("XBARFLOW_PROFILE"):
                profiler = cProfile.Profile()
                profiler.enable()
            t_loop, sim_ns0 = time.perf_counter(), get_sim_time("ns")
            for k, idx in enumerate(indices.tolist()):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"wall-clock limit of {self.job.timeout_s} s reached at image {k}")
                await self.classify(k, idx)
                self.progress.update(k + 1)
            self.progress.update(len(indices), force=True)
            if self.job.spi_timing:
                await self.check_link()
            results.loop_s = time.perf_counter() - t_loop   # the image loop, without start-up
            results.loop_sim_ns = get_sim_time("ns") - sim_ns0
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(os.environ["XBARFLOW_PROFILE"])
        except BaseException as exc:  # record why the run stopped, then fail the test
            results.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            results.mismatches = self.scoreboard.mismatches
            if self.job.busy_probe or self.job.register_patterns:
                results.probes = dict(self.probes)
            results.write(self.job.results)
            if self.monitor is not None:
                self.monitor.write()
        mismatches = self.scoreboard.mismatches
        assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[0]}"


@cocotb.test(timeout_time=_test_timeout_ns(), timeout_unit="ns")
async def classify_images(dut):
    await InferenceTestbench(dut, BenchJob.read(os.environ["XBARFLOW_JOB"])).run()
