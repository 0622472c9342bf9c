"""Host-interface fuzz bench: seeded random and mutated frames over SPI or UART, on the pins,
against the byte-exact reference model `xbarflow.flow.host.driver.ChipProtocolModel` (the scoreboard).

The job file ($XBARFLOW_FUZZ_JOB, written by `xbarflow.flow.analysis.fuzz.run_fuzz`) holds the config and the
plan (`xbarflow.flow.analysis.fuzz.plan`). For every item the bench drives the pins, feeds the model the bytes
the chip actually receives (a character with a low stop bit is dropped and counted, a partial
byte at chip-select rise is discarded, a stall drops a partial frame), and requires:

* the response frames the chip sends back equal the model's, byte for byte (NACKs with their
  error code included), and nothing else comes back;
* every item finishes within a simulated-time bound (`Watchdog.guard`: a hang is reported with
  the FSM states it stalled in);
* a valid frame sent after bad traffic ("probe" items) is answered with ACK (resynchronisation);
* every inference the chip runs drives exactly the model's input buffer onto the DAC bus (the
  input buffer is only readable that way), with the model's ADC codes and class read back;
* the register values an item "expect"s (a [response index, value] list, worked out by the
  plan from first principles) are what the chip sent.

Besides the pins, an item may deposit a lifetime counter by backdoor (op ``["deposit", path,
reg, value]``: the RTL register at the instance path below the top, and the model's counter of
register `reg`, `COUNTER_ATTRS`; the coverage campaign's preload runs) and let the chip run idle
for a number of clocks (``["idle", clocks]``: an inference longer than its START's response).

At the end: every register against the model (error counters, SCRATCH, ...), an inference on
the final input buffer, the input buffer and the target memory read straight from the RTL when
the simulator exposes them, and a programming run on the fuzzed target memory, whose pulses per
cell, final states and PROG_* registers must equal the golden write-verify replay of the
model's target memory (the black-box check that bad frames never wrote a target).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Timer
from cocotb.utils import get_sim_time

from xbarflow.analog_models.programming import DeviceArray
from .analog_bridge import AnalogBridge
from .coverage_monitor import CoverageMonitor, exchange_key
from .fuzz_links import ResponseParser, split_frames
from .programming import compare_programming, programming_timeout_ns
from .programming_bridge import ProgrammingBridge
from .transports import make_transport
from .watchdog import StallError, Watchdog
from xbarflow.flow.core import config as config_mod
from xbarflow.flow.analysis.cost import phase_cycles
from xbarflow.flow.data import unpack_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.host.driver import ChipProtocolModel
from xbarflow.flow.model.programming import program_array
from xbarflow.hdl import protocol
from xbarflow.hdl.protocol import Cmd, Error, Reg, Status

__all__ = [
    "COUNTER_ATTRS", "ERR_NAMES", "FuzzBench", "GLITCH_CYCLES", "JOB_ENV", "Mismatch", "QUIET_BYTES",
    "STALL_MARGIN", "TallyModel", "byte_cycles", "fuzz_host_interface", "item_bound_cycles",
]

JOB_ENV = "XBARFLOW_FUZZ_JOB"
ERR_NAMES = ("err_crc", "err_cmd", "err_len", "err_timeout", "err_framing")
QUIET_BYTES = 3            # SPI filler bytes that must stay 0x00 after the last response
STALL_MARGIN = 256         # clocks beyond FRAME_TIMEOUT_CYCLES for a stall
GLITCH_CYCLES = 2          # UART RX glitch width (the receiver rechecks after half a bit)
#: The reference model's counter behind each lifetime counter register a "deposit" op sets.
COUNTER_ATTRS = {Reg.ERR_CRC: "err_crc", Reg.ERR_CMD: "err_cmd", Reg.ERR_LEN: "err_len",
                 Reg.ERR_TIMEOUT: "err_timeout", Reg.ERR_FRAMING: "err_framing",
                 Reg.FRAMES_OK: "frames_ok", Reg.INFERENCES: "inferences"}


def _load_job() -> dict | None:
    path = os.environ.get(JOB_ENV)
    return json.loads(Path(path).read_text()) if path else None


_JOB = _load_job()


def _test_timeout_ms(job: dict | None) -> float:
    """A bound on the whole test's simulated time: every item's bound, plus the end checks."""
    if job is None:
        return 1000.0
    cfg = config_mod.from_dict(job["config"])
    period = 1e9 / cfg.clock.freq_hz
    items = sum(item_bound_cycles(cfg, it) for it in job["items"])
    # + 200 ms for the end checks (programming); whole ms, which cocotb can always represent
    return float(math.ceil((items * period + 2e8) / 1e6))


def byte_cycles(cfg) -> int:
    if cfg.host.interface == "uart":
        return cfg.host.byte_cycles + cfg.host.uart_divider   # a character, plus an idle bit after errors
    return cfg.host.byte_cycles


def item_bound_cycles(cfg, item: dict) -> int:
    """Simulated-time bound of one item: its bytes, up to 600 filler or response bytes, its
    stalls, one more frame timeout (UART) and a margin."""
    tx = sum(len(op[1]) // 2 for op in item["ops"] if op[0] == "tx")
    stalls = sum(1 for op in item["ops"] if op[0] == "stall") + 1
    idle = sum(op[1] for op in item["ops"] if op[0] == "idle")
    return ((tx + 600) * byte_cycles(cfg) + stalls * (protocol.FRAME_TIMEOUT_CYCLES + 2 * STALL_MARGIN)
            + idle + 20 * cfg.host.uart_divider + 4000)


class TallyModel(ChipProtocolModel):
    """The reference model, also keeping error totals across CTRL clears (for the figures)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cleared = dict.fromkeys(ERR_NAMES, 0)
        self.clears = 0
        self.exchanges: dict[str, int] = {}   # 'CMD ACK' / 'CMD NACK ERROR' -> count

    def _execute(self, frame: bytes) -> bytes:
        response = super()._execute(frame)
        key = exchange_key(frame, response)
        self.exchanges[key] = self.exchanges.get(key, 0) + 1
        return response

    def write_reg(self, reg: int, value: int) -> None:
        if reg == Reg.CTRL and value & protocol.CTRL_CLEAR_ERRORS:
            self.clears += 1
            for k in ERR_NAMES:
                self.cleared[k] += getattr(self, k)
        super().write_reg(reg, value)

    def totals(self) -> dict[str, int]:
        return {k: self.cleared[k] + getattr(self, k) for k in ERR_NAMES}


