"""Waveform debugging for co-simulation VCDs: `xbarflow waves FILE.vcd ...`.

What it does, all on the VCD that `flow.sim.run(..., waves=True)` writes (Icarus or Verilator):

* ``--list``: the signal hierarchy (scopes, widths, FSM registers marked);
* ``-s PATTERN ...``: a table of the selected signals over a time window (``--start/--end``,
  with units fs/ps/ns/us/ms/s) or a cycle window (``--cycles A:B``, rising clock edges), one row
  per change (or per clock cycle with ``--every-cycle``); FSM registers show their state names;
* ``--fsm``: every FSM's state sequence by name;
* ``--spi`` / ``--uart``: the host traffic decoded into bytes and command-layer frames (SYNC CMD
  ADDR LEN payload CRC requests, SYNC STATUS LEN payload CRC responses) with their CRC status,
  using `hdl.protocol` (SPI mode 0, MSB first, sampled at rising SCLK while CS is low; UART 8N1
  on ``uart_rx``/``uart_tx`` with ``host.uart_divider`` clocks per bit, when those pins exist);
* ``--when EXPR``: when a condition over signal values first holds in the window (``--all``:
  every interval); EXPR uses ``== != < > <= >=``, ``and``, ``or``, ``not``, parentheses,
  integers (``12``, ``0x1f``, ``0b101``) and FSM state names (``ctrl_state == DRIVE``);
* ``--gtkw OUT.gtkw``: a GTKWave save file with the signals grouped (host, command layer,
  controller, analog boundary), plus one translate-filter file per FSM so GTKWave shows state
  names.

Signal names: scopes are dot-separated and Icarus' escape backslashes and the ``[msb:lsb]``
suffixes are dropped (``xbarflow_top.controller.ctrl_state``). A pattern is an fnmatch glob; one
that does not start with the top module's name is taken relative to it, so ``vmm_*`` and
``controller.ctrl_state`` both work. Verilator's duplicate ``$rootio`` scope is hidden.

Which sidecar (FSM encodings, ports, clock) is used: ``--sidecar PATH`` when given; else
``xbarflow_top.json`` next to the VCD; else ``rtl/xbarflow_top.json`` next to the VCD; else the
sidecar named by the ``job.json`` that `flow.sim.run` writes into the run folder next to the VCD
(it points at the build folder the VCD came from). Without one, FSM registers show raw codes.
The config (for the UART divider) is ``--config`` if given, else the one in that ``job.json``,
else configs/slp.toml.

Speed: only the signals an action needs are loaded (vcdvcd's signal list); the header alone is
read for ``--list`` and the summary. Measured figures are in the README.
"""

from __future__ import annotations

import bisect
import fnmatch
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

