"""The write-verify programmer: the chip programs its own crossbar from a target memory.

The algorithm (one source with the golden replay in `xbarflow.analog_models.programming`; any
change here breaks parity)::

    failures = 0; total_pulses = 0
    for i in range(MAXR):                 # row counter (slow)
      for j in range(C):                  # column counter (fast)
        present[p] = i < partition_rows[p]; acked[p] = False; pulses = 0
        ref[p] = target code of cell (partition_start[p] + i, j) if present[p] else 0
        loop:
          VERIFY -> verify_ok[p], verify_high[p]
          acked[p] |= verify_ok[p] & present[p]
          if all(acked[p] or not present[p]): advance
          elif pulses == timeout_pulses: failures += count(present & ~acked); advance
          else:
            PULSE partitions present & ~acked, polarity RESET where verify_high else SET,
                  level min(pulses // pulses_per_level, amplitude_levels - 1);
            total_pulses += 1; pulses += 1
    write_ok = 1

FSM: IDLE -> LOAD_REF -> SELECT -> VERIFY -> WAIT_VERIFY -> SETTLE -> DECIDE
-> (PULSE -> SELECT ...) -> NEXT -> LOAD_REF ... -> DONE -> IDLE.

Boundary handshakes (what the analog bridge must follow; every output is a register or
decoded from registers, every strobe is registered):

* Set-up: the buses that qualify a strobe are driven at least one clock *before* the strobe
  rises, and held until the operation ends, so the bridge may read them right at the
  strobe's rising edge (no delta-cycle race with the decoders).
* Verify: ``verify_start`` is high for one clock. From one clock before it until
  ``verify_done``, ``prog_row_sel`` / ``prog_col_sel`` / ``prog_partition_en`` (the present
  partitions) and ``verify_ref`` are stable. The bridge answers with ``verify_done`` high for
  one clock (after ``ChipConfig.sense_cycles``); ``verify_ok`` and ``verify_high`` are
  sampled on the rising clock edge where ``verify_done`` is high, so they must be valid in
  that same clock (they may change afterwards). ``verify_done`` outside a verify wait is
  ignored.
* Program pulse: ``prog_pulse`` is level-significant: high for exactly
  ``ChipConfig.pulse_cycles`` clocks, no handshake (the width is the physical pulse width);
  one 0 -> 1 edge is one pulse. ``prog_row_sel``, ``prog_col_sel``, ``prog_partition_en``
  (present and not yet acknowledged), ``prog_polarity`` (1 = RESET) and ``prog_level`` are
  set one clock before ``prog_pulse`` rises and hold until one clock after it falls.
"""

# No `from __future__ import annotations` here: wiring.Component reads the port annotations.
from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .decoder import address_bits
from .ports import ProgrammingStatusSignature, WriteSignature
from .selector import Selector
from .write_ack import WriteAck

__all__ = ["Programmer", "analog_members", "level_bits", "tile_shape"]


def level_bits(cfg) -> int:
    """Width of one weight level code (bits for ``weight_levels - 1``)."""
    return address_bits(cfg.quant.weight_levels)


def tile_shape(cfg):
    """Shape of a tile index, as the controller's ``tile_sel`` (at least one bit, so a
    single-tile chip keeps the port)."""
    return range(max(2, len(cfg.tiles)))


def analog_members(cfg) -> dict[str, wiring.Member]:
    """The programmer's side of the analog boundary (the write path), in port order;
    `xbarflow.hdl.top.Top` has the same ports."""
    nparts = cfg.crossbar.partitions
    return {
        "prog_row_sel": Out(cfg.crossbar.tile_rows),
        "prog_col_sel": Out(cfg.crossbar.tile_cols),
        "prog_partition_en": Out(nparts),
        "prog_pulse": Out(1),
        "prog_polarity": Out(nparts),
        "prog_level": Out(unsigned(address_bits(cfg.programming.amplitude_levels))),
        "verify_start": Out(1),
        "verify_ref": Out(nparts * level_bits(cfg)),
        "verify_ok": In(nparts),
        "verify_high": In(nparts),
        "verify_done": In(1),
        "rw_mode": Out(1),
        "prog_tile_sel": Out(tile_shape(cfg)),
    }


