"""`xbarflow waves FILE.vcd|FILE.fst ...`: the command line of xbarflow.flow.analysis.waves (`add_arguments`, `run`).

What it does, all on the waveform that `xbarflow.flow.sim.runner.run(..., waves=...)` writes
(VCD from Icarus or Verilator, FST from Verilator; `demo --waves [vcd|fst]`):

* ``--list``: the signal hierarchy (scopes, widths, FSM registers marked);
* ``-s PATTERN ...``: a table of the selected signals over a time window (``--start/--end``,
  with units fs/ps/ns/us/ms/s) or a cycle window (``--cycles A:B``, rising clock edges), one row
  per change (or per clock cycle with ``--every-cycle``); FSM registers show their state names;
* ``--fsm``: every FSM's state sequence by name;
* ``--spi`` / ``--uart``: the host traffic decoded into bytes and command-layer frames (SYNC CMD
  ADDR LEN payload CRC requests, SYNC STATUS LEN payload CRC responses) with their CRC status,
  using `xbarflow.hdl.protocol` (SPI mode 0, MSB first, sampled at rising SCLK while CS is low; UART 8N1
  on ``uart_rx``/``uart_tx`` with ``host.uart_divider`` clocks per bit, when those pins exist);
* ``--when EXPR``: when a condition over signal values first holds in the window (``--all``:
  every interval); EXPR uses ``== != < > <= >=``, ``and``, ``or``, ``not``, parentheses,
  integers (``12``, ``0x1f``, ``0b101``) and FSM state names (``ctrl_state == DRIVE``);
* ``--gtkw OUT.gtkw``: a GTKWave save file with the signals grouped (host, command layer,
  controller, analog boundary), plus one translate-filter file per FSM so GTKWave shows state
  names.

Signal names and patterns: see `xbarflow.flow.analysis.waves.reader`; which sidecar and config are used: see
`xbarflow.flow.analysis.waves.sidecar`. A bad VCD, pattern, time or expression is one line on stderr, exit 2.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..analysis.waves.errors import WavesError
from ..analysis.waves.format import columns, hex_bytes
from ..analysis.waves.session import DEFAULT_MAX_ROWS, Waves
from .common import UsageError

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.description = "Inspect a co-simulation VCD or FST: signals, FSM states, SPI/UART frames."
    parser.add_argument("vcd", type=Path, help="VCD or FST file written by a co-simulation with waves")
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
    parser.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS)
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
    try:
        return _run(args)
    except WavesError as exc:
        raise UsageError(str(exc)) from None


def _run(args) -> int:
    t0 = time.perf_counter()
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
        print("\n".join(columns(["time", "dir", "frame"], rows)), file=out)
        if len(traffic.frames) > args.max_rows:
            print(f"... {len(traffic.frames) - args.max_rows} more frames", file=out)
        if args.bytes:
            for direction in ("request", "response"):
                data = bytes(b.value for b in traffic.bytes[direction])
                print(f"{direction} bytes: {hex_bytes(data, 64)}", file=out)
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
    print(f"[waves] {time.perf_counter() - t0:.2f} s", file=sys.stderr)
    return 0