class Mismatch(AssertionError):
    pass


def _describe(frame: bytes) -> str:
    """'ACK' / 'NACK BAD_CRC' for the figures."""
    if frame[1] == Status.ACK:
        return "ACK"
    code = frame[3] if len(frame) > 4 else -1
    return f"NACK {Error(code).name}" if code in Error._value2member_map_ else f"NACK 0x{code:02x}"


class FuzzBench:
    def __init__(self, dut, job: dict):
        self.dut, self.job = dut, job
        self.cfg = cfg = config_mod.from_dict(job["config"])
        self.host = cfg.host.interface
        self.period_ns = 1e9 / cfg.clock.freq_hz
        self.watchdog = Watchdog.for_job(dut, job)
        self.monitor = None   # the coverage monitor (coverage runs only)
        # The reference: random weights mapped to the tiles (no training needed to compare),
        # one matrix per layer; the hidden layers' multipliers follow REQUANT_MULT (reset 0).
        rng = np.random.default_rng(int(job.get("seed", 1)))
        layers = [rng.standard_normal(shape) for shape in cfg.network.layer_shapes]
        relus = sum(a == "relu" for a in cfg.network.activations[:-1])
        self.chip = GoldenChip.from_weights(cfg, layers, [0] * relus if relus else None)
        self.bridge = AnalogBridge(dut, self.chip)
        self.snapshots: list[np.ndarray] = []     # the model's input buffer at each START
        self.traces: list = []                    # their golden traces (layered networks)
        self.events_checked = 0
        self.cycles: dict | None = None           # CYCLES_* of one inference (calibrated)
        self.calibration: dict = {}
        self.model = TallyModel.from_config(cfg, infer=self._infer, latency_polls=0)
        self.responses: dict[str, int] = {}
        self.probes = self.probes_served = 0
        self.max_item_cycles = 0
        self.max_bound_cycles = 0
        self._item_index = -1

    def _wire(self, data: bytes) -> bytes:
        """The bytes put on the pins: `data`, except in the self-test (job "sabotage_item": k),
        where item k's last byte is corrupted on the wire only, so the model and the chip see
        different frames and the scoreboard must notice."""
        if self._item_index == self.job.get("sabotage_item") and data:
            return data[:-1] + bytes([data[-1] ^ 0x5A])
        return data

    # -- the reference model's inference -----------------------------------------------------------
    def _infer(self, buffer: bytes):
        codes = unpack_codes(buffer, self.cfg.rows, self.cfg.quant.dac_bits)
        self.snapshots.append(codes)
        mult = self.model.requant_mult   # byte l: hidden layer l's multiplier, as the chip reads it
        self.chip.requant_mult = tuple((mult >> (8 * l)) & 0xFF for l in range(len(self.chip.requant_mult)))
        layered = self.cfg.network.layered
        res = self.chip.infer(codes[None, :], 0, trace=layered)
        if layered:   # a layered chip's events carry windows of feature maps: the golden trace's
            self.traces.append(res.trace)
        if self.cycles is not None:
            self.model.cycles = dict(self.cycles)
        return int(res.classes[0]), res.adc_codes[0].tolist()

    # -- set-up ------------------------------------------------------------------------------------
    async def start(self) -> None:
        dut = self.dut
        Clock(dut.clk, self.period_ns, unit="ns", impl="gpi").start()
        dut.rst.value = 1
        if self.host == "uart":
            self.rx_parser = ResponseParser(filler=False)
        self.link = make_transport(dut, self.cfg, "fuzz", parser=getattr(self, "rx_parser", None))
        await ClockCycles(dut.clk, 4, rising=False)
        dut.rst.value = 0
        await ClockCycles(dut.clk, 2, rising=False)
        cocotb.start_soon(self.bridge.run())
        # Coverage runs only: FSM state changes (the exchanges are the model's, checked equal).
        self.monitor = CoverageMonitor.from_env(dut, self.job["sidecar"])
        if self.monitor is not None:
            self.monitor.start()
        if self.host == "uart":
            self.link.start()
        await self.calibrate_cycles()

    async def calibrate_cycles(self) -> None:
        """The CYCLES_* registers belong to the controller, not the command layer: one inference
        (on the zero input buffer, through the model) measures them; every later inference must
        give the same counts. The controller phase model (`xbarflow.flow.analysis.cost.phase_cycles`) is recorded
        beside them for information."""
        await self._checked(-1, [protocol.encode_request(Cmd.START)])
        for _ in range(100):   # done (an MLP inference outlasts its START's response)
            r = protocol.decode_response(await self.raw_exchange(protocol.encode_request(Cmd.READ_RESULT)))
            if r.payload[0] & protocol.STATUS_DONE and not r.payload[0] & protocol.STATUS_BUSY:
                break
        # The layered phase counters too: they read 0 on a dense chip, the CNN's are nonzero.
        regs = (Reg.CYCLES_TOTAL, Reg.CYCLES_DRIVE, Reg.CYCLES_CONVERT, Reg.CYCLES_ARGMAX,
                Reg.CYCLES_LOAD_WINDOW, Reg.CYCLES_ACCUMULATE, Reg.CYCLES_ACTIVATE, Reg.CYCLES_POOL)
        self.cycles = {}
        for reg in regs:
            r = protocol.decode_response(await self.raw_exchange(protocol.encode_request(Cmd.READ_REG, reg)))
            self.cycles[reg] = int.from_bytes(r.payload, "big")
        self.model.cycles = dict(self.cycles)
        self.calibration = {"measured": {r.name.lower(): v for r, v in self.cycles.items()},
                            "phase_model": phase_cycles(self.cfg)}

    # -- one item ----------------------------------------------------------------------------------
    async def _spi_item(self, ops: list) -> tuple[list[bytes], list[bytes], list[str]]:
        model, link = self.model, self.link
        parser = ResponseParser(filler=True)
        expected: list[bytes] = []
        bits = None
        await link.select()

        async def collect() -> None:
            """Clock 0x00 filler (fed to the model too: inside a frame it is frame data) until
            every expected response is in and, outside a frame, QUIET_BYTES more stay 0x00."""
            quiet, fillers = 0, 0
            limit = 300 + sum(len(f) for f in expected)
            while fillers < limit:
                done = len(parser.frames) >= len(expected) and parser.idle
                if done and (model.in_frame or quiet >= QUIET_BYTES):
                    return
                expected.extend(split_frames(model.feed(b"\x00")))
                before = parser.bytes_seen, len(parser.frames), parser.idle
                await link.transfer(b"\x00", parser)
                fillers += 1
                quiet = quiet + 1 if done and parser.idle and len(parser.frames) == before[1] else 0

        for op in ops:
            if op[0] == "tx":
                data = bytes.fromhex(op[1])
                expected.extend(split_frames(model.feed(data)))
                await link.transfer(self._wire(data), parser)
                if len(parser.frames) < len(expected) and not model.in_frame:
                    await collect()
            elif op[0] == "stall":
                await Timer((protocol.FRAME_TIMEOUT_CYCLES + STALL_MARGIN) * self.period_ns, unit="ns")
                model.drop_partial()
            elif op[0] == "bits":
                bits = (op[1], op[2])
            elif not await self._backdoor_op(op):
                raise ValueError(f"op {op[0]} is not for SPI")
        await collect()
        if bits is not None:
            await link.partial_byte(*bits)        # discarded by the chip at chip-select rise
        await link.deselect()
        model.drop_partial()                      # the abort drops a partial frame
        return expected, parser.frames, parser.errors

    async def _uart_item(self, ops: list) -> tuple[list[bytes], list[bytes], list[str]]:
        model, link, parser = self.model, self.link, self.rx_parser
        first = len(parser.frames)
        errors_before = len(parser.errors) + len(link.errors)
        expected: list[bytes] = []
        timeout_ns = (protocol.FRAME_TIMEOUT_CYCLES + STALL_MARGIN) * self.period_ns
        for op in ops:
            if op[0] == "tx":
                data = bytes.fromhex(op[1])
                expected.extend(split_frames(model.feed(data)))
                await link.send(self._wire(data))
            elif op[0] == "ferr":
                model.framing_error()              # the chip drops the character and counts it
                await link.char(op[1], stop=0)
            elif op[0] == "glitch":
                await link.glitch(GLITCH_CYCLES * self.period_ns)
            elif op[0] == "stall":
                await Timer(timeout_ns, unit="ns")
                model.drop_partial()
            elif not await self._backdoor_op(op):
                raise ValueError(f"op {op[0]} is not for UART")
        # Wait for the responses (bounded by the item's guard), then a quiet line.
        while len(parser.frames) - first < len(expected) or not parser.idle:
            await Timer(link.char_ns, unit="ns")
        seen = parser.bytes_seen
        await Timer(3 * link.char_ns, unit="ns")
        errors = (parser.errors + link.errors)[errors_before:]
        if parser.bytes_seen != seen:
            errors.append("the chip sent bytes after the expected responses")
            while not parser.idle:
                await Timer(link.char_ns, unit="ns")
        if model.in_frame:                         # a partial frame: only the timeout drops it
            await Timer(timeout_ns, unit="ns")
            model.drop_partial()
        return expected, parser.frames[first:], errors

    async def _backdoor_op(self, op: list) -> bool:
        """A "deposit" or "idle" op (False for any other): deposit `value` into the RTL register
        at `path` (and the model's counter of `reg`), checked to have taken one clock later."""
        if op[0] == "idle":
            await ClockCycles(self.dut.clk, int(op[1]), rising=False)
            return True
        if op[0] != "deposit":
            return False
        _, path, reg, value = op
        handle = self.watchdog.resolve(f"{self.dut._name}.{path}")
        if handle is None:
            raise Mismatch(f"deposit: {path} is not visible in the simulation")
        handle.value = int(value)
        await ClockCycles(self.dut.clk, 1, rising=False)
        if int(handle.value) != int(value):
            raise Mismatch(f"deposit: {path} reads {int(handle.value):#x} after {int(value):#x} was deposited")
        setattr(self.model, COUNTER_ATTRS[Reg(reg)], int(value))
        return True

    async def run_item(self, index: int, item: dict) -> None:
        self._item_index = index
        bound = item_bound_cycles(self.cfg, item)
        t0 = get_sim_time("ns")
        run = self._spi_item if self.host == "spi" else self._uart_item
        what = f"item {index} ({item['kind']})"
        try:
            expected, got, errors = await self.watchdog.guard(run(item["ops"]), bound * self.period_ns, what)
        except StallError as exc:
            raise Mismatch(f"{exc}; ops {item['ops']}") from None
        cycles = int(round((get_sim_time("ns") - t0) / self.period_ns))
        self.max_item_cycles = max(self.max_item_cycles, cycles)
        self.max_bound_cycles = max(self.max_bound_cycles, bound)
        if errors or got != expected:
            raise Mismatch(f"{what}: responses differ from the model: expected "
                           f"{[f.hex() for f in expected]}, got {[f.hex() for f in got]}"
                           f"{'; ' + '; '.join(errors) if errors else ''}; ops {item['ops']}; "
                           f"FSMs: {self.watchdog.report()}")
        for n, want in item.get("expect", ()):
            value = int.from_bytes(got[n][3:7], "big") if n < len(got) else None
            if value != want:
                raise Mismatch(f"{what}: response {n} read {value if value is None else hex(value)}, "
                               f"expected {want:#x}; ops {item['ops']}")
        if self.model.programs:
            raise Mismatch(f"{what}: the plan started a programming run (xbarflow.flow.analysis.fuzz.plan must "
                           f"leave such items out); ops {item['ops']}")
        for f in got:
            key = _describe(f)
            self.responses[key] = self.responses.get(key, 0) + 1
        if item.get("probe"):
            self.probes += 1
            if not got or got[-1][1] != Status.ACK:
                raise Mismatch(f"{what}: the valid frame after bad traffic was not served "
                               f"(responses {[f.hex() for f in got]}); ops {item['ops']}")
            self.probes_served += 1
        await self.check_inferences(what)

    async def check_inferences(self, what: str) -> None:
        """Each START the model saw must have driven the model's input buffer onto the DAC bus
        (one tile event per tile and inference; layer-0 tiles carry the input buffer's rows; a
        layered network's `events_per_image` events each the tile and window codes of the
        golden trace)."""
        events, tiles = self.bridge.events, self.chip.tiles
        if self.cfg.network.layered:
            await self._check_layered_inferences(what)
            return
        await self._await_events(len(tiles), f"{len(tiles)} tile(s)", what)
        for e in range(self.events_checked, len(events)):
            k, tile = divmod(e, len(tiles))
            if tiles[tile].layer != 0:
                continue
            codes = self.snapshots[k][tiles[tile].row_slice]
            if events[e].tile != tile or not np.array_equal(events[e].dac_codes, codes):
                bad = np.flatnonzero(events[e].dac_codes != codes) if events[e].dac_codes.shape == codes.shape else []
                raise Mismatch(f"{what}: inference {k} drove DAC codes on tile {events[e].tile} that "
                               f"differ from the model's input buffer (rows {list(bad[:8])})")
        self.events_checked = len(events)

    async def _await_events(self, per_inference: int, unit: str, what: str) -> None:
        """Wait until the bridge has seen `per_inference` tile events for every START the model
        saw; Mismatch if the chip drove another number. An inference may still run after its
        START's response (the MLP's 1,177 clocks), hence the wait bounded by the cost model."""
        events = self.bridge.events
        want = len(self.snapshots) * per_inference
        for _ in range(50 + sum(phase_cycles(self.cfg).values()) // 10):
            if len(events) >= want:
                break
            await ClockCycles(self.dut.clk, 10, rising=False)
        if len(events) != want:
            raise Mismatch(f"{what}: {len(events)} tile events on the chip, the model started "
                           f"{len(self.snapshots)} inferences of {unit}")

    async def _check_layered_inferences(self, what: str) -> None:
        events, per_image = self.bridge.events, self.cfg.events_per_image
        await self._await_events(per_image, f"{per_image} events", what)
        for e in range(self.events_checked, len(events)):
            k, j = divmod(e, per_image)
            trace = self.traces[k]
            tile = trace.events[j].tile
            codes = trace.event_dac_codes(j)[0][:self.cfg.tiles[tile].rows]
            if events[e].tile != tile or not np.array_equal(events[e].dac_codes, codes):
                raise Mismatch(f"{what}: inference {k} event {j} drove tile {events[e].tile} with "
                               f"DAC codes other than the golden trace's (tile {tile})")
        self.events_checked = len(events)

    # -- end checks --------------------------------------------------------------------------------
    def whitebox_buffers(self) -> dict[str, str]:
        """The input buffer and target memory read from the RTL (when the simulator shows them)."""
        out = {}
        try:
            storage = self.dut.input_buffer.storage.value.to_unsigned()
        except (AttributeError, ValueError):
            out["input_buffer_rtl"] = "not visible"
        else:
            data = storage.to_bytes(self.cfg.input_bytes, "little")
            if data != bytes(self.model.input_buffer):
                raise Mismatch(f"input buffer in the RTL {data.hex()} != model "
                               f"{bytes(self.model.input_buffer).hex()}")
            out["input_buffer_rtl"] = "equal"
        top = self.cfg.quant.weight_levels - 1
        want = [min(b, top) for b in self.model.target_buffer]
        try:
            mem = self.dut.programmer.targets
            got = [int(mem[i].value.to_unsigned()) for i in range(len(want))]
        except (AttributeError, ValueError, IndexError, TypeError):
            out["targets_rtl"] = "not visible"
        else:
            if got != want:
                bad = [i for i, (a, b) in enumerate(zip(got, want)) if a != b]
                raise Mismatch(f"target memory in the RTL differs from the model at bytes {bad[:8]}")
            out["targets_rtl"] = "equal"
        return out

    async def raw_exchange(self, request: bytes) -> bytes:
        """One valid request, one response, beside the model (programming polls, whose STATUS
        the model cannot time); the model still counts the executed frame."""
        if self.host == "spi":
            parser = ResponseParser(filler=True)
            await self.link.select()
            await self.link.transfer(request, parser)
            while not parser.frames:
                await self.link.transfer(b"\x00", parser)
            await self.link.deselect()
            frame = parser.frames[0]
        else:
            first = len(self.rx_parser.frames)
            await self.link.send(request)
            while len(self.rx_parser.frames) == first:
                await Timer(self.link.char_ns, unit="ns")
            frame = self.rx_parser.frames[first]
        if frame[1] == Status.ACK:
            self.model.frames_ok += 1
        return frame

    async def program_fuzzed_targets(self, index: int) -> dict:
        """START_PROGRAM on the fuzzed target memory; while it runs, START, WRITE_BUF,
        WRITE_TARGETS and START_PROGRAM must get NACK BUSY and change nothing; then every cell
        and the PROG_* registers must equal the golden replay of the model's targets."""
        cfg, model = self.cfg, self.model
        top = cfg.quant.weight_levels - 1
        targets = np.minimum(np.frombuffer(bytes(model.target_buffer), dtype=np.uint8), top)
        targets = targets.reshape(cfg.crossbar.tile_rows, cfg.crossbar.tile_cols).astype(np.int64)
        golden = program_array(cfg, targets)
        bridge = ProgrammingBridge(self.dut, cfg, [DeviceArray(cfg)])   # a one-tile chip
        bridge.start()
        model.program_latency_polls = None        # busy until the bench says otherwise
        await self._checked(index, [protocol.encode_request(Cmd.START_PROGRAM)])
        # Refused while busy. A run lasts >= ~13 clocks per verify step (500 steps at least);
        # keep the refusals well inside it.
        busy = [protocol.encode_request(Cmd.START),
                protocol.encode_request(Cmd.WRITE_BUF, 0, bytes([model.input_buffer[0] ^ 0xFF]))]
        if golden.total_pulses >= 1000:
            busy += [protocol.encode_request(Cmd.WRITE_TARGETS, 0, bytes([(targets[0, 0] + 1) % top])),
                     protocol.encode_request(Cmd.START_PROGRAM)]
        got = await self._checked(index + 1, busy)
        refused = sum(1 for f in got if f[1] == Status.NACK and f[3] == Error.BUSY)
        if refused != len(busy):
            raise Mismatch(f"{refused} of {len(busy)} requests refused BUSY while programming")

        async def wait_done() -> int:
            while True:
                st = protocol.decode_response(await self.raw_exchange(
                    protocol.encode_request(Cmd.READ_REG, Reg.STATUS)))
                status = int.from_bytes(st.payload, "big")
                if status & protocol.STATUS_WRITE_OK and not status & protocol.STATUS_PROG_BUSY:
                    r = protocol.decode_response(await self.raw_exchange(
                        protocol.encode_request(Cmd.READ_REG, Reg.PROG_CYCLES)))
                    return int.from_bytes(r.payload, "big")

        cycles = await self.watchdog.guard(wait_done(), programming_timeout_ns(cfg, golden),
                                           "programming the fuzzed targets")
        # The model finishes the run with the golden counters (PROG_CYCLES from the chip: there
        # is no cycle model of the programmer), then every register is compared again.
        model.prog_busy, model.write_ok = False, True
        model.prog_pulses, model.prog_failures, model.prog_cycles = golden.total_pulses, golden.failures, cycles
        model.prog_steps = model.program_steps
        frames = await self._checked(index + 2, [protocol.encode_request(Cmd.READ_REG, r) for r in
                                                 (Reg.STATUS, Reg.PROG_PULSES, Reg.PROG_FAILURES,
                                                  Reg.PROG_STEPS)])
        regs = {name: int.from_bytes(f[3:7], "big") for name, f in
                zip(("status", "pulses", "failures", "steps"), frames)}
        problems = compare_programming(cfg, golden, bridge.pulses[0], bridge.devices[0].lam, regs)
        if regs["steps"] != golden.steps - golden.total_pulses:
            problems.append(f"PROG_STEPS {regs['steps']} != golden {golden.steps - golden.total_pulses}")
        if problems:
            raise Mismatch("programming the fuzzed target memory: " + "; ".join(problems))
        return {"pulses": regs["pulses"], "failures": regs["failures"], "cycles": cycles,
                "cells_written": int(np.count_nonzero(targets)), "refused_busy": refused}

    async def end_checks(self, index: int) -> dict:
        checks: dict[str, object] = {}
        # Every register through the model (counters, SCRATCH, STATUS, RESULT, cycles, ...).
        regs = [protocol.encode_request(Cmd.READ_REG, r) for r in range(protocol.NUM_REGS)]
        frames = []
        for k in range(0, len(regs), 3):          # a few frames per item
            frames += await self._checked(index, regs[k:k + 3])
            index += 1
        values = {Reg(r).name.lower(): int.from_bytes(f[3:7], "big") for r, f in enumerate(frames)}
        checks["registers"] = f"{protocol.NUM_REGS} equal"
        self.final_registers = values
        # An inference on the final input buffer, outputs and result read back.
        final = [protocol.encode_request(Cmd.START),
                 protocol.encode_request(Cmd.READ_BUF, 0, bytes([2 * self.cfg.outputs])),
                 protocol.encode_request(Cmd.READ_RESULT)]
        await self._checked(index, final)
        checks["final_inference"] = "equal"
        checks.update(self.whitebox_buffers())
        checks["programming_fuzzed_targets"] = await self.program_fuzzed_targets(index + 1)
        # Nothing the refused requests carried arrived: the same inference again, the buffers.
        await self._checked(index + 4, final)
        self.whitebox_buffers()
        checks["after_programming"] = "input buffer, targets and inference unchanged"
        return checks

    async def _checked(self, index: int, frames: list[bytes]) -> list[bytes]:
        """Request frames as one item outside the fuzz figures (calibration, end checks), compared
        with the model like any item; returns the responses."""
        self._item_index = -1
        what = "calibration" if index < 0 else f"end check {index}"
        item = {"kind": "check", "ops": [["tx", b"".join(frames).hex()]], "frames": len(frames),
                "probe": False}
        bound = item_bound_cycles(self.cfg, item)
        run = self._spi_item if self.host == "spi" else self._uart_item
        expected, got, errors = await self.watchdog.guard(run(item["ops"]), bound * self.period_ns, what)
        if errors or got != expected:
            raise Mismatch(f"{what}: expected {[f.hex() for f in expected]}, got "
                           f"{[f.hex() for f in got]} {errors}; FSMs: {self.watchdog.report()}")
        await self.check_inferences(what)
        return got


@cocotb.test(timeout_time=_test_timeout_ms(_JOB), timeout_unit="ms")
async def fuzz_host_interface(dut):
    job = _load_job()
    items = job["items"]
    bench = FuzzBench(dut, job)
    summary = {"host": bench.host, "seed": job.get("seed"), "items": len(items),
               "frames": sum(it["frames"] for it in items), "frames_by_kind": {}, "problems": []}
    for it in items:
        summary["frames_by_kind"][it["kind"]] = summary["frames_by_kind"].get(it["kind"], 0) + it["frames"]
    deadline = time.monotonic() + float(job.get("timeout_s", 3600))
    t_wall = time.perf_counter()
    try:
        await bench.start()
        sim0 = get_sim_time("ns")
        for k, item in enumerate(items):
            if time.monotonic() > deadline:
                raise TimeoutError(f"wall-clock limit of {job.get('timeout_s')} s reached at item {k}")
            await bench.run_item(k, item)
        summary["sim_ms"] = round((get_sim_time("ns") - sim0) / 1e6, 3)
        if job.get("end_checks", True):
            summary["end_checks"] = await bench.end_checks(len(items))
    except Mismatch as exc:
        summary["problems"].append(str(exc))
        raise
    except BaseException as exc:
        summary["problems"].append(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        summary.setdefault("sim_ms", round(get_sim_time("ns") / 1e6, 3))
        summary.setdefault("end_checks", {})
        summary["loop_wall_s"] = round(time.perf_counter() - t_wall, 2)
        summary["responses"] = dict(sorted(bench.responses.items()))
        summary["counters_total"] = bench.model.totals()
        summary["clears"] = bench.model.clears
        summary["cycles_per_inference"] = bench.calibration
        summary["counters"] = {k: v for k, v in getattr(bench, "final_registers", {}).items()
                               if k in ("frames_ok", *ERR_NAMES)}
        summary["probes"], summary["probes_served"] = bench.probes, bench.probes_served
        summary["inferences"] = bench.events_checked // len(bench.chip.tiles)
        summary["max_exchange_cycles"] = bench.max_item_cycles
        summary["exchange_bound_cycles"] = bench.max_bound_cycles
        summary["exchanges"] = dict(sorted(bench.model.exchanges.items()))
        if getattr(bench, "monitor", None) is not None:
            bench.monitor.exchanges.update(bench.model.exchanges)
            bench.monitor.write()
        Path(job["results"]).write_text(json.dumps(summary, indent=1))
