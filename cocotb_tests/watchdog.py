"""Simulation watchdogs: every awaited exchange gets a simulated-time bound, and a stall is
reported with the FSM state it stalled in.

`Watchdog` reads the FSM state registers named in the Verilog sidecar (`xbarflow.flow.sim.verilog` writes
``fsms``: hierarchical path -> {code: state name}) from the dut handles. `guard` awaits a
coroutine under a simulated-time bound; on a timeout it raises `StallError` naming the FSMs
that are not idle, e.g.::

    image 7: no progress after 160000 cycles (3.2 ms): controller stalled in CONVERT
    (ctrl_state=3); other FSMs: command executor in IDLE (executor_state=0), command receiver
    in HUNT (receiver_state=0), ...

A Verilator model built with ``--public-depth 1`` (`xbarflow.flow.sim.runner` builds the HDL-transactor harness
that way) hides the chip's internal signals from cocotb; the report then says so instead of
naming a state.

`bridge_task` is a test-only fault hook for benches: with ``"test_fault": "adc_never_answers"``
in the job (or ``XBARFLOW_TEST_FAULT=adc_never_answers`` in the environment) the analog side
answers ``vmm_start`` as usual but never answers ``adc_start``, so the controller stalls in
CONVERT and the watchdog must say so (tests/cosim/test_watchdog.py). The other test faults, and their
syntax, are in `xbarflow.cocotb_tests.sabotage`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, SimTimeoutError, with_timeout
from xbarflow.flow.core.errors import XbarflowError

from .sabotage import requested

__all__ = [
    "FsmState", "HOST_PACED", "IDLE_STATES", "StallError", "Watchdog", "analog_fault_requested",
    "bridge_task",
]

#: States in which an FSM is waiting for work rather than stalled.
IDLE_STATES = frozenset({"IDLE", "HUNT"})
#: FSMs paced by the host link (a frame half-received when the host gave up is not a stall of
#: the chip): listed, never reported as stalled. Matched against the sidecar path's modules.
HOST_PACED = ("command", "uart", "spi")


class StallError(XbarflowError, TimeoutError):
    """An exchange did not finish within its simulated-time bound; the message names the
    state every visible FSM was in."""


@dataclass(frozen=True)
class FsmState:
    path: str            # hierarchical path from the sidecar, e.g. xbarflow_top.controller.ctrl_state
    label: str           # e.g. "controller", "command receiver"
    register: str        # e.g. "ctrl_state"
    code: int | None     # None: not visible (or not a defined value)
    name: str | None     # state name for `code`, None when unknown

    def describe(self, verb: str = "in") -> str:
        if self.code is None:
            return f"{self.label} state not visible ({self.register})"
        name = self.name if self.name is not None else f"undefined state {self.code}"
        return f"{self.label} {verb} {name} ({self.register}={self.code})"


def _label(path: str) -> str:
    """The FSM's name in a report: its modules, then its own name where that adds something.

    'xbarflow_top.command.receiver.receiver_state' -> 'command receiver';
    '...controller.ctrl_state' -> 'controller'; '...controller.argmax.argmax_state' ->
    'controller argmax'; '...uart.uart_rx_state' -> 'uart receiver'."""
    parts = path.split(".")
    modules, reg = parts[1:-1], parts[-1].removesuffix("_state")
    base = " ".join(modules) if modules else reg
    leaf = modules[-1] if modules else ""
    if reg in (leaf, "ctrl", "prog") or not modules:
        return base
    nice = {"uart_rx": "receiver", "uart_tx": "transmitter"}.get(reg, reg)
    return f"{base} {nice}"


def _host_paced(path: str) -> bool:
    return any(part in HOST_PACED for part in path.split(".")[1:-1])


class Watchdog:
    """Reads FSM states from the dut by the sidecar's paths; bounds awaited exchanges."""

    def __init__(self, dut, fsms: dict[str, dict[str, str]], period_ns: float):
        self.dut = dut
        self.fsms = dict(fsms)
        self.period_ns = float(period_ns)
        self._handles: dict[str, object | None] = {}

    @classmethod
    def from_sidecar(cls, dut, sidecar: str | Path, period_ns: float) -> "Watchdog":
        meta = json.loads(Path(sidecar).read_text())
        return cls(dut, meta.get("fsms", {}), period_ns)

    @classmethod
    def for_job(cls, dut, job: dict) -> "Watchdog":
        """From a bench job file (`xbarflow.flow.sim.runner.run` writes ``sidecar`` and ``config``)."""
        freq = float(job["config"]["clock"]["freq_hz"])
        try:
            return cls.from_sidecar(dut, job["sidecar"], 1e9 / freq)
        except (KeyError, OSError, ValueError):
            return cls(dut, {}, 1e9 / freq)       # no sidecar: timeouts still bounded

    # -- reading states ---------------------------------------------------------------------------
    def resolve(self, path: str):
        """The dut handle of the FSM state register at sidecar `path`, or None if not visible."""
        if path in self._handles:
            return self._handles[path]
        rel = path.split(".")[1:]                 # drop the chip's top module name
        handle = None
        # The chip is the dut itself, or instance `chip` of the HDL-transactor harness.
        for root in (self.dut, self._child(self.dut, "chip")):
            h = root
            for part in rel:
                h = self._child(h, part) if h is not None else None
            if h is not None:
                handle = h
                break
        self._handles[path] = handle
        return handle

    @staticmethod
    def _child(handle, name: str):
        if handle is None:
            return None
        try:
            return getattr(handle, name)
        except (AttributeError, KeyError, TypeError):
            return None

    def states(self) -> list[FsmState]:
        out = []
        for path, names in self.fsms.items():
            handle = self.resolve(path)
            code = None
            if handle is not None:
                try:
                    code = int(handle.value)     # Logic (1 bit) or LogicArray
                except (ValueError, AttributeError, TypeError):
                    code = None          # X/Z, or not a value handle
            out.append(FsmState(path, _label(path), path.split(".")[-1], code,
                                names.get(str(code)) if code is not None else None))
        return out

    def report(self, cycles: int | None = None) -> str:
        """One line: the non-idle FSMs first ('stalled in'), then the others."""
        states = self.states()
        if not states:
            return "no FSM state information (no sidecar)"
        visible = [s for s in states if s.code is not None]
        if not visible:
            return ("FSM states not visible from cocotb (e.g. a Verilator model built with "
                    "--public-depth 1): " + ", ".join(s.register for s in states))
        after = f" after {cycles} cycles" if cycles is not None else ""
        busy = [s for s in visible if s.name not in IDLE_STATES and not _host_paced(s.path)]
        rest = [s for s in states if s not in busy]
        if busy:
            head = "; ".join(s.describe("stalled in") + after for s in busy)
        else:
            head = f"no internal FSM busy{after} (the chip waits for the host)"
        return head + ("; other FSMs: " + ", ".join(s.describe() for s in rest) if rest else "")

    # -- bounded awaits ---------------------------------------------------------------------------
    async def guard(self, coro, timeout_ns: float, what: str):
        """Await `coro` for at most `timeout_ns` of simulated time; on a timeout raise
        `StallError` with the FSM states."""
        try:
            return await with_timeout(coro, timeout_ns, "ns")
        except SimTimeoutError:
            cycles = int(round(timeout_ns / self.period_ns))
            raise StallError(f"{what}: no progress after {cycles} cycles "
                             f"({timeout_ns / 1e6:g} ms): {self.report(cycles)}") from None