SIDECAR_SUFFIX = ".json"          # <top>.json, written by flow.verilog.generate
_RANGE = re.compile(r"\[(\d+):(\d+)\]$")
_UNITS = {"fs": 1e-15, "ps": 1e-12, "ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
_DEFAULT_MAX_ROWS = 200

#: GTKWave groups: name -> globs (relative to the top) of the signals that go in it, in order.
GTKW_GROUPS: dict[str, tuple[str, ...]] = {
    "host": ("clk", "rst", "spi_cs_n", "spi_sclk", "spi_mosi", "spi_miso", "uart_rx",
             "uart_tx", "irq"),
    "command layer": ("command.parser_state", "command.cmd", "command.addr", "command.len",
                      "command.reg_addr", "command.reg_we", "command.reg_wdata",
                      "command.buf_addr", "command.buf_we", "command.buf_wdata", "command.busy",
                      "command.start", "command.frames_ok", "command.err_*"),
    "controller": ("controller.ctrl_state", "controller.busy", "controller.done",
                   "controller.start", "controller.argmax.argmax_state", "controller.result",
                   "controller.cycles_*", "controller.inferences"),
    "analog boundary": ("tile_sel", "dac_codes", "vmm_start", "vmm_done", "adc_start",
                        "adc_codes", "adc_valid", "adc_col_sel", "prog_*", "verify_*"),
}


class WavesError(ValueError):
    """A VCD, pattern or expression that cannot be used; one line for the user."""


# -- the VCD -------------------------------------------------------------------------------------

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
        import vcdvcd

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
            import vcdvcd

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
    import numpy as np

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


# -- sidecar and config --------------------------------------------------------------------------

def _top_name() -> str:
    from hdl.top import TOP_NAME
    return TOP_NAME


def find_sidecar(vcd_path: Path, explicit: Path | None = None) -> Path | None:
    """The sidecar rule of the module docstring."""
    if explicit is not None:
        if not explicit.is_file():
            raise WavesError(f"sidecar not found: {explicit}")
        return explicit
    folder = vcd_path.resolve().parent
    name = _top_name() + SIDECAR_SUFFIX
    for cand in (folder / name, folder / "rtl" / name):
        if cand.is_file():
            return cand
    job = _job(folder)
    if job and job.get("sidecar") and Path(job["sidecar"]).is_file():
        return Path(job["sidecar"])
    return None


def _job(folder: Path) -> dict | None:
    p = folder / "job.json"
    try:
        return json.loads(p.read_text()) if p.is_file() else None
    except (OSError, ValueError):
        return None


def load_sidecar(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise WavesError(f"{path}: not a readable sidecar ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict) or not isinstance(data.get("fsms", {}), dict):
        raise WavesError(f"{path}: not an xbarflow sidecar (no 'fsms' table)")
    return data


def find_config(vcd_path: Path, explicit: Path | None = None):
    from . import config as config_mod

    try:
        if explicit is not None:
            return config_mod.load(explicit)
        job = _job(vcd_path.resolve().parent)
        if job and isinstance(job.get("config"), dict):
            return config_mod.from_dict(job["config"], source="job.json")
        return config_mod.load()
    except config_mod.ConfigError as exc:
        raise WavesError(str(exc)) from None


# -- the session: a VCD plus what the sidecar says about it --------------------------------------

class Waves:
    """A VCD with its sidecar's FSM encodings and ports; the CLI's actions are methods here."""

    def __init__(self, vcd_path: str | Path, sidecar: str | Path | None = None,
                 config_path: str | Path | None = None):
        self.vcd = Vcd(vcd_path)
        self.sidecar_path = find_sidecar(self.vcd.path, Path(sidecar) if sidecar else None)
        self.sidecar = load_sidecar(self.sidecar_path)
        self._config_path = Path(config_path) if config_path else None
        self._cfg = None
        # FSM register (cleaned VCD name) -> {code: state name}. The sidecar names them from
        # the chip's top; the VCD may wrap the chip in a harness, so match by path suffix.
        self.fsms: dict[str, dict[int, str]] = {}
        prefixes = []
        for path, states in self.sidecar.get("fsms", {}).items():
            rel = path.split(".", 1)[1] if "." in path else path
            hits = [n for n in self.vcd.signals if n == path or n.endswith("." + rel)]
            if len(hits) == 1:
                self.fsms[hits[0]] = {int(k): v for k, v in states.items()}
                prefixes.append(hits[0][:-len(rel) - 1])
        #: the chip's own scope (its pins are what the host link decoders read)
        self.chip = max(set(prefixes), key=prefixes.count) if prefixes else self.vcd.top

    @property
    def cfg(self):
        if self._cfg is None:
            self._cfg = find_config(self.vcd.path, self._config_path)
        return self._cfg

    # clock ------------------------------------------------------------------------------------
    def pin(self, port: str) -> str | None:
        """The chip's port `port` (inside a harness if there is one), or None."""
        name = f"{self.chip}.{port}" if self.chip else port
        return name if name in self.vcd.signals else self.vcd.one(port)

    @property
    def clock_name(self) -> str | None:
        return self.pin(self.sidecar.get("clock", {}).get("port", "clk"))

    def clock_edges(self) -> list[int]:
        name = self.clock_name
        if name is None:
            raise WavesError("no clock signal in the VCD: cycle windows need one")
        return self.vcd.trace(name).rising_edges()

    def clock_period(self) -> int:
        """Clock period in VCD ticks: from the clock's edges, else the sidecar's frequency."""
        if self.clock_name is not None:
            edges = self.clock_edges()
            if len(edges) >= 2:
                diffs = sorted(b - a for a, b in zip(edges, edges[1:]))
                return diffs[len(diffs) // 2]
        freq = self.sidecar.get("clock", {}).get("freq_hz") or self.cfg.clock.freq_hz
        return int(round(1.0 / freq / self.vcd.timescale_s))

    def cycle_of(self, t: int, edges: list[int]) -> int:
        """Cycle index at time t: rising edges at or before t, minus one (first edge: cycle 0)."""
        return bisect.bisect_right(edges, t) - 1

    def window(self, start: str | None = None, end: str | None = None,
               cycles: str | None = None) -> tuple[int, int]:
        """(start, end) in VCD ticks from time strings or an 'A:B' cycle range."""
        if cycles is not None:
            if start is not None or end is not None:
                raise WavesError("give either --cycles or --start/--end, not both")
            m = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*", cycles)
            if not m:
                raise WavesError(f"bad cycle range '{cycles}': use A:B, A: or :B (clock cycles)")
            edges = self.clock_edges()
            if not edges:
                raise WavesError("the clock never rises in this VCD")
            a = int(m.group(1)) if m.group(1) else 0
            b = int(m.group(2)) if m.group(2) else len(edges) - 1
            if a >= len(edges) or a > b:
                raise WavesError(f"cycle range {a}:{b} is outside 0:{len(edges) - 1}")
            return edges[a], edges[min(b, len(edges) - 1)]
        t0 = self.vcd.ticks(start) if start is not None else 0
        t1 = self.vcd.ticks(end) if end is not None else 1 << 62
        if t1 < t0:
            raise WavesError(f"window ends ({end}) before it starts ({start})")
        return t0, t1

    # values -----------------------------------------------------------------------------------
    def fmt_value(self, name: str, raw: str, wide: bool = False) -> str:
        width = self.vcd.signals[name].width
        value = to_int(raw)
        if value is None:
            return raw if len(raw) <= 8 or wide else raw[:8] + "…"
        if name in self.fsms:
            return self.fsms[name].get(value, f"?{value}")
        if width == 1:
            return str(value)
        text = f"0x{value:0{(width + 3) // 4}x}"
        return text if wide or len(text) <= 24 else text[:23] + "…"

    def table(self, patterns: list[str], start: int, end: int, *, every_cycle: bool = False,
              max_rows: int = _DEFAULT_MAX_ROWS, wide: bool = False) -> list[str]:
        names = self.vcd.resolve(patterns)
        clock = self.clock_name
        traces = self.vcd.load(names + ([clock] if clock else []))
        edges = traces[clock].rising_edges() if clock else []
        if every_cycle:
            if not clock:
                raise WavesError("--every-cycle needs a clock signal in the VCD")
            times = edges[bisect.bisect_left(edges, start):bisect.bisect_right(edges, end)]
        else:
            times = sorted({start if start > 0 else 0,
                            *(t for n in names for t in traces[n].changes(start, end))})
            times = [t for t in times if start <= t <= end]
        header = ["time", "cycle"] + [self.vcd.short(n) for n in names]
        rows = []
        for t in times[:max_rows]:
            # At a clock edge a flop samples the value just before it.
            rows.append([self.vcd.fmt_time(t), str(self.cycle_of(t, edges)) if edges else "-"]
                        + [self.fmt_value(n, traces[n].raw_at(t, before=every_cycle), wide)
                           for n in names])
        out = _columns(header, rows)
        if len(times) > max_rows:
            out.append(f"... {len(times) - max_rows} more rows (raise --max-rows or narrow the window)")
        if not times:
            out.append("(no changes in the window)")
        return out

    def hierarchy(self, patterns: list[str] | None = None) -> list[str]:
        names = (self.vcd.resolve(patterns) if patterns
                 else [n for n in self.vcd.signals if "$" not in n])
        lines, last_scope = [], None
        for n in sorted(names, key=lambda s: (s.rsplit(".", 1)[0] if "." in s else "", s)):
            scope, _, leaf = n.rpartition(".")
            if scope != last_scope:
                lines.append(f"{scope or '(root)'}")
                last_scope = scope
            width = self.vcd.signals[n].width
            tag = f"  FSM: {', '.join(self.fsms[n].values())}" if n in self.fsms else ""
            lines.append(f"  {leaf}{f' [{width - 1}:0]' if width > 1 else ''}{tag}")
        return lines

    def fsm_timeline(self, start: int, end: int, max_rows: int = _DEFAULT_MAX_ROWS) -> list[str]:
        if not self.fsms:
            return ["no FSM encodings: " + ("the sidecar names no FSM in this VCD"
                                            if self.sidecar else "no sidecar found (use --sidecar)")]
        clock = self.clock_name
        traces = self.vcd.load(list(self.fsms) + ([clock] if clock else []))
        edges = traces[clock].rising_edges() if clock else []
        events = []
        for name in self.fsms:
            tr = traces[name]
            first = True
            for t in [start] + tr.changes(start, end):
                if not first and t == start:
                    continue
                first = False
                events.append((t, self.vcd.short(name), self.fmt_value(name, tr.raw_at(t))))
        events.sort()
        rows = [[self.vcd.fmt_time(t), str(self.cycle_of(t, edges)) if edges else "-", n, s]
                for t, n, s in events[:max_rows]]
        out = _columns(["time", "cycle", "fsm", "state"], rows)
        if len(events) > max_rows:
            out.append(f"... {len(events) - max_rows} more state changes")
        return out

    # --when ----------------------------------------------------------------------------------
    def when(self, expr: str, start: int, end: int) -> list[tuple[int, int | None]]:
        """Intervals [t0, t1) in the window where expr holds (t1 None: still holding at the end)."""
        tree = _Parser(expr, self).parse()
        names = sorted(tree.signals())
        clock = self.clock_name      # loaded in the same pass: the CLI reports cycles too
        traces = self.vcd.load(names + ([clock] if clock else []))
        times = sorted({start, *(t for n in names for t in traces[n].changes(start, end))})
        intervals: list[tuple[int, int | None]] = []
        holding = None
        for t in times:
            if t > end:
                break
            ok = bool(tree.eval(lambda n: traces[n].at(t)))
            if ok and holding is None:
                holding = t
            elif not ok and holding is not None:
                intervals.append((holding, t))
                holding = None
        if holding is not None:
            intervals.append((holding, None))
        return intervals

    # host traffic -----------------------------------------------------------------------------
    def spi(self, start: int = 0, end: int = 1 << 62) -> "HostTraffic":
        pins = {p: self.pin(p) for p in ("spi_sclk", "spi_cs_n", "spi_mosi", "spi_miso")}
        if any(v is None for v in pins.values()):
            raise WavesError("no SPI pins (spi_sclk, spi_cs_n, spi_mosi, spi_miso) in this VCD")
        tr = self.vcd.load(pins.values())
        return decode_spi(tr[pins["spi_sclk"]], tr[pins["spi_cs_n"]], tr[pins["spi_mosi"]],
                          tr[pins["spi_miso"]], start, end)

    def has_uart(self) -> bool:
        return self.pin("uart_rx") is not None or self.pin("uart_tx") is not None

    def uart(self, start: int = 0, end: int = 1 << 62) -> "HostTraffic":
        if not self.has_uart():
            raise WavesError("no UART pins (uart_rx, uart_tx) in this VCD")
        bit = self.cfg.host.uart_divider * self.clock_period()
        traffic = HostTraffic("uart")
        for pin, direction in (("uart_rx", "request"), ("uart_tx", "response")):
            name = self.pin(pin)
            if name is None:
                continue
            data = decode_uart(self.vcd.trace(name), bit, start, end)
            traffic.framing_errors += sum(1 for b in data if b.error)
            good = [b for b in data if not b.error]
            traffic.bytes[direction] += good
            traffic.frames += parse_frames(good, direction, "uart")
        traffic.frames.sort(key=lambda f: f.time)
        return traffic

    # GTKWave ----------------------------------------------------------------------------------
    def write_gtkw(self, out: str | Path) -> tuple[Path, list[Path]]:
        """A .gtkw save file (signals grouped) and one translate-filter file per FSM."""
        from vcd.gtkw import GTKWSave

        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        filters: dict[str, Path] = {}
        for name, states in self.fsms.items():
            f = out.with_name(f"{out.stem}.{self.vcd.short(name).replace('.', '_')}.filter")
            # GTKWave compares the displayed text: the traces below show FSMs in decimal.
            f.write_text("".join(f"{code} {state}\n" for code, state in sorted(states.items())))
            filters[name] = f
        used: set[str] = set()
        with out.open("w") as fh:
            save = GTKWSave(fh)
            save.comment(f"xbarflow waves: {self.vcd.path.name}; sidecar {self.sidecar_path}")
            save.dumpfile(str(self.vcd.path.resolve()))
            save.savefile(str(out.resolve()))
            save.timestart(0)
            save.treeopen(self.vcd.top + ".")
            for group, pats in GTKW_GROUPS.items():
                names = [n for p in pats for n in self.vcd.match(p)
                         if "$" not in n and n not in used]
                names = list(dict.fromkeys(names))
                if not names:
                    continue
                with save.group(group):
                    for n in names:
                        used.add(n)
                        width = self.vcd.signals[n].width
                        if n in filters:
                            save.trace(n, datafmt="dec", translate_filter_file=str(filters[n].resolve()))
                        else:
                            save.trace(n, datafmt="bin" if width == 1 else "hex")
        return out, list(filters.values())


def read_gtkw(path: str | Path) -> tuple[str | None, dict[str, list[str]], dict[str, str]]:
    """Parse a .gtkw save file: (dumpfile, {group: [signal names]}, {signal: filter file})."""
    dumpfile, groups, filters = None, {}, {}
    group, pending_filter = None, None
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("[*]"):
            continue
        if line.startswith("[dumpfile]"):
            dumpfile = line.split(None, 1)[1].strip().strip('"')
        elif line.startswith("["):
            continue
        elif line.startswith("@"):
            int(line[1:], 16)  # flags: a hex number, or the file is malformed
        elif re.match(r"\^\d+ ", line):
            pending_filter = line.split(None, 1)[1].strip()
        elif line.startswith("-"):
            name = line[1:]
            group = None if group == name else name   # open / close marker
            if group:
                groups.setdefault(group, [])
        else:
            groups.setdefault(group or "", []).append(line)
            if pending_filter:
                filters[line] = pending_filter
                pending_filter = None
    return dumpfile, groups, filters


# -- host link decoding --------------------------------------------------------------------------

@dataclass(frozen=True)
class TimedByte:
    time: int
    value: int
    error: bool = False      # UART framing error (stop bit low)


@dataclass(frozen=True)
class Frame:
    """One command-layer frame seen on a host link."""
    time: int
    link: str                # spi | uart
    direction: str           # request (host -> chip) | response (chip -> host)
    raw: bytes
    complete: bool
    crc_ok: bool

    @property
    def code(self) -> int | None:
        return self.raw[1] if len(self.raw) > 1 else None

    @property
    def addr(self) -> int | None:
        if self.direction != "request" or len(self.raw) < 4:
            return None
        return self.raw[2] << 8 | self.raw[3]

    @property
    def payload(self) -> bytes:
        if self.direction == "request":
            return bytes(self.raw[5:-1]) if self.complete else bytes(self.raw[5:])
        return bytes(self.raw[3:-1]) if self.complete else bytes(self.raw[3:])

    def describe(self) -> str:
        from hdl import protocol

        if self.direction == "request":
            try:
                name = protocol.Cmd(self.code).name
            except ValueError:
                name = f"CMD 0x{self.code:02x}" if self.code is not None else "?"
            text = name
            if self.addr is not None:
                if self.code in (protocol.Cmd.READ_REG, protocol.Cmd.WRITE_REG):
                    try:
                        text += f" {protocol.Reg(self.addr).name}"
                    except ValueError:
                        text += f" reg 0x{self.addr:04x}"
                elif self.code in (protocol.Cmd.WRITE_BUF, protocol.Cmd.READ_BUF) or self.addr:
                    text += f" addr=0x{self.addr:04x}"
        else:
            try:
                text = protocol.Status(self.code).name
            except ValueError:
                text = f"STATUS 0x{self.code:02x}" if self.code is not None else "?"
            if self.code == protocol.Status.NACK and self.payload:
                try:
                    text += f" {protocol.Error(self.payload[0]).name}"
                except ValueError:
                    text += f" error 0x{self.payload[0]:02x}"
        pl = self.payload
        if pl:
            text += f" len={len(pl)} [{_hex(pl, 12)}]"
        if not self.complete:
            return text + "  (incomplete)"
        return text + ("  crc ok" if self.crc_ok else "  CRC BAD")


@dataclass
class HostTraffic:
    link: str
    bytes: dict[str, list[TimedByte]] = field(default_factory=lambda: {"request": [], "response": []})
    frames: list[Frame] = field(default_factory=list)
    windows: int = 0         # SPI chip-select windows
    framing_errors: int = 0  # UART

    def requests(self) -> list[Frame]:
        return [f for f in self.frames if f.direction == "request"]

    def responses(self) -> list[Frame]:
        return [f for f in self.frames if f.direction == "response"]

    def summary(self) -> str:
        rq, rs = self.requests(), self.responses()
        extra = (f"{self.windows} chip-select windows, " if self.link == "spi"
                 else f"{self.framing_errors} framing errors, ")
        return (f"{self.link.upper()}: {extra}{len(self.bytes['request'])} bytes host->chip, "
                f"{len(self.bytes['response'])} bytes chip->host; {len(rq)} requests "
                f"({sum(f.crc_ok for f in rq)} CRC ok), {len(rs)} responses "
                f"({sum(f.crc_ok for f in rs)} CRC ok)")


def parse_frames(data: list[TimedByte], direction: str, link: str) -> list[Frame]:
    """Command-layer frames in a byte stream: hunt for SYNC, then read by LEN (hdl.protocol)."""
    from hdl import protocol

    frames, k = [], 0
    header = 5 if direction == "request" else 3   # bytes up to and including LEN
    while k < len(data):
        if data[k].value != protocol.SYNC:
            k += 1
            continue
        if k + header > len(data):
            frames.append(Frame(data[k].time, link, direction,
                                bytes(b.value for b in data[k:]), False, False))
            break
        head = bytes(b.value for b in data[k:k + header])
        total = (6 + head[4]) if direction == "request" else protocol.response_length(head)
        raw = bytes(b.value for b in data[k:k + total])
        complete = len(raw) == total
        crc_ok = False
        if complete:
            if direction == "request":
                crc_ok = protocol.encode_request(raw[1], raw[2] << 8 | raw[3], raw[5:-1]) == raw
            else:
                crc_ok = protocol.crc8(raw[1:-1]) == raw[-1]
        frames.append(Frame(data[k].time, link, direction, raw, complete, crc_ok))
        k += total
    return frames


def decode_spi(sclk: Trace, cs_n: Trace, mosi: Trace, miso: Trace, start: int = 0,
               end: int = 1 << 62) -> HostTraffic:
    """SPI mode 0, MSB first: both data pins sampled just before each rising SCLK while CS is
    low; a chip-select window ends a partial byte and (as in the chip) any partial frame."""
    traffic = HostTraffic("spi")
    cs_edges = [t for t in cs_n.falling_edges() if start <= t <= end]
    rises = sclk.rising_edges()
    cs_times = cs_n.times
    for w, t_sel in enumerate(cs_edges):
        # the window lasts until CS rises again
        k = bisect.bisect_right(cs_times, t_sel)
        t_end = next((cs_times[j] for j in range(k, len(cs_times)) if cs_n.values[j] != "0"), 1 << 62)
        bits_m, bits_s, first = [], [], None
        got = {"request": [], "response": []}
        for t in rises[bisect.bisect_right(rises, t_sel):bisect.bisect_left(rises, t_end)]:
            first = t if not bits_m else first
            bits_m.append(mosi.at(t, before=True) or 0)
            bits_s.append(miso.at(t, before=True) or 0)
            if len(bits_m) == 8:
                got["request"].append(TimedByte(first, _byte(bits_m)))
                got["response"].append(TimedByte(first, _byte(bits_s)))
                bits_m, bits_s = [], []
        traffic.windows += 1
        for direction in ("request", "response"):
            traffic.bytes[direction] += got[direction]
            traffic.frames += parse_frames(got[direction], direction, "spi")
    traffic.frames.sort(key=lambda f: (f.time, f.direction != "request"))
    return traffic


def decode_uart(line: Trace, bit_ticks: int, start: int = 0, end: int = 1 << 62) -> list[TimedByte]:
    """8N1, LSB first: a start bit is a falling edge, bits are sampled in their middles."""
    out: list[TimedByte] = []
    falls = line.falling_edges()
    k = bisect.bisect_left(falls, start)
    while k < len(falls) and falls[k] <= end:
        t0 = falls[k]
        if line.at(t0 + bit_ticks // 2) != 0:      # glitch, not a start bit
            k += 1
            continue
        value = 0
        for b in range(8):
            value |= (line.at(t0 + (2 * b + 3) * bit_ticks // 2) or 0) << b
        stop_t = t0 + 19 * bit_ticks // 2
        out.append(TimedByte(t0, value, error=line.at(stop_t) != 1))
        k = bisect.bisect_right(falls, stop_t)
    return out


def _byte(bits: list[int]) -> int:
    v = 0
    for b in bits:
        v = v << 1 | b
    return v


def _hex(data: bytes, limit: int) -> str:
    text = " ".join(f"{b:02x}" for b in data[:limit])
    return text + (f" … +{len(data) - limit}" if len(data) > limit else "")


def _columns(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i])
              for i in range(len(header))]
    fmt = lambda cells: "  ".join(c.rjust(w) if i < 2 else c.ljust(w)   # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return [fmt(header)] + [fmt(r) for r in rows]


# -- --when expressions --------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<num>0[xX][0-9a-fA-F_]+|0[bB][01_]+|\d+)|(?P<op>==|!=|<=|>=|<|>|\(|\))"
                    r"|(?P<name>[A-Za-z_\\][\w.$\\\[\]*?]*))")
_OPS: dict[str, Callable[[int, int], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
}


class _Node:
    def __init__(self, kind, *args):
        self.kind, self.args = kind, args

    def signals(self) -> set[str]:
        if self.kind == "sig":
            return {self.args[0]}
        return set().union(*(a.signals() for a in self.args if isinstance(a, _Node)))

    def eval(self, value_of) -> int | bool | None:
        k, a = self.kind, self.args
        if k == "num":
            return a[0]
        if k == "sig":
            return value_of(a[0])
        if k == "not":
            v = a[0].eval(value_of)
            return None if v is None else not v
        if k == "and":
            return all(x.eval(value_of) for x in a)
        if k == "or":
            return any(x.eval(value_of) for x in a)
        lhs, rhs = a[1].eval(value_of), a[2].eval(value_of)
        if lhs is None or rhs is None:
            return False      # x or z never satisfies a comparison
        return _OPS[a[0]](int(lhs), int(rhs))


class _Parser:
    """expr := and ('or' and)*; and := not ('and' not)*; not := 'not' not | cmp;
    cmp := atom (op atom)?; atom := number | signal | FSM state name | '(' expr ')'."""

    def __init__(self, text: str, waves: Waves):
        self.text, self.waves, self.pos = text, waves, 0
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise WavesError(f"bad expression '{text}': cannot read '{text[pos:].strip()}'")
            kind = m.lastgroup
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        if not self.tokens:
            raise WavesError("empty --when expression")

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        tok = self._peek()
        if tok is None:
            raise WavesError(f"bad expression '{self.text}': ends too early")
        self.pos += 1
        return tok

    def parse(self) -> _Node:
        node = self._or()
        if self._peek() is not None:
            raise WavesError(f"bad expression '{self.text}': unexpected '{self._peek()[1]}'")
        return node

    def _or(self) -> _Node:
        items = [self._and()]
        while self._peek() == ("name", "or"):
            self._take()
            items.append(self._and())
        return items[0] if len(items) == 1 else _Node("or", *items)

    def _and(self) -> _Node:
        items = [self._not()]
        while self._peek() == ("name", "and"):
            self._take()
            items.append(self._not())
        return items[0] if len(items) == 1 else _Node("and", *items)

    def _not(self) -> _Node:
        if self._peek() == ("name", "not"):
            self._take()
            return _Node("not", self._not())
        return self._cmp()

    def _cmp(self) -> _Node:
        left = self._atom()
        tok = self._peek()
        if tok and tok[0] == "op" and tok[1] in _OPS:
            op = self._take()[1]
            right = self._atom()
            left, right = self._states(left, right), self._states(right, left)
            for side in (left, right):
                if side.kind == "state":
                    raise WavesError(f"bad expression '{self.text}': '{side.args[0]}' is neither a "
                                     f"signal nor a state of the FSM it is compared with")
            return _Node("cmp", op, left, right)
        if left.kind == "state":
            raise WavesError(f"bad expression '{self.text}': no signal matches '{left.args[0]}'")
        return left

    def _states(self, node: _Node, other: _Node) -> _Node:
        """A bare name compared with an FSM register is one of its state names."""
        if node.kind == "state" and other.kind == "sig" and other.args[0] in self.waves.fsms:
            for code, name in self.waves.fsms[other.args[0]].items():
                if name.upper() == node.args[0].upper():
                    return _Node("num", code)
        return node

    def _atom(self) -> _Node:
        kind, text = self._take()
        if kind == "num":
            return _Node("num", int(text.replace("_", ""), 0))
        if kind == "op" and text == "(":
            node = self._or()
            if self._take() != ("op", ")"):
                raise WavesError(f"bad expression '{self.text}': missing ')'")
            return node
        if kind == "name" and text not in ("and", "or", "not"):
            hits = self.waves.vcd.match(text)
            if len(hits) == 1:
                return _Node("sig", hits[0])
            if len(hits) > 1:
                raise WavesError(f"'{text}' matches {len(hits)} signals in --when "
                                 f"({', '.join(self.waves.vcd.short(h) for h in hits[:4])}, ...): "
                                 f"name one")
            return _Node("state", text)
        raise WavesError(f"bad expression '{self.text}': unexpected '{text}'")


# -- CLI -----------------------------------------------------------------------------------------

def add_arguments(parser) -> None:
    parser.description = "Inspect a co-simulation VCD: signals, FSM states, SPI/UART frames."
    parser.add_argument("vcd", type=Path, help="VCD file written by a co-simulation with waves")
    parser.add_argument("--sidecar", type=Path, default=None,
                        help="Verilog sidecar JSON (default: next to the VCD, or named by its job.json)")
    parser.add_argument("--config", type=Path, default=None,
                        help="ChipConfig TOML for the UART divider (default: the run's job.json)")
    parser.add_argument("--list", action="store_true", help="list the signal hierarchy")
    parser.add_argument("-s", "--signals", nargs="+", metavar="PATTERN", default=None,
                        help="signals (glob patterns) to print as a table")
    parser.add_argument("--start", default=None, help="window start, e.g. 85us (bare number: VCD ticks)")
    parser.add_argument("--end", default=None, help="window end")
    parser.add_argument("--cycles", default=None, metavar="A:B", help="window in clock cycles")
    parser.add_argument("--every-cycle", action="store_true",
                        help="table rows at every rising clock edge (values the flops sample)")
    parser.add_argument("--max-rows", type=int, default=_DEFAULT_MAX_ROWS)
    parser.add_argument("--wide", action="store_true", help="do not shorten wide bus values")
    parser.add_argument("--fsm", action="store_true", help="FSM state changes by name")
    parser.add_argument("--spi", action="store_true", help="decode SPI traffic into frames")
    parser.add_argument("--uart", action="store_true", help="decode UART traffic into frames")
    parser.add_argument("--bytes", action="store_true", help="with --spi/--uart: also raw bytes")
    parser.add_argument("--when", default=None, metavar="EXPR",
                        help="when EXPR first holds in the window, e.g. 'vmm_done == 1'")
    parser.add_argument("--all", action="store_true", help="with --when: every interval")
    parser.add_argument("--gtkw", type=Path, default=None, metavar="OUT.gtkw",
                        help="write a GTKWave save file (+ FSM translate filters)")


def run(args) -> int:
    from .cli import UsageError

    try:
        return _run(args)
    except WavesError as exc:
        raise UsageError(str(exc)) from None


def _run(args) -> int:
    import time as _time

    t0 = _time.perf_counter()
    if args.max_rows < 1:
        raise WavesError("--max-rows must be >= 1")
    w = Waves(args.vcd, args.sidecar, args.config)
    start, end = w.window(args.start, args.end, args.cycles)
    did = False
    out = sys.stdout
    if args.list:
        did = True
        print("\n".join(w.hierarchy(args.signals)), file=out)
    elif args.signals:
        did = True
        print("\n".join(w.table(args.signals, start, end, every_cycle=args.every_cycle,
                                max_rows=args.max_rows, wide=args.wide)), file=out)
    if args.fsm:
        did = True
        print("\n".join(w.fsm_timeline(start, end, args.max_rows)), file=out)
    for link, wanted in (("spi", args.spi), ("uart", args.uart)):
        if not wanted:
            continue
        did = True
        traffic = w.spi(start, end) if link == "spi" else w.uart(start, end)
        print(traffic.summary(), file=out)
        rows = [[w.vcd.fmt_time(f.time), "->" if f.direction == "request" else "<-", f.describe()]
                for f in traffic.frames[:args.max_rows]]
        print("\n".join(_columns(["time", "dir", "frame"], rows)), file=out)
        if len(traffic.frames) > args.max_rows:
            print(f"... {len(traffic.frames) - args.max_rows} more frames", file=out)
        if args.bytes:
            for direction in ("request", "response"):
                data = bytes(b.value for b in traffic.bytes[direction])
                print(f"{direction} bytes: {_hex(data, 64)}", file=out)
    if args.when:
        did = True
        intervals = w.when(args.when, start, end)
        clock = w.clock_name
        edges = w.vcd.trace(clock).rising_edges() if clock else []
        if not intervals:
            print(f"'{args.when}' never holds in the window", file=out)
        for t_a, t_b in intervals if args.all else intervals[:1]:
            cyc = f" (cycle {w.cycle_of(t_a, edges)})" if edges else ""
            until = f" until {w.vcd.fmt_time(t_b)}" if t_b is not None else " until the end"
            print(f"'{args.when}' holds at {w.vcd.fmt_time(t_a)}{cyc}{until}", file=out)
        if intervals and not args.all:
            print(f"({len(intervals)} interval(s) in the window; --all lists them, --start "
                  f"after this one finds the next)", file=out)
    if args.gtkw:
        did = True
        try:
            path, filters = w.write_gtkw(args.gtkw)
        except OSError as exc:      # e.g. a path under a regular file
            raise WavesError(f"cannot write {args.gtkw}: {exc.strerror or exc}") from None
        print(f"wrote {path} and {len(filters)} FSM filter file(s)", file=out)
    if not did:
        size = w.vcd.path.stat().st_size
        print(f"{w.vcd.path}: {size / 1e6:.1f} MB, {len(w.vcd.signals)} signals, top "
              f"'{w.vcd.top}', timescale {w.vcd.timescale_s:g} s", file=out)
        print(f"sidecar: {w.sidecar_path or 'none found (use --sidecar)'}; FSMs: "
              f"{', '.join(w.vcd.short(n) for n in w.fsms) or 'none'}", file=out)
        links = [p for p in ("spi", "uart") if (w.pin("spi_mosi") if p == "spi" else w.has_uart())]
        print(f"host pins: {', '.join(links) or 'none'}; try --list, -s PATTERN, --fsm, "
              f"--spi, --when EXPR, --gtkw OUT", file=out)
    print(f"[waves] {_time.perf_counter() - t0:.2f} s", file=sys.stderr)
    return 0
