# amaranth: UnusedElaboratable=no
"""The whole chip (`Top`) in amaranth.sim for a layered network: the host driver, over the UART
pins, writes the image with WRITE_BUF into the feature-map memory, REQUANT_MULT, and START; the
fake analog side of tests/support/tiny_cnn.py answers; RESULT, the sums read back with READ_BUF
and every tile event equal the plain reference of that file."""

import numpy as np
from amaranth.sim import Simulator

from xbarflow.flow.data import pack_codes
from xbarflow.flow.host.driver import HostDriver
from xbarflow.hdl.protocol import Reg
from xbarflow.hdl.top import Top

from tests.support.sim_uart import SimUart, uart_tx_monitor
from tests.support.tiny_cnn import fake_analog, reference, tiny_cfg

DIVIDER = 4


def test_tiny_cnn_through_the_host_protocol():
    cfg = tiny_cfg(**{"host.interface": "uart", "host.uart_divider": DIVIDER})
    top = Top(cfg)
    rng = np.random.default_rng(17)       # the seed of a spread of classes (test_layered_controller)
    weights = [rng.integers(-2, 3, size=shape).tolist() for shape in cfg.network.layer_shapes]
    images = rng.integers(0, 16, size=(3, 36)).tolist()
    mults = [21, 30]
    events, received, seen = [], [], {"classes": [], "sums": [], "cycles": []}

    async def analog(ctx):
        await fake_analog(ctx, top, cfg, weights, events)

    async def monitor(ctx):
        await uart_tx_monitor(ctx, top, DIVIDER, received)

    async def host(ctx):
        ctx.set(top.uart_rx, 1)
        await ctx.tick().repeat(10)
        drv = HostDriver(SimUart(ctx, top, DIVIDER, received), cfg)
        await drv.check_identity()
        await drv.write_reg(Reg.REQUANT_MULT, mults[0] | mults[1] << 8)
        for img in images:
            seen["classes"].append(await drv.classify(pack_codes(np.array(img), cfg.quant.dac_bits)))
            seen["sums"].append(await drv.read_outputs())
            seen["cycles"].append(await drv.read_reg(Reg.CYCLES_TOTAL))

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(analog, background=True)
    sim.add_testbench(monitor, background=True)
    sim.add_testbench(host)
    sim.run()

    expected = [reference(img, weights, mults, padding=1, pool="max", activation="relu")
                for img in images]
    assert events == [e for ev, _, _ in expected for e in ev]
    assert seen["sums"] == [sums for _, sums, _ in expected]
    assert seen["classes"] == [cls for _, _, cls in expected]
    assert len(set(seen["cycles"])) == 1 and seen["cycles"][0] > 0