# -- test-only fault injection ----------------------------------------------------------------------

def analog_fault_requested(job: dict) -> bool:
    """The job (or XBARFLOW_TEST_FAULT) asks for a dead ADC; a malformed request raises."""
    return any(f.kind == "adc_never_answers" for f in requested(job))


async def _vmm_only(bridge) -> None:
    """The analog side with a dead ADC: vmm_start is answered after the settling latency the
    models give, adc_start never."""
    dut = bridge.dut
    chip = getattr(bridge, "chip", None)      # the bridge serves a GoldenChip's tiles
    array = chip.tiles[0].array if chip is not None else bridge.array
    settle, _ = array.latency_cycles()
    dut.vmm_done.value = 0
    dut.adc_valid.value = 0
    while True:
        await RisingEdge(dut.vmm_start)
        await ClockCycles(dut.clk, settle, rising=False)
        dut.vmm_done.value = 1
        await FallingEdge(dut.clk)
        dut.vmm_done.value = 0


def bridge_task(bridge, job: dict):
    """The coroutine serving the analog boundary: `bridge.run()`, unless the job asks for a
    test fault (`xbarflow.cocotb_tests.sabotage`)."""
    kinds = {f.kind for f in requested(job)}
    if "adc_never_answers" in kinds:
        return _vmm_only(bridge)
    if "noise_key_off_by_one" in kinds:
        bridge.noise_key_offset = 1
    return bridge.run()
