"""A host transport for amaranth.sim testbenches of the whole `xbarflow.hdl.top.Top` over its
UART pins (imported by tests/hdl/test_programmer.py and tests/hdl/test_top.py)."""

from xbarflow.hdl import protocol

__all__ = ["SimUart", "uart_tx_monitor"]


class SimUart:
    """A `xbarflow.flow.host.driver.Transport` bit-banging 8N1 on the Top's uart_rx / reading uart_tx."""

    def __init__(self, ctx, top, divider, received):
        self.ctx, self.top, self.divider, self.received = ctx, top, divider, received

    async def exchange(self, request):
        ctx = self.ctx
        for byte in request:
            for level in [0] + [(byte >> k) & 1 for k in range(8)] + [1]:
                ctx.set(self.top.uart_rx, level)
                await ctx.tick().repeat(self.divider)
        for _ in range(20_000):
            buf = self.received
            if len(buf) >= 3 and len(buf) >= protocol.response_length(bytes(buf[:3])):
                n = protocol.response_length(bytes(buf[:3]))
                frame = bytes(buf[:n])
                del buf[:n]
                return frame
            await ctx.tick()
        raise AssertionError(f"no response: {bytes(self.received).hex()}")


async def uart_tx_monitor(ctx, top, divider, received):
    """Background testbench: decode the Top's uart_tx (8N1, `divider` clocks per bit) into
    `received`, one byte per stop bit. Sample-driven (no nested awaits), so it ends cleanly."""
    count, bits = None, []
    async for _, _, txd in ctx.tick().sample(top.uart_tx):
        if count is None:
            if not txd:                       # start bit: sample each bit in its middle
                count, bits = divider // 2 + divider, []
            continue
        count -= 1
        if count == 0:
            bits.append(txd)
            count = divider
            if len(bits) == 9:
                assert bits[8] == 1, "stop bit"
                received.append(sum(b << k for k, b in enumerate(bits[:8])))
                count = None
