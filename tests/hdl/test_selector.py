# amaranth: UnusedElaboratable=no
"""Selector in amaranth.sim: RW multiplexing and the parallel-partition row routing."""

import itertools

import pytest
from amaranth.sim import Simulator

from xbarflow.flow.core.config import ChipConfig
from xbarflow.hdl.selector import Selector

PARTITION_ROWS = (3, 3, 2, 2)      # uneven: 10 rows, the first partitions one row longer
COLS = 5


def expected_rows(partition_rows, row, enables):
    starts = [sum(partition_rows[:p]) for p in range(len(partition_rows))]
    value = 0
    for p, (start, n) in enumerate(zip(starts, partition_rows)):
        if enables >> p & 1 and row < n:
            value |= 1 << (start + row)
    return value


def run(dut, bench):
    sim = Simulator(dut)

    async def main(ctx):
        await bench(ctx)

    sim.add_testbench(main)
    sim.run()


def test_write_mode_routes_every_row_col_and_partition_mix():
    dut = Selector(PARTITION_ROWS, COLS)
    assert len(dut.prog_row_sel) == sum(PARTITION_ROWS)

    async def bench(ctx):
        ctx.set(dut.rw_mode, 1)
        for row, col, enables in itertools.product(range(max(PARTITION_ROWS)), range(COLS),
                                                   range(1 << len(PARTITION_ROWS))):
            ctx.set(dut.row, row)
            ctx.set(dut.col, col)
            ctx.set(dut.partition_en, enables)
            assert ctx.get(dut.prog_row_sel) == expected_rows(PARTITION_ROWS, row, enables), \
                (row, col, enables)
            assert ctx.get(dut.prog_col_sel) == 1 << col
        # The last local row exists only in the long partitions: short ones are absent.
        ctx.set(dut.row, 2)
        ctx.set(dut.partition_en, 0b1111)
        assert ctx.get(dut.prog_row_sel) == (1 << 2) | (1 << 5)

    run(dut, bench)


def test_inference_mode_hands_the_rows_to_the_dacs():
    dut = Selector(PARTITION_ROWS, COLS)

    async def bench(ctx):
        ctx.set(dut.rw_mode, 0)
        for row, col in itertools.product(range(max(PARTITION_ROWS)), range(COLS)):
            ctx.set(dut.row, row)
            ctx.set(dut.col, col)
            ctx.set(dut.partition_en, 0b1111)
            assert ctx.get(dut.prog_row_sel) == 0
            assert ctx.get(dut.prog_col_sel) == 0

    run(dut, bench)


def test_out_of_range_column_selects_nothing():
    dut = Selector(PARTITION_ROWS, COLS)

    async def bench(ctx):
        ctx.set(dut.rw_mode, 1)
        for col in range(COLS, 1 << len(dut.col)):
            ctx.set(dut.col, col)
            assert ctx.get(dut.prog_col_sel) == 0

    run(dut, bench)


def test_default_chip_geometry():
    cfg = ChipConfig()
    dut = Selector(cfg.partition_rows, cfg.crossbar.tile_cols)
    assert dut.partition_start == cfg.partition_start
    assert len(dut.prog_row_sel) == cfg.crossbar.tile_rows

    async def bench(ctx):
        ctx.set(dut.rw_mode, 1)
        ctx.set(dut.partition_en, (1 << cfg.crossbar.partitions) - 1)
        for row in range(max(cfg.partition_rows)):
            ctx.set(dut.row, row)
            assert ctx.get(dut.prog_row_sel) == expected_rows(
                cfg.partition_rows, row, (1 << cfg.crossbar.partitions) - 1)

    run(dut, bench)


@pytest.mark.parametrize("rows, cols", [((), 3), ((2, 0), 3), ((2,), 0)])
def test_rejects_bad_geometry(rows, cols):
    with pytest.raises(ValueError):
        Selector(rows, cols)
