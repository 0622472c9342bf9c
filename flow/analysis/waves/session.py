"""A waveform session: one VCD with what its sidecar says about it (FSM encodings, ports, clock).

The `Waves` class holds the actions of `xbarflow waves`: the clock and time or cycle windows,
value tables, the signal hierarchy, FSM timelines, `--when` intervals, the host traffic on the
chip's SPI or UART pins, and GTKWave save files (written with signals grouped as host, command
layer, controller and analog boundary, plus one translate-filter file per FSM so GTKWave shows
state names; `read_gtkw` reads one back).
"""

from __future__ import annotations

import bisect
import re
from pathlib import Path

from vcd.gtkw import GTKWSave

from .errors import WavesError
from .expressions import parse
from .format import columns
from .links import HostTraffic, decode_spi, decode_uart, parse_frames
from .reader import Vcd, to_int
from .sidecar import find_config, find_sidecar, load_sidecar

__all__ = ["DEFAULT_MAX_ROWS", "GTKW_GROUPS", "Waves", "read_gtkw"]

#: rows a table, timeline or frame list shows unless told otherwise
DEFAULT_MAX_ROWS = 200

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
              max_rows: int = DEFAULT_MAX_ROWS, wide: bool = False) -> list[str]:
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
        out = columns(header, rows)
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

    def fsm_timeline(self, start: int, end: int, max_rows: int = DEFAULT_MAX_ROWS) -> list[str]:
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
        out = columns(["time", "cycle", "fsm", "state"], rows)
        if len(events) > max_rows:
            out.append(f"... {len(events) - max_rows} more state changes")
        return out

    # --when ----------------------------------------------------------------------------------
    def when(self, expr: str, start: int, end: int) -> list[tuple[int, int | None]]:
        """Intervals [t0, t1) in the window where expr holds (t1 None: still holding at the end)."""
        tree = parse(expr, self.vcd, self.fsms)
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
    def spi(self, start: int = 0, end: int = 1 << 62) -> HostTraffic:
        pins = {p: self.pin(p) for p in ("spi_sclk", "spi_cs_n", "spi_mosi", "spi_miso")}
        if any(v is None for v in pins.values()):
            raise WavesError("no SPI pins (spi_sclk, spi_cs_n, spi_mosi, spi_miso) in this VCD")
        tr = self.vcd.load(pins.values())
        return decode_spi(tr[pins["spi_sclk"]], tr[pins["spi_cs_n"]], tr[pins["spi_mosi"]],
                          tr[pins["spi_miso"]], start, end)

    def has_uart(self) -> bool:
        return self.pin("uart_rx") is not None or self.pin("uart_tx") is not None

    def uart(self, start: int = 0, end: int = 1 << 62) -> HostTraffic:
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
