"""The waveform reader: VCD or FST through pywellen (the Rust `wellen` reader), per signal on demand.

Works on what `xbarflow.flow.sim.runner.run(..., waves=...)` writes: VCD from Icarus or
Verilator, FST from Verilator. The format is found from the file's content. Signal names:
scopes are dot-separated and Icarus' escape backslashes and the ``[msb:lsb]`` suffixes are
dropped (``xbarflow_top.controller.ctrl_state``). A pattern is an fnmatch glob; one that does not
start with the top module's name is taken relative to it, so ``vmm_*`` and
``controller.ctrl_state`` both work. Verilator's duplicate ``$rootio`` scope is hidden.

Values are kept as VCD writes them at their shortest: binary digits without leading zeros
(``101``), ``x`` / ``z`` (one letter when every bit is unknown). Only the signals an action needs
are decoded; the header alone is read for ``--list`` and the summary. The hand-written VCD
scanner this replaces is `xbarflow.flow.analysis.waves.scan`, kept as `make bench`'s baseline.
"""

from __future__ import annotations

import bisect
import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pywellen

from .errors import WavesError

__all__ = ["SignalInfo", "Trace", "Vcd", "clean_name", "shortest", "to_int", "top_scope"]

_RANGE = re.compile(r"\[(\d+):(\d+)\]$")
_UNITS = {"fs": 1e-15, "ps": 1e-12, "ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


@dataclass(frozen=True)
class SignalInfo:
    name: str        # cleaned dotted name, e.g. xbarflow_top.controller.ctrl_state
    reference: str   # the name as the file declares it (scopes, escapes)
    width: int
    ident: str       # the VCD identifier code ("" where the reader does not need it)


@dataclass
class Trace:
    """Value changes of one signal: parallel lists of times (file ticks) and raw values."""
    info: SignalInfo
    times: list[int]
    values: list[str]

    @property
    def name(self) -> str:
        return self.info.name

    def _index(self, t: int, before: bool) -> int:
        return (bisect.bisect_left if before else bisect.bisect_right)(self.times, t) - 1

    def raw_at(self, t: int, before: bool = False) -> str:
        """Raw value at time t (after the changes at t; strictly before t with before=True)."""
        i = self._index(t, before)
        return self.values[i] if i >= 0 else "x"

    def at(self, t: int, before: bool = False) -> int | None:
        """Integer value at t, None while any bit is x or z."""
        return to_int(self.raw_at(t, before))

    def changes(self, start: int, end: int) -> list[int]:
        """Change times in [start, end]."""
        return self.times[bisect.bisect_left(self.times, start):bisect.bisect_right(self.times, end)]

    def rising_edges(self) -> list[int]:
        return [t for k, (t, v) in enumerate(zip(self.times, self.values))
                if v == "1" and k > 0 and self.values[k - 1] == "0"]

    def falling_edges(self) -> list[int]:
        return [t for k, (t, v) in enumerate(zip(self.times, self.values))
                if v == "0" and k > 0 and self.values[k - 1] == "1"]


def to_int(raw: str) -> int | None:
    """A raw VCD value ('0101') as an integer; None while any bit is x or z."""
    if raw and all(c in "01" for c in raw):
        return int(raw, 2)
    return None


def shortest(bits: str) -> str:
    """A bit string as VCD writes it at its shortest: the left-most bit extends to the left
    (0 for a leading 1), so '00101' -> '101', 'xxxx' -> 'x', '00x1' -> '0x1'."""
    bits = bits.lower()
    k = 0
    while k + 1 < len(bits) and bits[k] in "0xz" and bits[k] == bits[k + 1]:
        k += 1
    bits = bits[k:]
    return bits[1:] if len(bits) > 1 and bits[0] == "0" and bits[1] == "1" else bits


def clean_name(reference: str) -> str:
    """Declared name -> dotted name without escapes and bit range; an array element that the
    reader puts in a scope of its own (``storage.[3]``) keeps its index on the name (``storage[3]``)."""
    parts = [p[1:] if p.startswith("\\") else p for p in reference.split(".")]
    parts[-1] = _RANGE.sub("", parts[-1])
    return ".".join(parts).replace(".[", "[")


def top_scope(names: Iterable[str]) -> str:
    """The scope most signal names start with (the design's top), "" when none is scoped."""
    scopes = [n.split(".")[0] for n in names if "." in n]
    return max(set(scopes), key=scopes.count) if scopes else ""


def _raw(value) -> str:
    """pywellen's value (an int, or a string of 0/1/x/z digits) -> the shortest raw string."""
    if isinstance(value, int):
        return format(value, "b")
    return shortest(str(value))


class Vcd:
    """A VCD or FST file: header read at once, value changes decoded per signal on demand."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        kind = "an FST" if self.path.suffix.lower() == ".fst" else "a VCD"
        if not self.path.is_file():
            raise WavesError(f"{kind[kind.index(' ') + 1:]} file not found: {self.path}")
        try:
            wave = pywellen.Waveform(str(self.path))
            variables = list(wave.all_vars())
            timescale = wave.timescale
        except (OSError, RuntimeError, ValueError) as exc:
            raise WavesError(f"{self.path}: not {kind} file ({' '.join(str(exc).split())})") from None
        if timescale is None:
            raise WavesError(f"{self.path}: not {kind} file (no timescale)")
        self.format = str(wave.file_format).lower()
        self.timescale_s = float(timescale.factor) * 10.0 ** timescale.unit.to_exponent()
        self._wave = wave
        self._vars: dict[str, object] = {}
        self.signals: dict[str, SignalInfo] = {}
        for var in variables:
            ref = var.full_name
            if ref.startswith("$rootio.") or ref.startswith("TOP.$rootio"):
                continue  # Verilator's copy of the top-level ports
            name = clean_name(ref[4:] if ref.startswith("TOP.") else ref)
            if name not in self.signals:
                self.signals[name] = SignalInfo(name, ref, int(var.bitwidth or 1), "")
                self._vars[name] = var
        if not self.signals:
            raise WavesError(f"{self.path}: no signals declared")
        self.top = top_scope(self.signals)
        self._cache: dict[str, Trace] = {}
        self.end_time: int | None = None

    # names ------------------------------------------------------------------------------------
    def match(self, pattern: str) -> list[str]:
        """Signal names matching a glob (absolute, or relative to the top module)."""
        pats = [pattern]
        if self.top and not pattern.startswith(self.top + ".") and pattern != self.top:
            pats.append(f"{self.top}.{pattern}")
        found = self._glob(pats, pattern)
        if not found:      # e.g. a leaf name, or a path inside a harness around the chip
            found = self._glob([f"*.{pattern}"], pattern)
        seen: dict[str, None] = {}
        for n in found:
            seen.setdefault(n, None)
        return list(seen)

    def _glob(self, pats: list[str], pattern: str) -> list[str]:
        found = []
        for pat in pats:
            if pat in self.signals:
                found.append(pat)
                continue
            # Yosys temporaries ($12, $auto$...) only when the pattern asks for a '$'.
            found += [n for n in self.signals if fnmatch.fnmatchcase(n, pat)
                      and ("$" not in n or "$" in pattern)]
        return found

    def resolve(self, patterns: Iterable[str]) -> list[str]:
        names: dict[str, None] = {}
        for pat in patterns:
            hits = self.match(pat)
            if not hits:
                raise WavesError(f"no signal matches '{pat}' in {self.path.name} "
                                 f"(try --list; names are relative to '{self.top}')")
            for h in hits:
                names.setdefault(h, None)
        return list(names)

    def one(self, pattern: str) -> str | None:
        hits = self.match(pattern)
        return hits[0] if len(hits) == 1 else None

    def short(self, name: str) -> str:
        return name[len(self.top) + 1:] if self.top and name.startswith(self.top + ".") else name

    # values -----------------------------------------------------------------------------------
    def load(self, names: Iterable[str]) -> dict[str, Trace]:
        """Traces of the named signals (each decoded once, then cached)."""
        names = list(dict.fromkeys(names))
        for n in names:
            if n in self._cache:
                continue
            changes = list(self._vars[n].signal)
            times = [int(t) for t, _ in changes]
            values = [_raw(v) for _, v in changes]
            self._cache[n] = Trace(self.signals[n], times, values)
            if times:
                self.end_time = max(self.end_time or 0, times[-1])
        return {n: self._cache[n] for n in names}

    def uncached(self) -> "Vcd":
        """A fresh view of the same file (no decoded traces)."""
        other = object.__new__(Vcd)
        other.__dict__.update(self.__dict__, _cache={})
        return other

    def trace(self, name: str) -> Trace:
        return self.load([name])[name]

    # time -------------------------------------------------------------------------------------
    def ticks(self, text: str) -> int:
        """'85.8us', '1200 ns', '42' (file ticks) -> file ticks."""
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*([a-z]*)\s*", text)
        if not m or (m.group(2) and m.group(2) not in _UNITS):
            raise WavesError(f"bad time '{text}': use a number with an optional unit "
                             f"({', '.join(_UNITS)}); a bare number is in VCD ticks")
        value = float(m.group(1))
        if not m.group(2):
            return int(round(value))
        return int(round(value * _UNITS[m.group(2)] / self.timescale_s))

    def fmt_time(self, t: int) -> str:
        return f"{t * self.timescale_s * 1e9:,.3f} ns"
