"""The VCD reader: signal names from the header, value changes per signal on demand.

Works on the VCDs that `xbarflow.flow.sim.runner.run(..., waves=True)` writes (Icarus or Verilator). Signal
names: scopes are dot-separated and Icarus' escape backslashes and the ``[msb:lsb]`` suffixes are
dropped (``xbarflow_top.controller.ctrl_state``). A pattern is an fnmatch glob; one that does not
start with the top module's name is taken relative to it, so ``vmm_*`` and
``controller.ctrl_state`` both work. Verilator's duplicate ``$rootio`` scope is hidden.

Speed: only the signals an action needs are loaded (vcdvcd's signal list); the header alone is
read for ``--list`` and the summary. The default loader finds the wanted value changes with one
compiled regex over the value-change section. Measured figures are in the README.
"""

from __future__ import annotations

import bisect
import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import vcdvcd

from .errors import WavesError

__all__ = ["SignalInfo", "Trace", "Vcd", "clean_name", "to_int"]

_RANGE = re.compile(r"\[(\d+):(\d+)\]$")
_UNITS = {"fs": 1e-15, "ps": 1e-12, "ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


@dataclass(frozen=True)
class SignalInfo:
    name: str        # cleaned dotted name, e.g. xbarflow_top.controller.ctrl_state
    reference: str   # vcdvcd's reference (what its signal list wants)
    width: int
    ident: str       # the VCD identifier code


@dataclass
class Trace:
    """Value changes of one signal: parallel lists of times (VCD ticks) and raw values."""
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


def clean_name(reference: str) -> str:
    """vcdvcd reference -> dotted name without escapes and bit range."""
    parts = [p[1:] if p.startswith("\\") else p for p in reference.split(".")]
    parts[-1] = _RANGE.sub("", parts[-1])
    return ".".join(parts)


class Vcd:
    """A VCD file: header read at once, value changes loaded per signal on demand."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise WavesError(f"VCD file not found: {self.path}")
        try:
            head = vcdvcd.VCDVCD(str(self.path), only_sigs=True)
        except (OSError, UnicodeDecodeError, ValueError, IndexError, KeyError) as exc:
            raise WavesError(f"{self.path}: not a readable VCD ({' '.join(str(exc).split())})") from None
        if not head.references_to_ids or not head.timescale:
            raise WavesError(f"{self.path}: not a VCD file (no $timescale or no $var declarations)")
        self.timescale_s = float(head.timescale["timescale"])
        self.signals: dict[str, SignalInfo] = {}
        for ref in head.signals:
            if ref.startswith("$rootio.") or ref.startswith("TOP.$rootio"):
                continue  # Verilator's copy of the top-level ports
            ident = head.references_to_ids[ref]
            name = clean_name(ref[4:] if ref.startswith("TOP.") else ref)
            if name not in self.signals:
                self.signals[name] = SignalInfo(name, ref, int(head.data[ident].size), ident)
        if not self.signals:
            raise WavesError(f"{self.path}: no signals declared")
        scopes = [n.split(".")[0] for n in self.signals if "." in n]
        self.top = max(set(scopes), key=scopes.count) if scopes else ""
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
    def load(self, names: Iterable[str], engine: str = "scan") -> dict[str, Trace]:
        """Traces of the named signals; one pass over the file for all those not cached.

        engine "scan" (default) finds the wanted value changes with one compiled regex over the
        value-change section (C speed: ~1 s for an 80 MB Icarus VCD); "vcdvcd" uses vcdvcd's
        line-by-line parser with a signal list (same result, ~7x slower; tests compare them).
        """
        names = list(dict.fromkeys(names))
        missing = [n for n in names if n not in self._cache]
        if missing and engine == "scan":
            found = _scan(self.path, {self.signals[n].ident for n in missing})
            self.end_time = found.pop(None)[0][0]
            for n in missing:
                times, values = found.get(self.signals[n].ident, ([], []))
                self._cache[n] = Trace(self.signals[n], times, values)
        elif missing:
            refs = [self.signals[n].reference for n in missing]
            data = vcdvcd.VCDVCD(str(self.path), signals=refs)
            self.end_time = int(data.endtime)
            for n in missing:
                sig = data[self.signals[n].reference]
                times = [int(t) for t, _ in sig.tv]
                values = [v for _, v in sig.tv]
                self._cache[n] = Trace(self.signals[n], times, values)
        return {n: self._cache[n] for n in names}

    def uncached(self) -> "Vcd":
        """A fresh view of the same file (no loaded traces), e.g. to compare loaders."""
        other = object.__new__(Vcd)
        other.__dict__.update(self.__dict__, _cache={})
        return other

    def trace(self, name: str) -> Trace:
        return self.load([name])[name]

    # time -------------------------------------------------------------------------------------
    def ticks(self, text: str) -> int:
        """'85.8us', '1200 ns', '42' (VCD ticks) -> VCD ticks."""
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


def _scan(path: Path, idents: set[str]) -> dict:
    """{ident: (times, values)} of the wanted identifiers, plus {None: ([end time], [])}.

    Time stamps: numpy finds the lines that start with '#' (their offsets), one findall their
    numbers. Values: one compiled regex finds the value lines of the wanted identifiers; each
    gets the last time stamp before its offset. Everything per line runs in C.
    """
    data = path.read_bytes()
    body = max(data.find(b"$enddefinitions"), 0)
    raw = np.frombuffer(data, dtype=np.uint8)
    hashes = np.flatnonzero(raw[body + 1:] == ord("#")) + body + 1
    offsets = hashes[raw[hashes - 1] == 10] - 1       # the newline before each '#<time>'

    numbers = re.compile(rb"\n#(\d+)").findall(data, body)
    if len(numbers) != len(offsets):
        raise WavesError(f"{path}: malformed time stamps in the value-change section")
    times = np.array(numbers, dtype="S").astype(np.int64).tolist() if numbers else [0]
    out: dict = {None: ([times[-1]], [])}
    if not idents:
        return out
    alt = b"|".join(re.escape(i.encode()) for i in sorted(idents, key=len, reverse=True))
    pat = re.compile(rb"\n(?:[bB]([01xzXZ]+) |([01xzXZ]))(" + alt + rb")(?=[ \t]*\r?(?:\n|\Z))")
    hits = [(m.start(), m.group(3), m.group(1) or m.group(2)) for m in pat.finditer(data, body)]
    slots = np.searchsorted(offsets, np.array([h[0] for h in hits], dtype=np.int64), side="right") - 1
    for (_, ident, value), k in zip(hits, slots.tolist()):
        t_list, v_list = out.setdefault(ident.decode(), ([], []))
        t_list.append(times[k] if k >= 0 else 0)
        v_list.append(value.decode().lower())
    return out
