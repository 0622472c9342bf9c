"""The monitors of a coverage run (`make coverage`): which FSM states and state changes the
chip went through, which host command got which response, and which (tile, ADC group) the
chip converted.

Enabled only when the runner sets $XBARFLOW_FSM_SAMPLES (`xbarflow.flow.sim.runner`, coverage
builds): `CoverageMonitor.from_env` returns None otherwise and the benches run unchanged.

FSM sampling: one coroutine per FSM named in the Verilog sidecar waits for its state register
to change value (the state registers change only on a clock edge, so each change is one
(state, next state) pair of consecutive clocks; clocks that stay in a state are not pairs of
interest: legal transitions exclude self-loops). This costs a Python wake-up per state change
instead of one per clock. Exchanges: the host transport is wrapped, and each request's command
byte is recorded with the response's status and NACK code (as the chip sent them). ADC
groups: at every rising ``adc_start`` the ``tile_sel`` and ``adc_col_sel`` the chip drives
(group 0 on a chip with one ADC per output).
`write()` puts both into the samples file; `xbarflow.flow.analysis.coverage` reads it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from xbarflow.flow.sim.schema import FSM_SAMPLES_ENV
from xbarflow.hdl.protocol import Cmd, Error, Status

from .watchdog import Watchdog

__all__ = ["CoverageMonitor", "RecordingTransport", "exchange_key"]


def exchange_key(request: bytes, response: bytes) -> str:
    """'READ_REG ACK' / 'START NACK BUSY' / 'UNKNOWN NACK BAD_CMD' for one exchange."""
    cmd = request[1] if len(request) > 1 else -1
    name = Cmd(cmd).name if cmd in Cmd._value2member_map_ else "UNKNOWN"
    if len(response) > 1 and response[1] == Status.ACK:
        return f"{name} ACK"
    code = response[3] if len(response) > 4 else -1
    err = Error(code).name if code in Error._value2member_map_ else f"0x{code & 0xff:02x}"
    return f"{name} NACK {err}"


class RecordingTransport:
    """A host transport that counts `exchange_key` of every exchange; everything else is the
    wrapped transport's."""

    def __init__(self, inner, counts: dict[str, int]):
        self.inner, self.counts = inner, counts

    async def exchange(self, request: bytes) -> bytes:
        response = await self.inner.exchange(request)
        key = exchange_key(request, response)
        self.counts[key] = self.counts.get(key, 0) + 1
        return response

    def __getattr__(self, name):
        return getattr(self.inner, name)


class CoverageMonitor:
    """FSM, exchange and ADC-group samples of one coverage run, written to `path`."""

    def __init__(self, dut, sidecar: str | Path, path: str | Path):
        self.path = Path(path)
        meta = json.loads(Path(sidecar).read_text())
        self.watchdog = Watchdog(dut, meta.get("fsms", {}), 1.0)
        self.states: dict[str, dict[str, int]] = {}
        self.transitions: dict[str, dict[str, int]] = {}
        self.exchanges: dict[str, int] = {}
        self.adc_groups: dict[str, int] = {}   # 'tile:group' -> conversions
        self.hidden: list[str] = []
        self.dut = dut

    @classmethod
    def from_env(cls, dut, sidecar: str | Path) -> "CoverageMonitor | None":
        path = os.environ.get(FSM_SAMPLES_ENV)
        return cls(dut, sidecar, path) if path else None

    def start(self) -> None:
        """Start one sampler per FSM (after reset: the reset state is the first visit)."""
        for path, names in self.watchdog.fsms.items():
            handle = self.watchdog.resolve(path)
            if handle is None:
                self.hidden.append(path)
                continue
            cocotb.start_soon(self._sample(path, names, handle))
        cocotb.start_soon(self._sample_adc())

    async def _sample_adc(self) -> None:
        dut = self.dut
        shared = hasattr(dut, "adc_col_sel")
        while True:
            await RisingEdge(dut.adc_start)
            await ReadOnly()   # tile_sel / adc_col_sel settle in the same time step
            key = f"{int(dut.tile_sel.value)}:{int(dut.adc_col_sel.value) if shared else 0}"
            self.adc_groups[key] = self.adc_groups.get(key, 0) + 1

    async def _sample(self, path: str, names: dict[str, str], handle) -> None:
        states = self.states.setdefault(path, {})
        moves = self.transitions.setdefault(path, {})

        def name(value) -> str:
            try:
                return names.get(str(int(value)), f"undefined {int(value)}")
            except ValueError:
                return "X"

        current = name(handle.value)
        states[current] = states.get(current, 0) + 1
        while True:
            await handle.value_change
            new = name(handle.value)
            if new == current:
                continue
            states[new] = states.get(new, 0) + 1
            key = f"{current}->{new}"
            moves[key] = moves.get(key, 0) + 1
            current = new

    def wrap(self, transport) -> RecordingTransport:
        return RecordingTransport(transport, self.exchanges)

    def write(self, extra: dict | None = None) -> None:
        doc = {"states": self.states, "transitions": self.transitions,
               "exchanges": self.exchanges, "adc_groups": self.adc_groups, "hidden": self.hidden,
               **(extra or {})}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
        os.replace(tmp, self.path)
