"""The co-simulations of `make coverage`: the benches `make test` runs, on Verilator coverage
builds, with a modest number of images, each leaving its coverage data in its own folder.

`CAMPAIGN` lists them: inference on the SLP (SPI, and SPI asynchronous to the chip clock), the
ReLU MLP (shared ADCs) and the binary-hidden-layer MLP, each inference run with an all-white
and an all-black image besides the test images (`image_set`) and the register patterns (every
writable register to all ones and back, read back); on the MLPs a START and a WRITE_BUF sent
during every inference, which the chip must refuse with NACK BUSY (an MLP inference, 1,177
clocks, outlasts a START frame; an SLP inference, 39 clocks, does not). Programming through
the write path over SPI and UART, with stuck-at cells (write-ack timeouts), and one tile of
each MLP and the CNN, then two more (`MLP_PROGRAM_TILES`, `CNN_PROGRAM_TILES`). Host-interface fuzzing over SPI and UART, plus a directed run
with every (command, NACK code) the protocol allows outside BUSY (`directed_items`: the random
plan leaves some out at a few hundred frames), also on both MLPs (without the end checks,
which would program every tile), and a counters run (`counter_items`: 1,100 of
each counted event, so the lifetime counters' bits 0-10 toggle), and on every design a preload
run (`preload_items`): each lifetime counter deposited by backdoor at 2^k - 1 and 2^32 - 2, the
events sent through the pins and the counter read back (every carry, saturation or wrap, CTRL's
clear); on the MLP and the CNN a data-path run (`datapath_items`: random weights, multipliers and
inputs). Every run must pass its parity checks (a run
that disagrees with the golden model raises: its coverage would count behaviour nobody
checked).

`run_campaign` returns one `RunRecord` per run; `xbarflow.flow.analysis.coverage` merges their
data by design (runs of identical Verilog), `xbarflow.flow.commands.coverage` writes the summary.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from xbarflow.hdl import protocol
from xbarflow.hdl.frame_transmitter import TX_FIFO_DEPTH
from xbarflow.hdl.protocol import Cmd, Reg

from ..core import config as config_mod
from ..core.config import ChipConfig
from ..core.errors import XbarflowError
from ..data import Dataset, pack_codes
from ..model.context import RunContext
from ..model.programming import chip_target_levels
from ..sim.runner import COVERAGE_DAT, build, run
from ..sim.schema import FSM_SAMPLES_FILE
from . import coverage, fuzz
from .cost import phase_cycles

__all__ = ["CAMPAIGN", "CNN_PROGRAM_TILE", "CNN_PROGRAM_TILES", "COUNTED_EVENTS", "CampaignError", "DATAPATH_MULTS", "LIFETIME_COUNTERS", "LifetimeCounter",
           "MLP_PROGRAM_TILE", "MLP_PROGRAM_TILES", "PRELOAD_NOTE", "RunRecord", "RunSpec", "analyse_campaign", "counter_items", "datapath_items", "design_tiles",
           "directed_items", "image_set", "load_records", "preload_items", "preloaded_counters", "run_campaign",
           "save_records"]


class CampaignError(XbarflowError, RuntimeError):
    """A coverage run failed or disagreed with the golden model; one line."""


@dataclass(frozen=True)
class RunSpec:
    name: str
    config: str                      # configs/<config>.toml
    kind: str                        # inference | async | program | fuzz | directed | counters | preload | datapath
    overrides: dict = field(default_factory=dict)
    what: str = ""
    options: dict = field(default_factory=dict)   # runner.run keywords: program_tiles, busy_probe, ...


#: The MLPs' tile the programming runs program first (the last: the output layer's second row
#: tile; its index sets the top bit of prog_tile_sel). Programming one 128 x 128 tile walks every
#: row and column select line and every programmer state, like all ten (~10x the time, 53 min).
MLP_PROGRAM_TILE = 9
#: The CNN's tile the programming run programs first: the last of its 5 (the dense layer's second
#: row tile), whose index sets the top bit of prog_tile_sel.
CNN_PROGRAM_TILE = 4
#: Then two more tiles, so each bit of prog_tile_sel rises and falls (9, 6, 0 = 1001, 0110, 0000;
#: 4, 3, 0 = 100, 011, 000) and the programmer starts a run after a finished one (write_ok falls,
#: the row counter and the row base wrap back to 0).
MLP_PROGRAM_TILES = (MLP_PROGRAM_TILE, 6, 0)
CNN_PROGRAM_TILES = (CNN_PROGRAM_TILE, 3, 0)
#: Events of each kind the counters run sends: past 2^10, so bit 10 of each counter rises.
COUNTED_EVENTS = 1100


@dataclass(frozen=True)
class LifetimeCounter:
    """A 32-bit lifetime counter the preload runs deposit into: its register, the RTL register
    behind it (the instance path below the top module, as in the Verilog hierarchy), whether it
    saturates at 2^32 - 1 (`xbarflow.hdl.saturating`) or wraps, and the host interfaces that
    have it."""
    reg: Reg
    path: str
    saturating: bool
    hosts: tuple[str, ...] = ("spi", "uart")


#: The lifetime counters (cleared only by reset or, the ERR_* ones, CTRL's clear bit): the error
#: counters of the command executor and receiver (hdl/command_executor.py, frame_receiver.py)
#: and the UART (hdl/uart.py) saturate; FRAMES_OK and INFERENCES (the controller's) wrap.
LIFETIME_COUNTERS = (
    LifetimeCounter(Reg.ERR_CRC, "command.executor.err_crc", True),
    LifetimeCounter(Reg.ERR_CMD, "command.executor.err_cmd", True),
    LifetimeCounter(Reg.ERR_LEN, "command.executor.err_len", True),
    LifetimeCounter(Reg.ERR_TIMEOUT, "command.receiver.dropped", True),
    LifetimeCounter(Reg.ERR_FRAMING, "uart.framing_errors", True, ("uart",)),
    LifetimeCounter(Reg.FRAMES_OK, "command.executor.frames_ok", False),
    LifetimeCounter(Reg.INFERENCES, "controller.status__inferences", False),
)

CAMPAIGN: tuple[RunSpec, ...] = (
    RunSpec("slp-inference", "slp", "inference", what="SLP inference over SPI, register patterns",
            options={"register_patterns": True}),
    RunSpec("slp-async-spi", "slp", "async", what="SLP inference, SPI edges asynchronous to the clock"),
    RunSpec("slp-program-spi", "slp", "program", what="programming through the write path, SPI"),
    RunSpec("slp-program-stuck", "slp", "program",
            {"device.stuck_on_rate": 0.025, "device.stuck_off_rate": 0.025},
            what="programming with 5 % stuck-at cells (write-ack timeouts)"),
    RunSpec("slp-fuzz-spi", "slp", "fuzz", what="host-interface fuzzing, SPI"),
    RunSpec("slp-directed-spi", "slp", "directed",
            what="every command with a bad CRC, LEN and address, SPI (fuzz bench)"),
    RunSpec("slp-program-uart", "slp", "program", {"host.interface": "uart"},
            what="programming through the write path, UART"),
    RunSpec("slp-fuzz-uart", "slp", "fuzz", {"host.interface": "uart"},
            what="host-interface fuzzing, UART"),
    RunSpec("slp-directed-uart", "slp", "directed", {"host.interface": "uart"},
            what="the directed frames over UART, and a frame cut after each byte (timeout)"),
    RunSpec("mlp-inference", "mlp", "inference",
            what="196-256-10 ReLU MLP, shared ADCs; START and WRITE_BUF refused (BUSY) during "
                 "every inference; register patterns",
            options={"busy_probe": True, "register_patterns": True}),
    RunSpec("mlp_binary-inference", "mlp_binary", "inference",
            what="binary hidden layer MLP; BUSY during every inference; register patterns",
            options={"busy_probe": True, "register_patterns": True}),
    RunSpec("mlp-program-tile", "mlp", "program",
            {"device.stuck_on_rate": 0.002, "device.stuck_off_rate": 0.002},
            what=f"MLP: tiles {', '.join(map(str, MLP_PROGRAM_TILES))} programmed through the write path (0.4 % "
                 "stuck-at cells: timeouts too), then inference", options={"program_tiles": list(MLP_PROGRAM_TILES)}),
    RunSpec("mlp_binary-program-tile", "mlp_binary", "program",
            what=f"binary MLP: tiles {', '.join(map(str, MLP_PROGRAM_TILES))} programmed through the write "
                 "path, then inference", options={"program_tiles": list(MLP_PROGRAM_TILES)}),
    RunSpec("mlp-directed-spi", "mlp", "directed", what="the directed frames on the MLP (fuzz bench)",
            options={"end_checks": False}),
    RunSpec("mlp_binary-directed-spi", "mlp_binary", "directed",
            what="the directed frames on the binary MLP (fuzz bench)", options={"end_checks": False}),
    RunSpec("slp-counters-spi", "slp", "counters",
            what=f"{COUNTED_EVENTS:,} each of bad-CRC, unknown-command, bad-length, cut-off and START "
                 "frames, then CTRL clear: the lifetime counters' bits 0-10 (fuzz bench)"),
    RunSpec("cnn-inference", "cnn", "inference",
            what="LeNet-class CNN (conv, max pool, conv, max pool, dense: the layered controller, "
                 "window, pooling units, feature maps); BUSY during every inference; register patterns",
            options={"busy_probe": True, "register_patterns": True}),
    RunSpec("cnn-program-tile", "cnn", "program",
            {"device.stuck_on_rate": 0.002, "device.stuck_off_rate": 0.002},
            what=f"CNN: tiles {', '.join(map(str, CNN_PROGRAM_TILES))} programmed through the write path (0.4 % "
                 "stuck-at cells: timeouts too), then inference", options={"program_tiles": list(CNN_PROGRAM_TILES)}),
    RunSpec("cnn-directed-spi", "cnn", "directed", what="the directed frames on the CNN (fuzz bench)",
            options={"end_checks": False}),
    RunSpec("slp-preload-spi", "slp", "preload",
            what="lifetime counters (ERR_*, FRAMES_OK, INFERENCES) deposited at 2^k - 1 and 2^32 - 2 by "
                 "backdoor, then counted through the pins and read back (saturation, wrap, CTRL clear; fuzz bench)"),
    RunSpec("slp-preload-uart", "slp", "preload", {"host.interface": "uart"},
            what="the lifetime counters' preload over UART (ERR_FRAMING too; ERR_TIMEOUT by frame timeouts)"),
    RunSpec("mlp-preload-spi", "mlp", "preload", what="the lifetime counters' preload on the MLP",
            options={"end_checks": False}),
    RunSpec("mlp_binary-preload-spi", "mlp_binary", "preload",
            what="the lifetime counters' preload on the binary MLP", options={"end_checks": False}),
    RunSpec("cnn-preload-spi", "cnn", "preload",
            what="the lifetime counters' preload on the CNN (INFERENCES left out: 40,175 clocks per inference)",
            options={"end_checks": False}),
    RunSpec("mlp-datapath-spi", "mlp", "datapath",
            what="seeded random weights, REQUANT_MULT 255, 16 and random, full-scale and random inputs: outputs and "
                 "RESULT read back against the golden model (fuzz bench)", options={"end_checks": False}),
    RunSpec("cnn-datapath-spi", "cnn", "datapath",
            what="the data-path run on the CNN (convolutions, ReLUs, pooling with random weights and inputs)",
            options={"end_checks": False}),
)


@dataclass
class RunRecord:
    spec: RunSpec
    cfg: ChipConfig
    folder: Path
    verilog: Path
    sidecar: Path
    design: str          # digest of the Verilog text: runs of one design merge
    seconds: float
    programming: dict | None = None
    images: int = 0

    @property
    def dat(self) -> Path:
        return self.folder / COVERAGE_DAT

    @property
    def samples(self) -> dict:
        path = self.folder / FSM_SAMPLES_FILE
        if not path.exists():
            raise CampaignError(f"{self.spec.name}: the bench wrote no FSM samples ({path})")
        return json.loads(path.read_text())


def design_tiles(cfg: ChipConfig) -> list[tuple[int, int]]:
    """(tile, ADC groups it converts): the groups its outputs need on a chip with shared ADCs,
    one otherwise."""
    if cfg.adc_groups <= 1:
        return [(t.index, 1) for t in cfg.tiles]
    return [(t.index, -(-t.outputs // cfg.tile_adcs)) for t in cfg.tiles]


def directed_items(cfg: ChipConfig) -> list[dict]:
    """Fuzz-bench items: each command with a bad CRC and a bad LEN, each addressed command with
    a bad address (buffer and target writes and buffer reads also at address 0xFFFF), and an
    unknown command, each followed by a valid READ_REG of ID (a probe:
    the chip must serve it; none of the bad frames executes), then REQUANT_MULT written to all
    ones and back, every register read, CTRL's clear and the error counters read again; over SPI a partial frame left to the frame timeout and a frame cut after
    each of its bytes by chip-select, over UART a frame cut after each of its bytes and left
    to time out.
    The bench's model predicts every response."""
    reg_id = protocol.encode_request(Cmd.READ_REG, Reg.ID)
    good = {Cmd.WRITE_REG: (Reg.SCRATCH, b"\x12\x34\x56\x78"), Cmd.READ_REG: (Reg.ID, b""),
            Cmd.WRITE_BUF: (0, b"\x01"), Cmd.READ_BUF: (0, b"\x01"), Cmd.START: (0, b""),
            Cmd.READ_RESULT: (0, b""), Cmd.WRITE_TARGETS: (0, b"\x00"),
            Cmd.START_PROGRAM: (0, b"")}
    bad_len = {Cmd.WRITE_REG: (Reg.SCRATCH, b"\x01\x02"), Cmd.READ_REG: (Reg.ID, b"\x00"),
               Cmd.WRITE_BUF: (0, b""), Cmd.READ_BUF: (0, b"\x00"), Cmd.START: (0, b"\x01"),
               Cmd.READ_RESULT: (0, b"\x01"), Cmd.WRITE_TARGETS: (0, b""),
               Cmd.START_PROGRAM: (0, b"\x01")}
    bad_addr = {Cmd.WRITE_REG: (Reg.ID, b"\x00\x00\x00\x00"), Cmd.READ_REG: (protocol.NUM_REGS, b""),
                Cmd.WRITE_BUF: (cfg.input_bytes, b"\x01"),
                Cmd.READ_BUF: (2 * cfg.outputs, b"\x01"),
                Cmd.WRITE_TARGETS: (cfg.target_bytes, b"\x00")}
    frames = []
    for cmd, (addr, payload) in good.items():
        frame = protocol.encode_request(cmd, addr, payload)
        frames.append(("bad_crc", frame[:-1] + bytes([frame[-1] ^ 0x5A])))
        frames.append(("bad_len", protocol.encode_request(cmd, *bad_len[cmd])))
        if cmd in bad_addr:
            frames.append(("bad_addr", protocol.encode_request(cmd, *bad_addr[cmd])))
    # Addresses at the top of the 16-bit range: address + length and address + index carry
    # into bit 16 of the range checks' sums.
    frames += [("bad_addr", protocol.encode_request(cmd, 0xFFFF, payload)) for cmd, payload in
               ((Cmd.WRITE_BUF, b"\x01\x02"), (Cmd.READ_BUF, b"\x02"), (Cmd.WRITE_TARGETS, b"\x00\x01"))]
    unknown = protocol.encode_request(0x7E, 0)
    frames += [("bad_cmd", unknown), ("bad_crc", unknown[:-1] + bytes([unknown[-1] ^ 0x5A]))]
    items = [{"kind": kind, "ops": [["tx", (frame + reg_id).hex()]], "frames": 2, "probe": True}
             for kind, frame in frames]
    # REQUANT_MULT to all ones and back: every bit of the register toggles both ways.
    items += [{"kind": "valid", "ops": [["tx", protocol.encode_request(
        Cmd.WRITE_REG, Reg.REQUANT_MULT, value.to_bytes(4, "big")).hex()]], "frames": 1, "probe": False}
        for value in (0xFFFFFFFF, 0)]
    # Every register read (the model predicts each), then CTRL's clear and the ERR_* again.
    reads = b"".join(protocol.encode_request(Cmd.READ_REG, r) for r in range(protocol.NUM_REGS))
    clear = protocol.encode_request(Cmd.WRITE_REG, Reg.CTRL, protocol.CTRL_CLEAR_ERRORS.to_bytes(4, "big"))
    errs = b"".join(protocol.encode_request(Cmd.READ_REG, r) for r in
                    (Reg.ERR_CRC, Reg.ERR_CMD, Reg.ERR_LEN, Reg.ERR_TIMEOUT, Reg.ERR_FRAMING))
    items.append({"kind": "valid", "ops": [["tx", (reads + clear + errs).hex()]],
                  "frames": protocol.NUM_REGS + 6, "probe": False})
    whole = protocol.encode_request(Cmd.WRITE_REG, Reg.SCRATCH, b"\x01\x02\x03\x04")
    if cfg.host.interface == "spi":
        # A frame short of its CRC left to the frame timeout with chip-select low (the
        # receiver's idle counter through all its values, a drop in CRC), then a valid frame;
        # a frame cut after each of its bytes by chip-select (a drop from every state: the
        # cut before the CRC leaves CRC for HUNT, tests/hdl/test_command.py).
        items.append({"kind": "stall", "ops": [["tx", whole[:-1].hex()], ["stall"], ["tx", reg_id.hex()]],
                      "frames": 2, "probe": True})
        items += [{"kind": "cut", "ops": [["tx", whole[:cut].hex()]], "frames": 1, "probe": False}
                  for cut in range(1, len(whole))]
    if cfg.host.interface == "uart":
        # A frame cut after each of its bytes, then the frame timeout (the receiver drops it
        # from every state), then a valid frame.
        items += [{"kind": "stall", "ops": [["tx", whole[:cut].hex()], ["stall"], ["tx", reg_id.hex()]],
                   "frames": 2, "probe": True} for cut in range(1, len(whole))]
    return items


