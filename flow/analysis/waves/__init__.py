"""Waveform debugging for co-simulation VCDs and FSTs (`xbarflow waves`), one concept per module.

Imports go downward only (tests/flow/analysis/test_waves.py checks it):

* `errors`: WavesError, the one-line error every module raises;
* `format`: aligned columns and hex dumps for the text output;
* `reader`: the VCD and FST reader (Vcd, Trace, SignalInfo) through pywellen: header at once,
  value changes per signal on demand;
* `scan`: the hand-written VCD scanner it replaced (ScannedVcd), `make bench`'s baseline;
* `sidecar`: where the Verilog sidecar (FSM encodings, ports, clock) and the config come from;
* `links`: SPI and UART pin traces decoded into bytes and command-layer frames;
* `expressions`: the ``--when`` expression parser and evaluator;
* `session`: Waves, a VCD with its sidecar: windows, tables, hierarchy, FSM timeline, when,
  host traffic, GTKWave save files;
The command line (`xbarflow waves`) is xbarflow.flow.commands.waves.

The package re-exports the public names of errors, reader, scan, sidecar, links, expressions
and session (not the text helpers).
"""

from __future__ import annotations

from .errors import WavesError
from .expressions import Expression, parse
from .links import Frame, HostTraffic, TimedByte, decode_spi, decode_uart, parse_frames
from .reader import SignalInfo, Trace, Vcd, clean_name, shortest, to_int, top_scope
from .scan import ScannedVcd
from .session import DEFAULT_MAX_ROWS, GTKW_GROUPS, Waves, read_gtkw
from .sidecar import SIDECAR_SUFFIX, find_config, find_sidecar, load_sidecar

__all__ = [
    "DEFAULT_MAX_ROWS", "Expression", "Frame", "GTKW_GROUPS", "HostTraffic", "SIDECAR_SUFFIX",
    "ScannedVcd", "SignalInfo", "TimedByte", "Trace", "Vcd", "Waves", "WavesError", "clean_name",
    "decode_spi", "decode_uart", "find_config", "find_sidecar", "load_sidecar", "parse",
    "parse_frames", "read_gtkw", "shortest", "to_int", "top_scope",
]
