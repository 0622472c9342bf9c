"""Verilog generation: the Amaranth top level for a `ChipConfig`, plus a JSON sidecar.

The sidecar records what the benches and the waveform tools need without parsing Verilog:
the port map (direction, width), the FSM state encodings by name, each FSM's legal
transitions (from the Amaranth FSM itself: every `m.next` in each state's body), and the
config digest.
Output is deterministic (no source attributes), so two runs give identical files.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog as amaranth_verilog
from amaranth.hdl import Fragment, Shape, Value, ValueCastable
from amaranth.hdl._ast import Assign, Const, Switch  # the FSM's lowered statements (amaranth 0.5.10)
from amaranth.hdl._ir import PortDirection  # amaranth's own convert() builds ports with it
from amaranth.lib import wiring

from xbarflow.hdl.top import TOP_NAME, Top

from ..core.config import ChipConfig

__all__ = ["GeneratedRTL", "fsm_encodings", "fsm_transitions", "generate", "prepared_design"]


@dataclass(frozen=True)
class GeneratedRTL:
    verilog: Path
    sidecar: Path
    top: str
    seconds: float


def _ports(top: wiring.Component) -> list[dict]:
    ports = [{"name": "clk", "dir": "in", "width": 1}, {"name": "rst", "dir": "in", "width": 1}]
    for name, member in top.signature.members.items():
        ports.append({
            "name": name,
            "dir": "in" if member.flow == wiring.In else "out",
            "width": Shape.cast(member.shape).width,
        })
    return ports


def prepared_design(top: wiring.Component, top_name: str):
    """`top` elaborated and prepared once, with its signature's ports, as
    `amaranth.back.verilog.convert` would do it (uses amaranth's internal Design object,
    pinned with amaranth 0.5.10): the Verilog and the sidecar's FSM table both come from it."""
    ports = {}
    for path, member, value in top.signature.flatten(top):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if isinstance(value, Value):
            flow = PortDirection.Input if member.flow == wiring.In else PortDirection.Output
            ports["__".join(map(str, path))] = (value, flow)
    return Fragment.get(top, None).prepare(ports=ports, hierarchy=(top_name,))


def fsm_encodings(design, top_name: str) -> dict[str, dict[str, str]]:
    """Every FSM state register in the prepared `design` -> {code: state name}.

    Amaranth gives each `m.FSM` state signal a decoder "NAME/code"; reading those from the
    design the Verilog is written from keeps the sidecar true to the Verilog.
    """
    found: dict[str, dict[str, str]] = {}
    for info in design.fragments.values():
        for signal, name in info.signal_names.items():
            if not name.endswith("_state") or signal.decoder is None:
                continue
            states = {}
            for code in range(1 << len(signal)):
                try:
                    states[str(code)] = signal.decoder(code).split("/")[0]
                except KeyError:
                    break
            path = ".".join((top_name, *info.name[1:], name))
            found[path] = states
    return dict(sorted(found.items()))


def _next_codes(statements, state) -> set[int]:
    """Every constant assigned to `state` anywhere in `statements` (nested If/Switch bodies)."""
    found: set[int] = set()
    for stmt in statements:
        if isinstance(stmt, Assign) and stmt.lhs is state and isinstance(stmt.rhs, Const):
            found.add(stmt.rhs.value)
        elif isinstance(stmt, Switch):
            for _patterns, body, _src in stmt.cases:
                found |= _next_codes(body, state)
    return found


def fsm_transitions(design, top_name: str) -> dict[str, list[list[str]]]:
    """Every FSM state register in the prepared `design` -> its legal transitions
    [[from state, to state], ...], self-loops (staying) left out.

    Amaranth lowers `m.FSM` into a Switch on the state register in the sync domain whose
    case for each state holds the `m.next = ...` of that state's body as constant assignments
    to the register: those are the transitions, whatever the conditions guarding them."""
    found: dict[str, list[list[str]]] = {}
    for fragment, info in design.fragments.items():
        for signal, name in info.signal_names.items():
            if not name.endswith("_state") or signal.decoder is None:
                continue
            pairs: set[tuple[str, str]] = set()
            for statements in fragment.statements.values():
                for stmt in statements:
                    if not (isinstance(stmt, Switch) and stmt.test is signal):
                        continue
                    for patterns, body, _src in stmt.cases:
                        for pattern in patterns or ():
                            source = signal.decoder(int(pattern, 2)).split("/")[0]
                            for code in _next_codes(body, signal):
                                target = signal.decoder(code).split("/")[0]
                                if target != source:
                                    pairs.add((source, target))
            found[".".join((top_name, *info.name[1:], name))] = [list(p) for p in sorted(pairs)]
    return dict(sorted(found.items()))


def generate(cfg: ChipConfig, out_dir: str | Path) -> GeneratedRTL:
    """Write `<top>.v` and `<top>.json` into `out_dir` and return their paths."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create output folder {out}: {exc.strerror}") from None
    t0 = time.perf_counter()
    top = Top(cfg)
    # Elaborate once: the same prepared design gives the Verilog and the FSM encodings.
    design = prepared_design(top, TOP_NAME)
    text, _ = amaranth_verilog.convert_fragment(design, name=TOP_NAME, emit_src=False)
    v_path = out / f"{TOP_NAME}.v"
    v_path.write_text(text)
    sidecar = {
        "top": TOP_NAME,
        "config_name": cfg.name,
        "config_digest": cfg.digest(),
        "clock": {"port": "clk", "freq_hz": cfg.clock.freq_hz},
        "reset": {"port": "rst", "active": "high", "sync": True},
        "ports": _ports(top),
        "boundary": {
            "rows": cfg.rows, "outputs": cfg.outputs, "dac_bits": cfg.quant.dac_bits,
            "adc_bits": cfg.adc.bits, "dac_codes": "code i at bits [i*dac_bits, (i+1)*dac_bits)",
            "adc_codes": "signed code k at bits [k*adc_bits, (k+1)*adc_bits)",
        },
        # Hierarchical name of each FSM state register -> {encoding: state name}, taken from
        # the elaborated design itself so it cannot drift from the Verilog.
        "fsms": fsm_encodings(design, TOP_NAME),
        # The same registers -> [[from, to], ...]: the legal state changes (coverage reads them).
        "fsm_transitions": fsm_transitions(design, TOP_NAME),
    }
    j_path = out / f"{TOP_NAME}.json"
    j_path.write_text(json.dumps(sidecar, indent=2) + "\n")
    return GeneratedRTL(v_path, j_path, TOP_NAME, time.perf_counter() - t0)