def counter_items(cfg: ChipConfig, events: int = COUNTED_EVENTS, per_item: int = 50) -> list[dict]:
    """Fuzz-bench items (SPI) that count `events` of each counted event: frames with a bad CRC
    (ERR_CRC), an unknown command (ERR_CMD), a bad length (ERR_LEN), START (FRAMES_OK and
    INFERENCES: an SLP inference ends before the next frame's CRC), then `events` frames cut
    after 3 bytes by chip-select (ERR_TIMEOUT: one per item, the bench raises chip-select at
    its end) and one left to the frame timeout, READ_BUF of the whole output buffer back to back until just more than the
    transmit FIFO holds is queued (back-pressure: the executor waits for room), then CTRL's clear and a
    READ_REG of ERR_CRC. The bench's model predicts every response, and its end checks read
    every register."""
    start = protocol.encode_request(Cmd.START)
    frames = {"bad_crc": start[:-1] + bytes([start[-1] ^ 0x5A]),
              "bad_cmd": protocol.encode_request(0x7E, 0),
              "bad_len": protocol.encode_request(Cmd.READ_REG, Reg.ID, b"\x00"),
              "valid": start}
    items = []
    for kind, frame in frames.items():
        for first in range(0, events, per_item):
            n = min(per_item, events - first)
            items.append({"kind": kind, "ops": [["tx", (frame * n).hex()]], "frames": n, "probe": False})
    cut = protocol.encode_request(Cmd.READ_REG, Reg.ID)[:3]
    items += [{"kind": "timeout", "ops": [["tx", cut.hex()]], "frames": 1, "probe": False}] * events
    # One partial frame left to the frame timeout with chip-select low: the idle counter
    # runs through all its values (the other cut-offs end at chip-select).
    items.append({"kind": "stall", "ops": [["tx", cut.hex()], ["stall"], ["tx", protocol.encode_request(
        Cmd.READ_REG, Reg.ID).hex()]], "frames": 2, "probe": True})
    # Back-pressure: READ_BUF of the whole output buffer back to back, each response longer
    # than its request, until just more than the transmit FIFO holds is queued: the last
    # response waits for room while the host's next bytes (fewer than the rx FIFO holds)
    # wait in the rx FIFO.
    read_all = protocol.encode_request(Cmd.READ_BUF, 0, bytes([2 * cfg.outputs]))
    reply = len(protocol.encode_response(protocol.Status.ACK, bytes(2 * cfg.outputs)))
    burst = -(-TX_FIFO_DEPTH // (reply - len(read_all)))
    items.append({"kind": "valid", "ops": [["tx", (read_all * burst).hex()]], "frames": burst, "probe": False})
    clear = protocol.encode_request(Cmd.WRITE_REG, Reg.CTRL, protocol.CTRL_CLEAR_ERRORS.to_bytes(4, "big"))
    items.append({"kind": "valid", "ops": [["tx", (clear + protocol.encode_request(Cmd.READ_REG, Reg.ERR_CRC)).hex()]],
                  "frames": 2, "probe": False})
    return items


#: What the summary says under its runs table when a preload run is among them.
PRELOAD_NOTE = (
    "The preload runs (`*-preload-*`) write each lifetime counter's register by backdoor (cocotb "
    "deposit into the Verilator model, built with --public-flat-rw) and then count through the pins. "
    "Verilator's toggle counts include the changes the deposit itself makes, so the values are chosen "
    "such that the chip's own logic makes every change too: after 2^k - 1 is deposited one event's "
    "increment sets bit k (0->1) and clears bits 0 .. k-1 (1->0); from 2^32 - 2 two events reach "
    "all ones (the saturation test and the adders' carry out rise), and then the wrap (FRAMES_OK, "
    "INFERENCES) or CTRL's clear (ERR_*) brings every bit back to 0. Every value read back is checked "
    "against the one worked out from first principles (2^k; 2^32 - 1 and still 2^32 - 1 after one more "
    "event; 0 after the wrap or the clear), beside the bench's model. A preloaded bit counts as "
    "toggled only because the real logic then moves it (increment, saturation, clear).",)

#: The preload run counts INFERENCES only on chips whose inference is at most this many clocks
#: (SLP 39, MLPs ~1,000): its 34 steps are 34 inferences, ~35 s of simulation each on the CNN
#: (40,175 clocks and 706 analog events per inference).
PRELOAD_MAX_INFERENCE_CYCLES = 2000


def preloaded_counters(cfg: ChipConfig) -> list[LifetimeCounter]:
    """The lifetime counters the preload run steps through on this chip (`LIFETIME_COUNTERS` of
    its host interface; INFERENCES only up to `PRELOAD_MAX_INFERENCE_CYCLES` per inference)."""
    short = sum(phase_cycles(cfg).values()) <= PRELOAD_MAX_INFERENCE_CYCLES
    return [c for c in LIFETIME_COUNTERS if cfg.host.interface in c.hosts
            and (c.reg != Reg.INFERENCES or short)]


def preload_items(cfg: ChipConfig) -> list[dict]:
    """Fuzz-bench items that step each lifetime counter (`preloaded_counters`) through every
    carry: a backdoor deposit (op ``["deposit", path, reg, value]``: the RTL register and the
    model's counter) of 2^k - 1, for k = 0..31, then one event through the pins (a frame with a
    bad CRC, an unknown command, a bad length, a frame cut off by chip-select or, over UART, left
    to the frame timeout, a character with a low stop bit, a valid frame, a START), then a
    READ_REG of the counter, which must read 2^k: the increment itself sets bit k and clears bits
    0..k-1. Then 2^32 - 2 and two events: 2^32 - 1 for a saturating counter (one event more
    leaves it there; CTRL's clear then reads 0), 0 for a wrapping one; over UART, last, the
    counters run's back-pressure burst. Each item's "expect"
    lists [response index, value] pairs computed here, from first principles; the bench checks
    them against what the chip sends, beside the model."""
    spi = cfg.host.interface == "spi"
    start = protocol.encode_request(Cmd.START)
    cut = protocol.encode_request(Cmd.READ_REG, Reg.ID)[:3]
    events = {Reg.ERR_CRC: [["tx", (start[:-1] + bytes([start[-1] ^ 0x5A])).hex()]],
              Reg.ERR_CMD: [["tx", protocol.encode_request(0x7E, 0).hex()]],
              Reg.ERR_LEN: [["tx", protocol.encode_request(Cmd.READ_REG, Reg.ID, b"\x00").hex()]],
              Reg.ERR_TIMEOUT: [["tx", cut.hex()]] + ([] if spi else [["stall"]]),
              Reg.ERR_FRAMING: [["ferr", 0x55]],
              Reg.FRAMES_OK: [["tx", protocol.encode_request(Cmd.READ_REG, Reg.ID).hex()]],
              Reg.INFERENCES: [["tx", start.hex()], ["idle", sum(phase_cycles(cfg).values()) + 64]]}
    answered = {Reg.ERR_CRC: 1, Reg.ERR_CMD: 1, Reg.ERR_LEN: 1, Reg.FRAMES_OK: 1, Reg.INFERENCES: 1}
    top = (1 << 32) - 1
    items = []
    for c in preloaded_counters(cfg):
        read = ["tx", protocol.encode_request(Cmd.READ_REG, c.reg).hex()]

        def step(value: int | None, n: int, want: int) -> list[dict]:
            """Deposit `value` (None: keep the count), `n` events, read `want` back."""
            ops = [] if value is None else [["deposit", c.path, int(c.reg), value]]
            if c.reg == Reg.ERR_TIMEOUT and spi:   # the cut counts when chip-select rises: item end
                out = [{"kind": "preload", "ops": ops + events[c.reg], "frames": 0, "probe": False}]
                out += [{"kind": "preload", "ops": events[c.reg], "frames": 0, "probe": False}] * (n - 1)
                return out + [{"kind": "preload", "ops": [read], "frames": 1, "probe": False,
                               "expect": [[0, want]]}]
            ops = ops + events[c.reg] * n + [read]
            frames = n * answered.get(c.reg, 0)
            return [{"kind": "preload", "ops": ops, "frames": frames + 1, "probe": False,
                     "expect": [[frames, want]]}]

        for k in range(32):
            items += step((1 << k) - 1, 1, 1 << k)
        items += step(top - 1, 2, top if c.saturating else 0)
        if c.saturating:
            items += step(None, 1, top)
            clear = protocol.encode_request(Cmd.WRITE_REG, Reg.CTRL, protocol.CTRL_CLEAR_ERRORS.to_bytes(4, "big"))
            items.append({"kind": "preload", "ops": [["tx", clear.hex()], read], "frames": 2,
                          "probe": False, "expect": [[1, 0]]})
    if not spi:   # back-pressure over UART too (the counters run's burst, `counter_items`)
        items.append(counter_items(cfg, events=0)[-2])
    return items


#: The data-path runs' hidden-layer multipliers (REQUANT_MULT, byte l for hidden layer l): the
#: largest (every ReLU clips), a mid-range one and a random one per layer (`datapath_items`).
DATAPATH_MULTS = (0xFF, 0x10, None)


def datapath_items(cfg: ChipConfig) -> list[dict]:
    """Fuzz-bench items that drive the data paths with inputs and multipliers no trained
    network sees (the bench maps seeded random weights to the tiles, and its golden model
    follows REQUANT_MULT): for each multiplier of `DATAPATH_MULTS` (None: a random byte per
    hidden layer), REQUANT_MULT is written, then each of a full-scale input (every code at its
    maximum) and a fresh uniformly random one is written, inferred (START, the chip left to finish)
    and its outputs and RESULT read back, which the bench's model predicts from the golden
    model, with every DAC code the chip drives. Draws from the config's noise seed."""
    rng = np.random.default_rng([cfg.seeds.noise, 0xDA7A])
    hidden = len(cfg.network.activations) - 1
    top = (1 << cfg.quant.dac_bits) - 1
    idle = ["idle", sum(phase_cycles(cfg).values()) + 64]
    start, result = protocol.encode_request(Cmd.START), protocol.encode_request(Cmd.READ_RESULT)
    read_all = protocol.encode_request(Cmd.READ_BUF, 0, bytes([2 * cfg.outputs]))
    items = []
    for mult in DATAPATH_MULTS:
        lanes = [int(m) for m in rng.integers(0, 256, hidden)] if mult is None else [mult] * hidden
        value = sum(m << (8 * l) for l, m in enumerate(lanes))
        items.append({"kind": "datapath", "ops": [["tx", protocol.encode_request(
            Cmd.WRITE_REG, Reg.REQUANT_MULT, value.to_bytes(4, "big")).hex()]], "frames": 1, "probe": False})
        for codes in (np.full(cfg.rows, top), rng.integers(0, top + 1, cfg.rows)):
            packed = pack_codes(codes, cfg.quant.dac_bits)
            writes = [protocol.encode_request(Cmd.WRITE_BUF, a, packed[a:a + protocol.MAX_PAYLOAD])
                      for a in range(0, len(packed), protocol.MAX_PAYLOAD)]
            items.append({"kind": "datapath", "ops": [["tx", b"".join(writes + [start]).hex()], idle,
                                                      ["tx", (read_all + result).hex()]],
                          "frames": len(writes) + 3, "probe": False})
    return items


def _indices(dataset: Dataset, images: int) -> np.ndarray:
    return np.linspace(0, len(dataset.y_test) - 1, images).astype(np.int64)


def image_set(dataset: Dataset, images: int, rails: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, labels, indices): `images` test images spread over the test set; with `rails`
    also an all-white and an all-black image (every DAC code at its maximum, then 0: MNIST's
    border pixels are always black, so its images never drive the border rows), indexed past
    the test set (their own noise events) and labelled 0 (accuracy is not the point here)."""
    idx = _indices(dataset, images)
    x, y = dataset.x_test[idx], dataset.y_test[idx]
    if not rails:
        return x, y, idx
    extremes = np.stack([np.full(x.shape[1:], 255, dtype=x.dtype), np.zeros(x.shape[1:], dtype=x.dtype)])
    n = len(dataset.y_test)
    return (np.concatenate([x, extremes]), np.concatenate([y, np.zeros(2, dtype=y.dtype)]),
            np.concatenate([idx, np.array([n, n + 1], dtype=idx.dtype)]))


def _one(spec: RunSpec, dataset: Dataset, out: Path, images: int, frames: int,
         timeout_s: float) -> tuple[ChipConfig, object, dict | None, int]:
    cfg = config_mod.load(config_mod.CONFIG_DIR / f"{spec.config}.toml")
    if spec.overrides:
        cfg = cfg.replace(**spec.overrides)
    if spec.kind in ("fuzz", "directed", "counters", "preload", "datapath"):
        # The directed and counters runs replace the bench's random plan with their items.
        # Options go into the bench's job ("end_checks": False skips the whole-chip end checks,
        # which program every tile: too long on the MLPs).
        items = {"directed": directed_items, "counters": counter_items, "preload": preload_items,
                 "datapath": datapath_items}
        extra = {"items": items[spec.kind](cfg), **spec.options} if spec.kind in items else None
        fuzz.run_fuzz(cfg, cfg.host.interface, frames, out, seed=cfg.seeds.noise,
                      timeout_s=timeout_s, coverage=True, extra_job=extra)
        return cfg, build(cfg, "verilator", coverage=True), None, 0
    ctx = RunContext.build(cfg, dataset)
    sim_build = build(cfg, "verilator", coverage=True)
    x, y, idx = image_set(dataset, images, rails=spec.kind == "inference")
    kwargs: dict = {"timeout_s": timeout_s, "cycles_every_image": True, **spec.options}
    chip = ctx.golden
    kwargs["requant_mult"] = chip.requant_mult
    if spec.kind == "program":   # the chip programs its own array; `layers` are then unused
        kwargs["targets"] = chip_target_levels(cfg, ctx.weights)
        layers = [np.zeros((n, 2 * m)) for n, m in cfg.network.layer_shapes]
    else:
        layers = chip.layer_conductance
    if spec.kind == "async":
        period_ns = 1e9 / cfg.clock.freq_hz   # half periods in [2, 3] clocks, random phases
        kwargs["spi_timing"] = {"seed": cfg.seeds.noise, "jitter_ns": period_ns,
                                "phase_ns": period_ns}
    result = run(sim_build, layers, x, y, idx, out, **kwargs)
    if result.mismatches:
        raise CampaignError(f"{spec.name}: the chip disagreed with the golden model: "
                            f"{result.mismatches[0]}")
    if spec.options.get("busy_probe") and (result.probes or {}).get("busy_refused") != 2 * result.images:
        raise CampaignError(f"{spec.name}: {result.probes} BUSY refusals, expected 2 per image")
    return cfg, sim_build, result.programming, result.images


def run_campaign(dataset: Dataset, out_dir: str | Path, *, images: int = 5, frames: int = 300,
                 only: tuple[str, ...] = (), timeout_s: float = 3600.0,
                 progress: Callable[[str], None] | None = None,
                 record: str | Path | None = None, keep: list[RunRecord] = ()) -> list[RunRecord]:
    """Run `CAMPAIGN` (or the runs named in `only`) into out_dir/<run name>; with `record`,
    the records so far are saved there after each run (`save_records`), so an interrupted
    campaign can still be analysed. `keep`: records of earlier runs to keep beside the new
    ones (a run done again replaces its record), all in `CAMPAIGN` order."""
    specs = [s for s in CAMPAIGN if not only or s.name in only]
    order = {s.name: n for n, s in enumerate(CAMPAIGN)}
    redone = {s.name for s in specs}
    kept = [r for r in keep if r.spec.name not in redone]
    unknown = set(only) - {s.name for s in CAMPAIGN}
    if unknown:
        raise CampaignError(f"unknown coverage run(s) {', '.join(sorted(unknown))}; choose from "
                            f"{', '.join(s.name for s in CAMPAIGN)}")
    records = []
    for spec in specs:
        out = Path(out_dir) / spec.name
        if progress:
            progress(f"{spec.name}: {spec.what}")
        t0 = time.perf_counter()
        try:
            cfg, sim_build, programming, n = _one(spec, dataset, out, images, frames, timeout_s)
        except fuzz.FuzzError as exc:
            raise CampaignError(f"{spec.name}: {exc}") from None
        verilog = sim_build.rtl.verilog
        records.append(RunRecord(spec, cfg, out, verilog, sim_build.rtl.sidecar,
                                 hashlib.sha256(verilog.read_bytes()).hexdigest()[:12],
                                 time.perf_counter() - t0, programming, n))
        if record is not None:
            save_records(sorted(kept + records, key=lambda r: order[r.spec.name]), record)
    return sorted(kept + records, key=lambda r: order[r.spec.name])


def _design_name(cfg: ChipConfig) -> str:
    return f"{cfg.name}-{cfg.host.interface}"


def analyse_campaign(records: list[RunRecord], out_dir: str | Path,
                     waivers: list[coverage.Waiver]) -> tuple[str, int]:
    """Merge each design's runs (out_dir/<design>/coverage.dat, and the annotated Verilog
    beside it), compute FSM and functional coverage, list the open items in
    out_dir/open_items.txt; return (summary markdown, number of open items, the done-means
    checks not met: `coverage.done_means`)."""
    out_dir = Path(out_dir)
    by_design: dict[str, list[RunRecord]] = {}
    for r in records:
        by_design.setdefault(r.design, []).append(r)
    names = {d: _design_name(rs[0].cfg) for d, rs in by_design.items()}
    if len(set(names.values())) != len(names):   # one config and host, two Verilog texts
        names = {d: f"{n}-{d[:6]}" for d, n in names.items()}
    bins = coverage.FunctionalBins({names[d]: design_tiles(rs[0].cfg)
                                    for d, rs in by_design.items()})
    try:
        designs, fsms = [], {}
        for digest, runs in by_design.items():
            name = names[digest]
            source = runs[0].verilog.read_text().splitlines()
            points = coverage.merge(*(coverage.rebase(coverage.read_dat(r.dat), f"{name}/xbarflow_top.v")
                                      for r in runs))
            coverage.write_dat(points, out_dir / name / COVERAGE_DAT)
            coverage.annotate(points, source, out_dir / name / "xbarflow_top.v.annotated")
            designs.append({"name": name, "points": points, "source_lines": source})
            samples = [r.samples for r in runs]
            fsms[name] = coverage.fsm_figures(json.loads(runs[0].sidecar.read_text()), samples)
            for r, doc in zip(runs, samples):
                _sample_bins(bins, name, r, doc)
        runs_table = [{"name": r.spec.name, "design": names[r.design], "what": r.spec.what,
                       "seconds": r.seconds} for r in records]
        text = coverage.summary_markdown(designs, fsms, bins, waivers, runs_table,
                                         PRELOAD_NOTE if any(r.spec.kind == "preload" for r in records) else ())
        open_items = coverage.open_items(designs, fsms, bins, waivers)
        unmet = [c.name for c in coverage.done_means(designs, fsms, bins, waivers) if not c.met]
        (out_dir / "open_items.txt").write_text("".join(f"{i.ident}\t{i.where}\n" for i in open_items))
    finally:
        bins.close()
    return text, len(open_items), unmet


def _sample_bins(bins: "coverage.FunctionalBins", design: str, record: RunRecord, doc: dict) -> None:
    groups = coverage.BIN_GROUPS
    for key, n in doc.get("exchanges", {}).items():
        bins.sample(groups[0], key, n)
    for key, n in doc.get("adc_groups", {}).items():
        tile, group = key.split(":")
        bins.sample(groups[1], f"{design} tile {tile} group {group}", n)
    cfg = record.cfg
    if record.images:
        hidden = cfg.network.activations[:-1]
        for act in hidden or ("none (single layer)",):
            bins.sample(groups[2], act)
    p = record.programming
    if p is not None:
        bins.sample(groups[3], "verified" if p["failures"] == 0 else "timeout")
        if p["failures"] and (cfg.device.stuck_on_rate or cfg.device.stuck_off_rate):
            bins.sample(groups[3], "stuck")
    if doc.get("exchanges"):
        bins.sample(groups[4], cfg.host.interface)


def save_records(records: list[RunRecord], path: str | Path) -> Path:
    """The campaign's records as JSON (`load_records` reads them: re-analyse without re-running)."""
    path = Path(path)
    path.write_text(json.dumps([{
        "run": r.spec.name, "config": r.cfg.to_dict(), "folder": str(r.folder),
        "verilog": str(r.verilog), "sidecar": str(r.sidecar), "design": r.design,
        "seconds": r.seconds, "programming": r.programming, "images": r.images}
        for r in records], indent=1))
    return path


def load_records(path: str | Path) -> list[RunRecord]:
    path = Path(path)
    try:
        docs = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CampaignError(f"cannot read the campaign record {path}: {exc}") from None
    specs = {s.name: s for s in CAMPAIGN}
    return [RunRecord(specs[d["run"]], config_mod.from_dict(d["config"]), Path(d["folder"]),
                      Path(d["verilog"]), Path(d["sidecar"]), d["design"], d["seconds"],
                      d["programming"], d["images"]) for d in docs]
