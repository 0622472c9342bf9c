"""Window address generator: the feature-map addresses of every convolution (or pooling) window."""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["WindowGenerator", "window_element"]


def window_element(addr_width: int, rows: int) -> data.StructLayout:
    """Payload of one window element: the code address to read, or ``pad`` (a zero-padding
    element: code 0, nothing to read, ``addr`` is 0), its im2col ``row`` (of `rows`), the two
    end-of strobes, and ``slide`` (the window slides on from the previous position: only its new
    columns are offered)."""
    return data.StructLayout({
        "addr": addr_width,
        "pad": 1,
        "row": range(max(2, rows)),
        "last_in_window": 1,
        "last_position": 1,
        "slide": 1,
    })


class WindowGenerator(wiring.Component):
    """On ``start``, walks the output positions of a convolution over an H x W x C_in map at
    ``base`` (layout HWC, channel fastest: element (y, x, c) at ``base + (y*W + x)*C_in + c``)
    and, per position, offers the K*K*C_in elements of its window in im2col row order, row
    ``r = (ky*K + kx)*C_in + c``.

    Positions run in raster order (oy outer, ox inner), ``H_out = (H + 2P - K) // S + 1`` of
    them down and ``W_out`` across. The window of (oy, ox) reads input
    (oy*S - P + ky, ox*S - P + kx, c); outside the map the element is padding (``pad``).
    With ``padding = 0`` this is also a pooling window walk (channels of a position together).

    With ``slide`` (and S < K), a position after the first of its output row offers only the
    window's S new columns (kx in [K - S, K), still in im2col row order): the consumer keeps the
    previous window and moves its columns S to the left (``slide`` is high on those elements).

    Parameters
    ----------
    height, width, channels : int
        The input map's shape (H, W, C_in).
    kernel : int
        Window size K (square).
    stride, padding : int
        S >= 1 and zero padding P < K on every side.
    base : int
        Code address of the map's element (0, 0, 0).
    addr_width : int, optional
        Width of ``addr``; default just wide enough for the map's last element.
    slide : bool, optional
        Offer only the new columns of a window that slides on along its output row.

    Attributes
    ----------
    start : In(1)
        One-cycle pulse: walk every position once (ignored while ``busy``).
    busy : Out(1)
        A walk is under way (from the clock after ``start`` until its last element is taken).
    elements : Out(stream.Signature(window_element(addr_width, K*K*C_in)))
        The elements, one per clock at most: an element is taken in a clock where ``valid``
        and ``ready`` are both high; ``valid`` and the payload never depend on ``ready``, so
        the consumer may stall for as long as it likes. ``last_in_window`` marks the window's
        last element (row K*K*C_in - 1), ``last_position`` every element of the last position.
    """

    def __init__(self, *, height: int, width: int, channels: int, kernel: int,
                 stride: int = 1, padding: int = 0, base: int = 0, addr_width: int | None = None,
                 slide: bool = False):
        for name, value in (("height", height), ("width", width), ("channels", channels),
                            ("kernel", kernel), ("stride", stride)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0 <= padding < kernel:
            raise ValueError(f"padding must be in 0..kernel-1, got {padding}")
        if kernel > min(height, width) + 2 * padding:
            raise ValueError(f"a {kernel} x {kernel} window does not fit a padded "
                             f"{height} x {width} map")
        if base < 0:
            raise ValueError(f"base must be >= 0, got {base}")
        self.height, self.width, self.channels = height, width, channels
        self.kernel, self.stride, self.padding, self.base = kernel, stride, padding, base
        self.slide = bool(slide) and stride < kernel
        self.out_height = (height + 2 * padding - kernel) // stride + 1
        self.out_width = (width + 2 * padding - kernel) // stride + 1
        last = base + height * width * channels - 1
        self.addr_width = addr_width if addr_width is not None else max(1, last.bit_length())
        if last >= 1 << self.addr_width:
            raise ValueError(f"address {last} does not fit {self.addr_width} bits")
        super().__init__({
            "start": In(1),
            "busy": Out(1),
            "elements": Out(stream.Signature(window_element(self.addr_width,
                                                            kernel * kernel * channels))),
        })

    def elaborate(self, platform):
        m = Module()
        H, W, C, K, S, P = (self.height, self.width, self.channels, self.kernel,
                            self.stride, self.padding)
        # At least one bit each: a counter of one value would be a zero-width net in the Verilog.
        oy = Signal(range(max(2, self.out_height)), name="out_y")
        ox = Signal(range(max(2, self.out_width)), name="out_x")
        ky = Signal(range(max(2, K)), name="kernel_y")
        kx = Signal(range(max(2, K)), name="kernel_x")
        c = Signal(range(max(2, C)), name="channel")
        # Top-left input coordinate of the window, oy*S - P and ox*S - P, kept as running sums.
        y0 = Signal(range(-P, H + 1), name="window_y", init=-P)
        x0 = Signal(range(-P, W + 1), name="window_x", init=-P)
        # The input coordinate of the element, y0 + ky and x0 + kx; outside the map it is padding.
        # Only the sides that padding can reach are checked (no constant compares in the Verilog).
        iy, ix = y0 + ky, x0 + kx
        beyond_y = (self.out_height - 1) * S - P + K - 1 >= H
        beyond_x = (self.out_width - 1) * S - P + K - 1 >= W
        outside = [iy[-1], ix[-1]] if P else []              # negative: the sign bit
        outside += [iy > H - 1] if beyond_y else []
        outside += [ix > W - 1] if beyond_x else []
        pad = Cat(outside).any() if outside else Const(0, 1)

        out = self.elements
        row_addr = (iy.as_unsigned() * W + ix.as_unsigned()) * C + c
        # A sliding window starts its columns at K - S after the first position of a row.
        sliding = (ox != 0) if self.slide else Const(0, 1)
        first_kx = Mux(sliding, K - S, 0) if self.slide else 0
        m.d.comb += [
            out.payload.pad.eq(pad),
            out.payload.row.eq((ky * K + kx) * C + c),
            out.payload.slide.eq(sliding),
            out.payload.addr.eq(Mux(pad, 0, self.base + row_addr) if outside else self.base + row_addr),
            out.payload.last_in_window.eq((c == C - 1) & (kx == K - 1) & (ky == K - 1)),
            out.payload.last_position.eq((ox == self.out_width - 1) & (oy == self.out_height - 1)),
            self.busy.eq(out.valid),
        ]

        with m.If(~out.valid & self.start):
            m.d.sync += [out.valid.eq(1), oy.eq(0), ox.eq(0), ky.eq(0), kx.eq(0), c.eq(0),
                         y0.eq(-P), x0.eq(-P)]
        with m.If(out.valid & out.ready):
            # Odometer: channel, then kernel column, kernel row, output column, output row.
            with m.If(c != C - 1):
                m.d.sync += c.eq(c + 1)
            with m.Else():
                m.d.sync += c.eq(0)
                with m.If(kx != K - 1):
                    m.d.sync += kx.eq(kx + 1)
                with m.Else():
                    m.d.sync += kx.eq(first_kx)
                    with m.If(ky != K - 1):
                        m.d.sync += ky.eq(ky + 1)
                    with m.Else():
                        m.d.sync += ky.eq(0)
                        with m.If(ox != self.out_width - 1):
                            # The next position of the row slides on: its new columns only.
                            m.d.sync += [ox.eq(ox + 1), x0.eq(x0 + S),
                                         kx.eq(K - S if self.slide else 0)]
                        with m.Else():
                            m.d.sync += [ox.eq(0), x0.eq(-P), kx.eq(0)]
                            with m.If(oy != self.out_height - 1):
                                m.d.sync += [oy.eq(oy + 1), y0.eq(y0 + S)]
                            with m.Else():
                                m.d.sync += out.valid.eq(0)
        return m
