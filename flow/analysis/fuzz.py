"""Host-interface fuzzing: seeded frame generators and mutators, and the runner of the cocotb
fuzz bench (`cocotb_tests/test_fuzz.py`) used by pytest and `make fuzz`.

    xbarflow fuzz [--frames N] [--host spi uart] [--seed S] [--sim verilator]   (xbarflow.flow.commands.fuzz)

A fuzz *plan* is a list of items; each item is what the host does in one go (over SPI: one
chip-select window; over UART: one burst of characters) as a list of JSON-able ops:

    ["tx", hex]          bytes on the link (request frames, garbage, ...)
    ["bits", v, n]       SPI: n < 8 bits of one more byte (MSB first), then chip-select rises
                         mid-byte (always the last op of an item)
    ["ferr", byte]       UART: a character with a low stop bit (framing error)
    ["glitch"]           UART: a low pulse far shorter than half a bit (must be ignored)
    ["stall"]            the host idles for longer than `protocol.FRAME_TIMEOUT_CYCLES` (SPI:
                         with chip-select held low), so a partial frame times out

The bench executes every item on the chip's pins and, in lock step, feeds the same bytes to the
reference model `xbarflow.flow.host.driver.ChipProtocolModel`; every response frame, every register read, every
inference (the chip's DAC bus against the model's input buffer) must agree with it byte for
byte. Items are drawn by kind (`KINDS`); the plan depends only on (config, host, frames, seed).

`run_fuzz` builds the Verilator model (the cached build of `xbarflow.flow.sim.runner.build`), writes a job file,
runs the bench through cocotb's runner and returns the bench's summary (frames by kind,
responses by status and error, the chip's error counters, simulated and wall time).
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from cocotb_tools.check_results import get_results

from xbarflow.hdl import protocol
from xbarflow.hdl.protocol import Cmd, Reg

from ..core.config import ChipConfig
from ..core.errors import XbarflowError
from ..host.driver import ChipProtocolModel
from ..sim.runner import TIMESCALE, SimulatorError, build, cocotb_runner, coverage_hooks

__all__ = ["BENCH_MODULE", "DEFAULT_FRAMES", "FrameGen", "FuzzError", "HOSTS", "JOB_ENV", "KINDS",
           "MUTATIONS", "TEST_FRAMES", "format_summary", "fuzz_config", "make_item", "plan",
           "plan_summary", "run_fuzz", "starts_programming"]

BENCH_MODULE = "xbarflow.cocotb_tests.test_fuzz"
JOB_ENV = "XBARFLOW_FUZZ_JOB"
HOSTS = ("spi", "uart")
DEFAULT_FRAMES = 10_000
TEST_FRAMES = 500          # what `make test` runs per host

# Item kinds and their relative weights per host. "probe" kinds end with a valid frame that
# must be served (ACK) after the bad traffic: the resynchronisation check.
KINDS = {
    #  kind           spi  uart  probe
    "valid":        (30,  30,  False),   # 1-3 well-formed frames (reads, writes, START, ...)
    "bad_crc":      (9,   9,   True),    # a frame whose CRC byte or body was corrupted
    "bad_cmd":      (6,   6,   True),    # an unknown command code with a good CRC
    "bad_len":      (7,   7,   True),    # a wrong LEN for the command (incl. oversize 255)
    "bad_addr":     (7,   7,   True),    # register / buffer / target address out of range
    "mutated":      (10,  10,  False),   # a valid frame with a random bit flip, byte insert,
                                         # delete, replace or duplicate (the model decides)
    "truncated":    (6,   3,   False),   # a frame cut short (SPI: CS rises; UART: timeout)
    "garbage":      (9,   9,   True),    # random non-SYNC bytes, then a valid frame
    "garbage_sync": (3,   3,   False),   # random bytes that include SYNC, then a valid frame
    "multi":        (5,   5,   False),   # 2-4 frames of any kind back to back
    "cs_mid_byte":  (6,   0,   False),   # SPI: whole bytes, then CS rises after 1-7 bits
    "stall":        (1,   1,   True),    # a partial frame, the host idles past the timeout,
                                         # then a valid frame (SPI: CS held low throughout)
    "framing":      (0,   6,   True),    # UART: a character with a low stop bit between frames
    "framing_mid":  (0,   3,   False),   # UART: ... inside a frame (the frame loses a byte)
    "glitch":       (0,   2,   True),    # UART: a short low pulse on RX, then a valid frame
}
MUTATIONS = ("flip", "replace", "insert", "delete", "duplicate", "sync")


def _hex(data: bytes) -> str:
    return bytes(data).hex()


class FrameGen:
    """Random request frames for one chip geometry (`ChipConfig`)."""

    def __init__(self, cfg: ChipConfig, rng: random.Random):
        self.rng = rng
        self.input_bytes = cfg.input_bytes
        self.output_bytes = 2 * cfg.outputs
        self.target_bytes = cfg.target_bytes
        self.top_level = cfg.quant.weight_levels - 1

    # -- helpers ------------------------------------------------------------------------------
    def _length(self, most: int) -> int:
        """A payload length in 1..most: mostly short, sometimes up to the limit."""
        r = self.rng.random()
        if r < 0.75:
            return self.rng.randint(1, min(most, 12))
        if r < 0.95:
            return self.rng.randint(1, min(most, 64))
        return min(most, protocol.MAX_PAYLOAD)   # a CNN's 392-byte image takes two frames

    def _bytes(self, n: int) -> bytes:
        return bytes(self.rng.randrange(256) for _ in range(n))

    # -- well-formed requests ---------------------------------------------------------------------
    def valid(self) -> bytes:
        """A request the chip executes (ACK). START_PROGRAM is left out: a programming run on
        random targets is checked once, at the end of the bench."""
        rng = self.rng
        r = rng.random()
        if r < 0.28:
            return protocol.encode_request(Cmd.READ_REG, rng.randrange(protocol.NUM_REGS))
        if r < 0.42:
            return protocol.encode_request(Cmd.WRITE_REG, Reg.SCRATCH, self._bytes(4))
        if r < 0.46:
            # CTRL: start an inference (bit0) and/or clear the error counters (bit1, rarely).
            value = rng.choice([1, 1, 1, 3, 2]) | rng.randrange(1 << 30) << 2
            return protocol.encode_request(Cmd.WRITE_REG, Reg.CTRL, value.to_bytes(4, "big"))
        if r < 0.62:
            n = self._length(self.input_bytes)
            return protocol.encode_request(Cmd.WRITE_BUF, rng.randint(0, self.input_bytes - n),
                                           self._bytes(n))
        if r < 0.72:
            n = rng.randint(1, self.output_bytes)
            return protocol.encode_request(Cmd.READ_BUF, rng.randint(0, self.output_bytes - n),
                                           bytes([n]))
        if r < 0.80:
            return protocol.encode_request(Cmd.START, rng.randrange(1 << 16))   # ADDR ignored
        if r < 0.92:
            return protocol.encode_request(Cmd.READ_RESULT, rng.randrange(1 << 16))
        n = self._length(min(protocol.MAX_PAYLOAD, self.target_bytes))
        # Level codes, sometimes above the top level (the chip stores them saturated).
        codes = bytes(rng.randint(0, self.top_level) if rng.random() < 0.9 else rng.randrange(256)
                      for _ in range(n))
        return protocol.encode_request(Cmd.WRITE_TARGETS, rng.randint(0, self.target_bytes - n), codes)

    def any_command(self) -> bytes:
        """A valid frame, or a well-formed START_PROGRAM (for the corruptions below)."""
        if self.rng.random() < 0.1:
            return protocol.encode_request(Cmd.START_PROGRAM)
        return self.valid()

    # -- bad requests (each gets a NACK with a known error) ----------------------------------------
    def bad_crc(self) -> bytes:
        frame = bytearray(self.any_command())
        if self.rng.random() < 0.5:
            frame[-1] ^= self.rng.randint(1, 255)             # the CRC byte itself
        else:
            # A corrupted ADDR or payload byte (CMD and LEN keep the frame's shape): CRC-8
            # detects every single-byte error, so the frame still fails its check.
            pos = self.rng.choice([2, 3, *range(5, len(frame) - 1)])
            frame[pos] ^= self.rng.randint(1, 255)
        return bytes(frame)

    def bad_cmd(self) -> bytes:
        known = {int(c) for c in Cmd}
        cmd = self.rng.choice([c for c in range(256) if c not in known])
        n = self.rng.choice([0, 0, 1, 4, self.rng.randint(0, 16)])
        return protocol.encode_request(cmd, self.rng.randrange(1 << 16), self._bytes(n))

    def bad_len(self) -> bytes:
        rng = self.rng
        cmd = rng.choice(list(Cmd))
        oversize = rng.random() < 0.1
        if cmd == Cmd.WRITE_REG:
            n = 255 if oversize else rng.choice([0, 1, 2, 3, 5, 8])
            return protocol.encode_request(cmd, Reg.SCRATCH, self._bytes(n))
        if cmd == Cmd.READ_BUF:
            # LEN must be 1 and the count byte non-zero.
            payload = b"\x00" if rng.random() < 0.4 else self._bytes(255 if oversize else rng.choice([0, 2, 3]))
            return protocol.encode_request(cmd, 0, payload)
        if cmd in (Cmd.WRITE_BUF, Cmd.WRITE_TARGETS):
            return protocol.encode_request(cmd, 0)                       # LEN 0
        # READ_REG, START, READ_RESULT, START_PROGRAM take no payload.
        n = 255 if oversize else rng.randint(1, 6)
        return protocol.encode_request(cmd, Reg.ID if cmd == Cmd.READ_REG else 0, self._bytes(n))

    def bad_addr(self) -> bytes:
        rng = self.rng
        r = rng.random()
        if r < 0.2:
            return protocol.encode_request(Cmd.READ_REG, rng.choice(
                [protocol.NUM_REGS, rng.randint(protocol.NUM_REGS, 0xFF), rng.randint(0x100, 0xFFFF),
                 0x100 | int(Reg.ID)]))   # 0x100 + ID: the high address byte counts too
        if r < 0.4:
            # A read-only or unmapped register (CTRL and SCRATCH are the writable ones).
            addr = rng.choice([int(x) for x in Reg if x not in protocol.WRITABLE_REGS]
                              + [protocol.NUM_REGS, 0x100 | int(Reg.SCRATCH), 0xFFFF])
            return protocol.encode_request(Cmd.WRITE_REG, addr, self._bytes(4))
        if r < 0.6:
            n = rng.choice([self._length(protocol.MAX_PAYLOAD), protocol.MAX_PAYLOAD])
            addr = rng.randint(max(0, self.input_bytes - n + 1), 0xFFFF if rng.random() < 0.3
                               else self.input_bytes + 4)
            return protocol.encode_request(Cmd.WRITE_BUF, addr, self._bytes(n))
        if r < 0.8:
            n = rng.randint(1, 255)
            addr = rng.randint(max(0, self.output_bytes - n + 1), self.output_bytes + 4)
            return protocol.encode_request(Cmd.READ_BUF, addr, bytes([n]))
        n = self._length(protocol.MAX_PAYLOAD)
        addr = rng.randint(self.target_bytes - n + 1, 0xFFFF if rng.random() < 0.3 else self.target_bytes + 4)
        return protocol.encode_request(Cmd.WRITE_TARGETS, addr, bytes(n))

    # -- mutations ---------------------------------------------------------------------------------
    def mutate(self, frame: bytes) -> tuple[bytes, str]:
        rng = self.rng
        f = bytearray(frame)
        how = rng.choice(MUTATIONS)
        pos = rng.randrange(len(f))
        if how == "flip":
            f[pos] ^= 1 << rng.randrange(8)
        elif how == "replace":
            f[pos] = rng.randrange(256)
        elif how == "insert":
            f.insert(pos, rng.randrange(256))
        elif how == "delete":
            del f[pos]
        elif how == "duplicate":
            f.insert(pos, f[pos])
        else:                                  # a stray SYNC somewhere in the frame
            f.insert(pos, protocol.SYNC)
        return bytes(f), how

    def garbage(self, with_sync: bool) -> bytes:
        n = self.rng.randint(1, 12)
        data = bytearray(self.rng.choice([b for b in range(256) if b != protocol.SYNC]) for _ in range(n))
        if with_sync:
            for _ in range(self.rng.randint(1, 2)):
                data.insert(self.rng.randrange(len(data) + 1), protocol.SYNC)
        return bytes(data)

    def bad(self) -> bytes:
        return self.rng.choice([self.bad_crc, self.bad_cmd, self.bad_len, self.bad_addr])()


def _item(kind: str, ops: list, frames: int, probe: bool = False, **extra) -> dict:
    return {"kind": kind, "ops": ops, "frames": frames, "probe": probe, **extra}


def make_item(gen: FrameGen, kind: str, host: str) -> dict:
    """One item of `kind` (see `KINDS`)."""
    rng = gen.rng
    tx = lambda data: ["tx", _hex(data)]   # noqa: E731
    if kind == "valid":
        frames = [gen.valid() for _ in range(rng.choice([1, 1, 1, 2, 3]))]
        return _item(kind, [tx(b"".join(frames))], len(frames))
    if kind in ("bad_crc", "bad_cmd", "bad_len", "bad_addr"):
        bad = getattr(gen, kind)()
        return _item(kind, [tx(bad + gen.valid())], 2, probe=True)
    if kind == "mutated":
        frame, how = gen.mutate(gen.valid())
        return _item(kind, [tx(frame)], 1, mutation=how)
    if kind == "truncated":
        frame = gen.any_command()
        cut = frame[:rng.randrange(1, len(frame))]             # from SYNC alone to all but CRC
        ops = [tx(cut)]
        if host == "uart":
            ops.append(["stall"])                              # only the timeout drops it
        return _item(kind, ops, 1)
    if kind == "garbage":
        return _item(kind, [tx(gen.garbage(False) + gen.valid())], 1, probe=True)
    if kind == "garbage_sync":
        return _item(kind, [tx(gen.garbage(True) + gen.valid())], 1)
    if kind == "multi":
        frames = [rng.choice([gen.valid, gen.valid, gen.bad, lambda: gen.mutate(gen.valid())[0]])()
                  for _ in range(rng.randint(2, 4))]
        return _item(kind, [tx(b"".join(frames))], len(frames))
    if kind == "cs_mid_byte":
        frame = gen.any_command()
        head = frame[:rng.randrange(0, len(frame))]            # whole bytes sent first
        extra = frame[len(head)] if len(head) < len(frame) else rng.randrange(256)
        nbits = rng.randint(1, 7)
        ops = ([tx(head)] if head else []) + [["bits", extra >> (8 - nbits), nbits]]
        return _item(kind, ops, 1)
    if kind == "stall":
        frame = gen.any_command()
        cut = frame[:rng.randrange(1, len(frame))]
        return _item(kind, [tx(cut), ["stall"], tx(gen.valid())], 2, probe=True)
    if kind == "framing":
        return _item(kind, [tx(gen.valid()), ["ferr", rng.randrange(256)], tx(gen.valid())], 2,
                     probe=True)
    if kind == "framing_mid":
        frame = gen.valid()
        pos = rng.randrange(1, len(frame))
        # The character at `pos` arrives with a low stop bit: the chip drops it, so the frame
        # is one byte short and takes the next byte that comes (or times out).
        ops = [tx(frame[:pos]), ["ferr", frame[pos]]]
        if pos + 1 < len(frame):
            ops.append(tx(frame[pos + 1:]))
        ops.append(["stall"])
        return _item(kind, ops, 1)
    if kind == "glitch":
        return _item(kind, [["glitch"], tx(gen.valid())], 1, probe=True)
    raise ValueError(f"unknown fuzz item kind '{kind}'")


def starts_programming(cfg: ChipConfig, item: dict, host: str) -> bool:
    """Would `item` start a programming run (a well-formed START_PROGRAM, e.g. made by a lucky
    mutation)? The bench keeps the programmer idle during fuzzing (a run takes ~10^5 clocks and
    is checked once, at the end), so the plan leaves such items out. The check replays the item
    on a fresh reference model, SPI filler bytes included."""
    model = ChipProtocolModel.from_config(cfg)
    for op in item["ops"]:
        if op[0] == "tx":
            model.feed(bytes.fromhex(op[1]))
        elif op[0] == "stall":
            model.drop_partial()
    if host == "spi":
        model.feed(bytes(300))
    return model.programs > 0


def plan(cfg: ChipConfig, host: str, frames: int, seed: int = 1) -> list[dict]:
    """A deterministic list of items holding at least `frames` request frames for `host`."""
    if host not in HOSTS:
        raise ValueError(f"unknown host interface '{host}'; choose one of: {', '.join(HOSTS)}")
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    rng = random.Random(f"xbarflow-fuzz-{seed}-{host}")
    gen = FrameGen(cfg, rng)
    col = 0 if host == "spi" else 1
    kinds = [k for k, w in KINDS.items() if w[col] > 0]
    weights = [KINDS[k][col] for k in kinds]
    items: list[dict] = []
    total = 0
    # Every kind at least once, early (so even a short run covers them), then weighted draws.
    order = list(kinds)
    rng.shuffle(order)
    while total < frames:
        kind = order.pop() if order else rng.choices(kinds, weights)[0]
        item = make_item(gen, kind, host)
        while starts_programming(cfg, item, host):
            item = make_item(gen, kind, host)
        items.append(item)
        total += item["frames"]
    return items


def plan_summary(items: list[dict]) -> dict[str, int]:
    """Frames per kind."""
    out: dict[str, int] = {}
    for it in items:
        out[it["kind"]] = out.get(it["kind"], 0) + it["frames"]
    return dict(sorted(out.items()))


# -- the runner ------------------------------------------------------------------------------------

class FuzzError(XbarflowError, RuntimeError):
    """The fuzz bench failed (a mismatch with the model, a hang, or a simulator problem)."""


def fuzz_config(cfg: ChipConfig, host: str) -> ChipConfig:
    return cfg if cfg.host.interface == host else cfg.replace(**{"host.interface": host})


def run_fuzz(cfg: ChipConfig, host: str, frames: int, out_dir: str | Path, *, seed: int = 1,
             sim: str = "verilator", timeout_s: float = 3600.0, extra_job: dict | None = None,
             coverage: bool = False) -> dict:
    """Run `frames` fuzz frames over `host` on `sim` and return the bench's summary.

    With `coverage`, on the coverage build (`xbarflow.flow.sim.runner.build`): the run leaves
    Verilator's coverage counts and the FSM samples in `out_dir`.

    Raises `FuzzError` with the bench's first problem if the chip and the model disagreed,
    an exchange hung, or the bench did not finish."""

    cfg = fuzz_config(cfg, host)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    sim_build = build(cfg, sim, coverage=coverage)   # the pin-level build (full signal visibility)
    cov_env, cov_plusargs = coverage_hooks(sim_build, out)
    items = plan(cfg, host, frames, seed)
    results = out / "fuzz.json"
    results.unlink(missing_ok=True)
    job = {"config": cfg.to_dict(), "items": items, "seed": seed, "results": str(results),
           "sidecar": str(sim_build.rtl.sidecar), "timeout_s": timeout_s, **(extra_job or {})}
    job_path = out / "fuzz_job.json"
    job_path.write_text(json.dumps(job))
    log = out / f"fuzz-{sim}.log"
    t1 = time.perf_counter()
    try:
        xml = cocotb_runner(sim).test(
            test_module=BENCH_MODULE, hdl_toplevel=sim_build.toplevel, hdl_toplevel_lang="verilog",
            build_dir=sim_build.sim_build, test_dir=out / f"sim-{sim}",
            extra_env={JOB_ENV: str(job_path), "COCOTB_LOG_LEVEL": "WARNING", **cov_env},
            plusargs=cov_plusargs, timescale=TIMESCALE, log_file=log,
            results_xml=str(out / f"results-{sim}.xml"))
    except (RuntimeError, SystemExit) as exc:
        # Under pytest the runner exits on a failed test; the bench's summary says why.
        if results.exists() and json.loads(results.read_text()).get("problems"):
            xml, failed = None, 1
        else:
            raise FuzzError(f"{sim} fuzz simulation failed ({exc}); see {log}") from None
    except SimulatorError as exc:
        raise FuzzError(str(exc)) from None
    else:
        try:
            _, failed = get_results(Path(xml))
        except RuntimeError as exc:   # no results file: the simulator stopped before the bench ended
            raise FuzzError(f"{sim} fuzz simulation failed ({exc}); see {log}") from None
    if not results.exists():
        raise FuzzError(f"the fuzz bench wrote no results; see {log}")
    summary = json.loads(results.read_text())
    summary["build_s"] = round(t1 - t0, 2)
    summary["wall_s"] = round(time.perf_counter() - t1, 2)
    summary["log"] = str(log)
    if failed or summary.get("problems"):
        first = (summary.get("problems") or [summary.get("error", "see log")])[0]
        raise FuzzError(f"{host} fuzz failed: {first}; see {log}")
    return summary


def format_summary(s: dict) -> str:
    """A short human-readable table of one host's fuzz summary."""
    lines = [f"[fuzz] {s['host']}: {s['frames']} frames in {s['items']} items, seed {s['seed']}, "
             f"{s['sim_ms']:.1f} ms simulated, {s['wall_s']:.1f} s wall (+{s['build_s']:.1f} s build)"]
    lines.append("  frames by kind: " + ", ".join(f"{k} {v}" for k, v in s["frames_by_kind"].items()))
    lines.append("  responses: " + ", ".join(f"{k} {v}" for k, v in s["responses"].items()))
    lines.append(f"  error counters, totals over the run ({s.get('clears', 0)} CTRL clears in it): "
                 + ", ".join(f"{k} {v}" for k, v in s["counters_total"].items()))
    lines.append("  chip registers at the end (since the last clear, equal to the model): "
                 + ", ".join(f"{k} {v}" for k, v in s["counters"].items()))
    lines.append(f"  resynchronised after bad traffic: {s['probes_served']}/{s['probes']}; "
                 f"inferences checked against the model's input buffer: {s['inferences']}; "
                 f"max exchange {s['max_exchange_cycles']} cycles (bound {s['exchange_bound_cycles']})")
    lines.append(f"  end checks: {', '.join(f'{k} {v}' for k, v in s['end_checks'].items())}")
    return "\n".join(lines)
