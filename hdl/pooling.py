"""Pooling unit: max or average pooling of a feature map into another, code by code."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .ports import CodeReadSignature, CodeWriteSignature
from .window import WindowGenerator

__all__ = ["Pooling"]


class Pooling(wiring.Component):
    """On ``start``, pools an H x W x C map at ``in_base`` into the map at ``out_base``.

    Output (py, px, c) (raster, channel fastest, at ``out_base + (py*W_out + px)*C + c``) is
    the max, or the floor of the mean (``sum >> log2(size*size)``), of input
    (py*S + dy, px*S + dx, c) over dy, dx in [0, size); no padding, so
    ``W_out = (W - size) // S + 1`` and the rows and columns past the last whole window are
    never read. A `WindowGenerator` (K = size, P = 0) walks each position's window with its
    channels together; one accumulator per channel takes each code one clock after its read,
    and after the window the C results are written in channel order, one per clock.

    Parameters
    ----------
    mode : "max" | "avg"
    size, stride : int
        Pooling window (square) and its step.
    height, width, channels : int
        The input map's shape.
    in_base, out_base : int
        Code addresses of the input and output maps.
    addr_width, dac_bits : int
        Widths of the feature-map ports.

    Attributes
    ----------
    start : In(1)
        One-cycle pulse: pool the whole map (ignored while ``busy``).
    busy : Out(1)
        Pooling is under way (from the clock after ``start`` to the last write).
    read : Out(CodeReadSignature(addr_width, dac_bits))
        Reads of the input map (`xbarflow.hdl.feature_map.FeatureMap.code_read`).
    write : Out(CodeWriteSignature(addr_width, dac_bits))
        Writes of the output map (`xbarflow.hdl.feature_map.FeatureMap.code_write`).
    """

    def __init__(self, mode: str, *, size: int, stride: int, height: int, width: int,
                 channels: int, in_base: int, out_base: int, addr_width: int, dac_bits: int):
        if mode not in ("max", "avg"):
            raise ValueError(f"pool mode must be max or avg, got '{mode}'")
        area = size * size
        if mode == "avg" and area & (area - 1):
            raise ValueError(f"an average over {size} x {size} is not a shift")
        self.mode, self.size, self.stride = mode, size, stride
        self.height, self.width, self.channels = height, width, channels
        self.in_base, self.out_base = in_base, out_base
        self.dac_bits, self.addr_width = dac_bits, addr_width
        self.out_height = (height - size) // stride + 1
        self.out_width = (width - size) // stride + 1
        if out_base + self.out_height * self.out_width * channels > 1 << addr_width:
            raise ValueError(f"the output map does not fit {addr_width} address bits")
        ports = dict(addr_width=addr_width, code_bits=dac_bits)
        super().__init__({
            "start": In(1),
            "busy": Out(1),
            "read": Out(CodeReadSignature(**ports)),
            "write": Out(CodeWriteSignature(**ports)),
        })

    def elaborate(self, platform):
        m = Module()
        C, b = self.channels, self.dac_bits
        shift = (self.size * self.size).bit_length() - 1
        m.submodules.window = window = WindowGenerator(
            height=self.height, width=self.width, channels=C, kernel=self.size,
            stride=self.stride, base=self.in_base, addr_width=self.addr_width)
        elements = window.elements

        acc_bits = b + shift if self.mode == "avg" else b
        acc = Array(Signal(acc_bits, name=f"pool_acc{c}") for c in range(C))
        channel = Signal(range(C))          # channel of the element taken now
        first_pass = Signal()               # the element is the first of its channel in the window
        # The element whose code arrives this clock (read one clock earlier).
        arriving = Signal()
        arriving_channel = Signal(range(C))
        arriving_first = Signal()
        out_addr = Signal(self.addr_width)
        k = Signal(range(C))
        last_position = Signal()

        take = elements.valid & elements.ready
        m.d.comb += [
            self.read.addr.eq(elements.payload.addr),
            self.read.en.eq(take),
        ]
        m.d.sync += [arriving.eq(take), arriving_channel.eq(channel), arriving_first.eq(first_pass)]
        with m.If(take):
            m.d.sync += channel.eq(Mux(channel == C - 1, 0, channel + 1))
            with m.If(channel == C - 1):
                m.d.sync += first_pass.eq(0)
            with m.If(elements.payload.last_in_window):
                m.d.sync += [first_pass.eq(1), last_position.eq(elements.payload.last_position)]

        code = self.read.data
        with m.If(arriving):
            old = acc[arriving_channel]
            if self.mode == "max":
                new = Mux(arriving_first | (code > old), code, old)
            else:
                new = Mux(arriving_first, code, old + code)
            m.d.sync += old.eq(new)

        result = acc[k] >> shift if self.mode == "avg" else acc[k]
        with m.FSM(name="pool"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [window.start.eq(1), out_addr.eq(self.out_base), channel.eq(0),
                                 first_pass.eq(1)]
                    m.next = "READ_WINDOW"
            with m.State("READ_WINDOW"):
                m.d.sync += window.start.eq(0)
                m.d.comb += [elements.ready.eq(1), self.busy.eq(1)]
                with m.If(take & elements.payload.last_in_window):
                    m.next = "LAST_CODE"
            with m.State("LAST_CODE"):
                # The window's last code lands in its accumulator at the end of this clock.
                m.d.comb += self.busy.eq(1)
                m.d.sync += k.eq(0)
                m.next = "WRITE_RESULTS"
            with m.State("WRITE_RESULTS"):
                m.d.comb += [self.busy.eq(1), self.write.en.eq(1), self.write.addr.eq(out_addr),
                             self.write.data.eq(result)]
                m.d.sync += [out_addr.eq(out_addr + 1), k.eq(k + 1)]
                with m.If(k == C - 1):
                    m.next = "IDLE"
                    with m.If(~last_position):
                        m.next = "READ_WINDOW"
        return m