class Programmer(wiring.Component):
    """Write-verify FSM with row/column counters, target memory, write-ack and selector.

    Every parameter comes from the `ChipConfig`: geometry (tile rows/cols, row partitions),
    weight levels, ``programming.timeout_pulses`` / ``pulses_per_level`` /
    ``amplitude_levels`` and ``pulse_cycles``.

    The target memory holds one level code per cell, written by the host as row-major bytes
    (byte ``global_row * C + col``). Codes above ``weight_levels - 1`` are stored saturated
    to ``weight_levels - 1``. Each cell step reads the NP codes of its cells, one per clock
    (LOAD_REF), into ``verify_ref``.

    Parameters
    ----------
    cfg : ChipConfig

    Attributes
    ----------
    start : In(1)
        Pulse: start programming the whole tile ``tile`` (ignored unless idle).
    tile : In(range(max(2, tiles)))
        Tile to program (PROG_TILE, checked in range by the register file), latched onto
        ``prog_tile_sel`` at ``start``.
    status : Out(ProgrammingStatusSignature())
        ``busy`` (programming is running), ``write_ok`` (the last run finished; sticky
        until the next ``start``), and the current/last run's ``pulses`` (program pulses
        issued), ``failures`` (cells given up at the timeout), ``cycles`` (clocks from
        ``start`` to DONE) and ``steps`` (cell steps finished: MAXR * C when done), for the
        register file.
    row : Out(address_bits(MAXR))
        Local row counter (slow).
    col : Out(address_bits(C))
        Column counter (fast).
    targets : In(WriteSignature(addr_width=16))
        Target memory writes, one level code per byte at ``global_row * C + col``; writes
        at or beyond ``cfg.target_bytes`` are ignored.
    prog_row_sel : Out(R)
        Global row select lines (see `Selector`).
    prog_col_sel : Out(C)
        Column select, one-hot while programming.
    prog_partition_en : Out(NP)
        Partitions taking part: the present ones during a verify, the present and not yet
        acknowledged ones during a pulse, 0 between operations.
    prog_pulse : Out(1)
        High for exactly ``cfg.pulse_cycles`` clocks per program pulse.
    prog_polarity : Out(NP)
        Per partition during a pulse: 1 RESET (cell above its window), 0 SET; 0 for
        partitions not enabled.
    prog_level : Out(address_bits(amplitude_levels))
        Pulse amplitude code, ``min(pulses // pulses_per_level, amplitude_levels - 1)`` with
        ``pulses`` the pulses already issued in this step.
    verify_start : Out(1)
        One-clock strobe: verify the selected cells.
    verify_ref : Out(NP * level_bits)
        Reference level code of partition ``p`` at bits ``[p*level_bits, (p+1)*level_bits)``;
        0 for partitions absent at this row.
    verify_ok : In(NP)
        Per partition: the cell is inside its verify window (sampled with ``verify_done``).
    verify_high : In(NP)
        Per partition: the cell is above its window (needs RESET); else below (SET).
    verify_done : In(1)
        One-clock strobe from the analog side answering ``verify_start``.
    rw_mode : Out(1)
        1 while programming: the RW multiplexer gives the rows to the write drivers.
    prog_tile_sel : Out(range(max(2, tiles)))
        Tile select of the write path: the tile whose row/column drivers, sense amplifiers
        and write-ack event flops the selects and strobes above address (in
        `ChipConfig.tiles` order, as ``tile_sel``). Latched at ``start``, stable for the
        whole run (and after it, until the next ``start``).
    """

    def __init__(self, cfg):
        x, pr = cfg.crossbar, cfg.programming
        self.rows, self.cols, self.partitions = x.tile_rows, x.tile_cols, x.partitions
        self.partition_rows = tuple(cfg.partition_rows)
        self.partition_start = tuple(cfg.partition_start)
        self.max_rows = max(self.partition_rows)
        self.weight_levels = cfg.quant.weight_levels
        self.level_bits = level_bits(cfg)
        self.target_bytes = cfg.target_bytes
        self.timeout_pulses = pr.timeout_pulses
        self.pulses_per_level = pr.pulses_per_level
        self.amplitude_levels = pr.amplitude_levels
        self.pulse_cycles = cfg.pulse_cycles
        self.tiles = len(cfg.tiles)
        if not 1 <= self.target_bytes <= 1 << 16:
            raise ValueError(f"target memory of {self.target_bytes} bytes does not fit a "
                             f"16-bit byte address")
        # Submodules built here so that tests can observe them.
        self.write_ack = WriteAck(self.partitions, self.timeout_pulses)
        self.selector = Selector(self.partition_rows, self.cols)
        super().__init__({
            "start": In(1),
            "tile": In(tile_shape(cfg)),
            "status": Out(ProgrammingStatusSignature()),
            "row": Out(unsigned(address_bits(self.max_rows))),
            "col": Out(unsigned(address_bits(self.cols))),
            "targets": In(WriteSignature(addr_width=16)),
            **analog_members(cfg),
        })

    def elaborate(self, platform):
        m = Module()
        status = self.status
        C, NP, lb = self.cols, self.partitions, self.level_bits
        m.submodules.write_ack = wa = self.write_ack
        m.submodules.selector = sel = self.selector

        # -- target memory: host writes bytes, the FSM reads the NP codes of a step --------
        m.submodules.targets = memory = Memory(shape=unsigned(lb), depth=self.target_bytes,
                                             init=[])
        wr = memory.write_port()
        rd = memory.read_port()
        top_code = self.weight_levels - 1
        m.d.comb += [
            wr.addr.eq(self.targets.addr),
            wr.data.eq(Mux(self.targets.data > top_code, top_code, self.targets.data)),
            wr.en.eq(self.targets.en & (self.targets.addr < self.target_bytes)),
        ]

        # -- counters and per-step state ---------------------------------------------------
        row_base = Signal(range(self.target_bytes))      # row * C: the step's byte offset
        present = Signal(NP)                              # partitions with a cell at `row`
        m.d.comb += present.eq(Cat(self.row < n for n in self.partition_rows))

        load_p = Signal(range(NP + 1))     # LOAD_REF: partition whose code is being read
        load_present = Signal()            # present[load_p - 1]: mask for the arriving code
        high = Signal(NP)                  # verify_high of the last verify
        settle = Signal(range(WriteAck.LATENCY))
        pulse_timer = Signal(range(self.pulse_cycles + 1))
        level = Signal.like(self.prog_level)               # amplitude of the next pulse
        level_pulses = Signal(range(self.pulses_per_level))  # pulses issued at `level`
        partition_en = Signal(NP)

        m.d.comb += [
            sel.rw_mode.eq(status.busy),
            sel.row.eq(self.row),
            sel.col.eq(self.col),
            sel.partition_en.eq(partition_en),
            self.prog_row_sel.eq(sel.prog_row_sel),
            self.prog_col_sel.eq(sel.prog_col_sel),
            self.prog_partition_en.eq(partition_en),
            self.rw_mode.eq(status.busy),
            wa.present.eq(present),
            wa.verify_ok.eq(self.verify_ok),
        ]

        # verify_start is a one-clock strobe: low unless VERIFY raises it.
        m.d.sync += self.verify_start.eq(0)

        with m.FSM(name="prog") as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [
                        status.write_ok.eq(0),
                        status.pulses.eq(0),
                        status.failures.eq(0),
                        status.cycles.eq(0),
                        status.steps.eq(0),
                        self.row.eq(0),
                        self.col.eq(0),
                        self.prog_tile_sel.eq(self.tile),
                        row_base.eq(0),
                        load_p.eq(0),
                    ]
                    m.next = "LOAD_REF"

            with m.State("LOAD_REF"):
                # New cell step: clear the write-ack counter and the amplitude ramp, then
                # read one code per clock; a code arrives one clock after its address.
                with m.If(load_p == 0):
                    m.d.comb += wa.clear.eq(1)
                    m.d.sync += [level.eq(0), level_pulses.eq(0)]
                with m.Switch(load_p):
                    for p in range(NP):
                        with m.Case(p):
                            addr = Const(self.partition_start[p] * C) + row_base + self.col
                            # An absent partition's address may be past the array: read 0.
                            m.d.comb += rd.addr.eq(Mux(present[p], addr, 0))
                            m.d.sync += load_present.eq(present[p])
                with m.If(load_p != 0):
                    # Shift in from the top: after NP codes, partition 0 sits at bits [0, lb).
                    m.d.sync += self.verify_ref.eq(
                        Cat(self.verify_ref[lb:], Mux(load_present, rd.data, 0)))
                m.d.sync += load_p.eq(load_p + 1)
                with m.If(load_p == NP):
                    m.d.sync += load_p.eq(0)
                    m.next = "SELECT"

            with m.State("SELECT"):
                # Drive the select lines for the verify read one clock ahead of verify_start.
                # Every present partition is read (acknowledged ones too: their flops hold).
                m.d.sync += partition_en.eq(present)
                m.next = "VERIFY"

            with m.State("VERIFY"):
                m.d.sync += self.verify_start.eq(1)
                m.next = "WAIT_VERIFY"

            with m.State("WAIT_VERIFY"):
                # verify_done reaches the event flip-flops only here: a stray one is ignored.
                m.d.comb += wa.verify_done.eq(self.verify_done)
                with m.If(self.verify_done):
                    m.d.sync += [high.eq(self.verify_high), settle.eq(0)]
                    m.next = "SETTLE"

            with m.State("SETTLE"):
                # Let this verify pass the event flops and the 2-flop synchroniser, so the
                # decision always sees it (DECIDE is WriteAck.LATENCY clocks after done).
                m.d.sync += settle.eq(settle + 1)
                with m.If(settle == WriteAck.LATENCY - 2):
                    m.next = "DECIDE"

            with m.State("DECIDE"):
                m.d.comb += wa.decide.eq(1)
                with m.If(wa.advance):
                    # Deselect before the address counters move.
                    m.d.sync += [status.failures.eq(status.failures + wa.failed), partition_en.eq(0)]
                    m.next = "NEXT"
                with m.Else():
                    # Set up the pulse: its lines are stable one clock before prog_pulse.
                    pending = present & ~wa.acked
                    m.d.comb += wa.pulse.eq(1)
                    m.d.sync += [
                        partition_en.eq(pending),
                        self.prog_polarity.eq(high & pending),
                        self.prog_level.eq(level),
                        pulse_timer.eq(0),
                        status.pulses.eq(status.pulses + 1),
                    ]
                    # Amplitude ramp: pulses_per_level pulses per level, saturating at the top.
                    with m.If(level_pulses == self.pulses_per_level - 1):
                        m.d.sync += level_pulses.eq(0)
                        with m.If(level != self.amplitude_levels - 1):
                            m.d.sync += level.eq(level + 1)
                    with m.Else():
                        m.d.sync += level_pulses.eq(level_pulses + 1)
                    m.next = "PULSE"

            with m.State("PULSE"):
                # prog_pulse is high while pulse_timer counts 1 .. pulse_cycles.
                m.d.sync += [self.prog_pulse.eq(1), pulse_timer.eq(pulse_timer + 1)]
                with m.If(pulse_timer == self.pulse_cycles):
                    m.d.sync += self.prog_pulse.eq(0)
                    m.next = "SELECT"

            with m.State("NEXT"):
                # Column counter first; after C columns the row counter advances.
                m.d.sync += status.steps.eq(status.steps + 1)
                with m.If(self.col == C - 1):
                    with m.If(self.row == self.max_rows - 1):
                        m.next = "DONE"
                    with m.Else():
                        m.d.sync += [
                            self.col.eq(0),
                            self.row.eq(self.row + 1),
                            row_base.eq(row_base + C),
                        ]
                        m.next = "LOAD_REF"
                with m.Else():
                    m.d.sync += self.col.eq(self.col + 1)
                    m.next = "LOAD_REF"

            with m.State("DONE"):
                m.d.sync += status.write_ok.eq(1)
                m.next = "IDLE"

        m.d.comb += status.busy.eq(~fsm.ongoing("IDLE"))
        with m.If(status.busy):
            m.d.sync += status.cycles.eq(status.cycles + 1)
        return m
