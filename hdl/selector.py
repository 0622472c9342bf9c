"""Row/column selector of the write periphery: the RW multiplexer and the two address decoders.

The crossbar rows either carry the DAC voltages (inference) or the write/verify biasing
(programming); ``rw_mode`` picks which. In write mode one local row index addresses the same
row in every row partition at once (partitions are programmed in parallel), and the column
decoder picks one column, shared by all partitions.
"""

# No `from __future__ import annotations` here: wiring.Component reads the port annotations.
from amaranth.hdl import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .decoder import AddressDecoder, address_bits

__all__ = ["Selector"]


class Selector(wiring.Component):
    """Decodes the write address into the physical select lines the analog bridge reads.

    What the lines mean to the bridge (the paper's V/2 biasing scheme):

    * a row whose ``prog_row_sel`` bit is 1 is driven to the program voltage during
      ``prog_pulse`` (sign from ``prog_polarity``) and to V_read during a verify read;
      every other row is held at 0 V;
    * the column whose ``prog_col_sel`` bit is 1 is tied to the sense node (verify) or to
      0 V (program pulse); every other column is held at V_prog/2, so half-selected cells
      see at most V_prog/2 and are not disturbed;
    * in inference mode (``rw_mode`` 0, the chip's ``rw_mode`` pin the bridge reads) the RW
      multiplexer hands the rows to the DACs and every select line is 0.

    Parameters
    ----------
    partition_rows : sequence of int
        Rows of each row partition (`ChipConfig.partition_rows`); partition ``p`` holds the
        global rows ``sum(partition_rows[:p]) ..`` onwards.
    cols : int
        Columns of the tile.

    Attributes
    ----------
    rw_mode : In(1)
        0 inference, 1 write.
    row : In(address_bits(max(partition_rows)))
        Local row index inside every partition.
    col : In(address_bits(cols))
        Column index.
    partition_en : In(len(partition_rows))
        Partitions whose cell at (``row``, ``col``) is selected.
    prog_row_sel : Out(sum(partition_rows))
        Global row lines: in write mode, bit ``start[p] + row`` for every enabled partition
        ``p`` that has a local row ``row`` (``row < partition_rows[p]``); else 0.
    prog_col_sel : Out(cols)
        Column lines: one-hot at ``col`` in write mode (for ``col < cols``); else 0.
    """

    def __init__(self, partition_rows, cols: int):
        partition_rows = tuple(int(n) for n in partition_rows)
        if not partition_rows or min(partition_rows) < 1:
            raise ValueError(f"every partition needs at least one row, got {partition_rows}")
        if cols < 1:
            raise ValueError(f"cols must be >= 1, got {cols}")
        self.partition_rows = partition_rows
        self.partition_start = tuple(sum(partition_rows[:p]) for p in range(len(partition_rows)))
        self.max_rows = max(partition_rows)
        self.rows = sum(partition_rows)
        self.cols = cols
        super().__init__({
            "rw_mode": In(1),
            "row": In(unsigned(address_bits(self.max_rows))),
            "col": In(unsigned(address_bits(cols))),
            "partition_en": In(len(partition_rows)),
            "prog_row_sel": Out(self.rows),
            "prog_col_sel": Out(cols),
        })

    def elaborate(self, platform):
        m = Module()
        # One row decoder serves every partition (they share the local row address); the
        # partition enables then gate its lines into each partition's slice of the rows.
        m.submodules.row_decoder = row_dec = AddressDecoder(self.max_rows)
        m.submodules.col_decoder = col_dec = AddressDecoder(self.cols)
        m.d.comb += [
            row_dec.addr.eq(self.row),
            row_dec.enable.eq(self.rw_mode),
            col_dec.addr.eq(self.col),
            col_dec.enable.eq(self.rw_mode),
            self.prog_col_sel.eq(col_dec.onehot),
        ]
        for p, (start, n) in enumerate(zip(self.partition_start, self.partition_rows)):
            # Local rows past a short partition's end have no line here: it is "absent".
            m.d.comb += self.prog_row_sel[start:start + n].eq(
                row_dec.onehot[:n] & self.partition_en[p].replicate(n))
        return m
