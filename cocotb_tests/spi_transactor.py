"""A frame-level SPI host transactor in HDL, for fast co-simulation (cocotb only, not silicon).

The bit-banged `cocotb_tests.spi_master.SpiMaster` costs two Python awaits per SPI bit (about
2,200 per image), which bounds a co-simulation at ~20 images/s. This module moves the bit
shifting into the simulator: `SpiHostTransactor` (Amaranth) does in HDL exactly what
`SpiTransport.exchange` does over `SpiMaster` -- select, send the request, clock 0x00 filler
bytes until SYNC comes back, read the header and the LEN + 1 remaining response bytes,
deselect -- with the same bytes on the wire and the same SCLK/CS timing in clocks, only
shifted half a clock earlier (the BFM changes pins on falling clock edges, the transactor on
rising ones, so the chip's synchronisers sample every change at the same rising edge). Python
hands over a whole request frame and gets a whole response frame back: one await per frame.

`write_harness` wraps the generated chip (`xbarflow_top`, instantiated unchanged) in a
cocotb-only top level `xbarflow_harness`: every chip port is passed through under its own
name (so the analog bridge and any bench see the same `dut.*` handles), and the chip's SPI
pins come from the transactor while ``xtor_en`` is 1, or from the harness's own ``spi_*``
pins (the bit-banged reference BFM) while it is 0.

`TransactorTransport` is the `flow.host.Transport` over the harness ports, so `HostDriver`
runs unchanged on either transport.
"""

# No `from __future__ import annotations`: wiring.Component reads the port annotations.
import json
from pathlib import Path

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hdl import protocol

HARNESS_TOP = "xbarflow_harness"
REQ_BYTES = 6 + protocol.MAX_PAYLOAD      # longest request frame
RESP_BYTES = 4 + protocol.MAX_PAYLOAD     # longest response frame
MAX_FILLER = 512                          # as SpiTransport: filler bytes before giving up
SPI_PINS = ("spi_sclk", "spi_cs_n", "spi_mosi", "spi_miso")


class SpiHostTransactor(wiring.Component):
    """SPI mode 0 host, MSB first, one request/response frame exchange per ``tag`` change.

    Parameters
    ----------
    half : int
        SCLK half period in clocks (``spi_clk_div // 2``, >= 2).
    max_filler : int
        Filler bytes clocked while hunting for the response's SYNC before giving up.

    Attributes
    ----------
    req : In(REQ_BYTES * 8)
        Request frame, first byte in the top 8 bits (left-aligned).
    req_len : In(16)
        Request length in bytes (1 .. REQ_BYTES).
    tag : In(8)
        A new value starts an exchange (when idle).
    resp : Out(RESP_BYTES * 8)
        Response frame, last byte in the low 8 bits (right-aligned).
    resp_len : Out(16)
        Response bytes received (SYNC included).
    done : Out(1)
        One-cycle pulse when the exchange has finished (CS is high again).
    done_tag : Out(8)
        ``tag`` of the last finished exchange.
    error : Out(1)
        The last exchange saw no SYNC within ``max_filler`` filler bytes.
    sclk, cs_n, mosi : Out(1)
        SPI pins to the chip.
    miso : In(1)
        SPI data from the chip.
    """

    def __init__(self, half: int, max_filler: int = MAX_FILLER):
        if half < 2:
            raise ValueError(f"SCLK half period must be >= 2 clocks, got {half}")
        self.half = half
        self.max_filler = max_filler
        super().__init__({
            "req": In(REQ_BYTES * 8),
            "req_len": In(16),
            "tag": In(8),
            "resp": Out(RESP_BYTES * 8),
            "resp_len": Out(16),
            "done": Out(1),
            "done_tag": Out(8),
            "error": Out(1),
            "sclk": Out(1),
            "cs_n": Out(1, init=1),
            "mosi": Out(1),
            "miso": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        h = self.half

        timer = Signal(range(2 * h + 1))
        req_shift = Signal(REQ_BYTES * 8)
        sent = Signal(16)                  # request bytes whose transfer has begun
        tx_byte = Signal(8)                # byte being shifted out, MSB first
        rx_byte = Signal(8)                # bits received so far in this byte
        bit = Signal(range(8))
        fillers = Signal(range(self.max_filler + 1))
        remaining = Signal(16)             # response bytes still to read after the header
        received = Cat(self.miso, rx_byte[:7])   # the byte as it completes at its 8th sample

        # Byte phases of one exchange (what the byte just completed means).
        SEND, HUNT, HEADER, REST = range(4)
        phase = Signal(range(4))

        def next_byte(value):
            m.d.sync += [tx_byte.eq(value), self.mosi.eq(value[7]), bit.eq(0),
                         timer.eq(h - 1)]

        def store(byte):
            m.d.sync += [self.resp.eq(Cat(byte, self.resp[:-8])),
                         self.resp_len.eq(self.resp_len + 1)]

        m.d.sync += self.done.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.tag != self.done_tag):
                    m.d.sync += [
                        self.cs_n.eq(0), timer.eq(2 * h - 1),
                        req_shift.eq(self.req), sent.eq(0), phase.eq(SEND),
                        self.resp_len.eq(0), self.error.eq(0), fillers.eq(0),
                    ]
                    m.next = "SELECT"

            with m.State("SELECT"):          # CS setup: two half periods before bit 7's half
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    first = req_shift[-8:]
                    next_byte(first)
                    m.d.sync += [req_shift.eq(req_shift << 8), sent.eq(1)]
                    m.next = "LOW"

            with m.State("LOW"):             # MOSI valid, SCLK low
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    # Sample MISO as SCLK rises (the value before this edge, as the BFM sees it).
                    m.d.sync += [self.sclk.eq(1), rx_byte.eq(received), timer.eq(h - 1)]
                    m.next = "HIGH"

            with m.State("HIGH"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += self.sclk.eq(0)
                    with m.If(bit != 7):
                        m.d.sync += [bit.eq(bit + 1), tx_byte.eq(tx_byte << 1),
                                     self.mosi.eq(tx_byte[6]), timer.eq(h - 1)]
                        m.next = "LOW"
                    with m.Else():
                        byte = rx_byte
                        finish = Signal()
                        with m.Switch(phase):
                            with m.Case(SEND):
                                with m.If(sent == self.req_len):
                                    m.d.sync += phase.eq(HUNT)
                            with m.Case(HUNT):
                                with m.If(byte == protocol.SYNC):
                                    store(byte)
                                    m.d.sync += [phase.eq(HEADER), remaining.eq(2)]
                                with m.Elif(fillers == self.max_filler - 1):
                                    m.d.sync += self.error.eq(1)
                                    m.d.comb += finish.eq(1)
                                with m.Else():
                                    m.d.sync += fillers.eq(fillers + 1)
                            with m.Case(HEADER):
                                store(byte)
                                m.d.sync += remaining.eq(remaining - 1)
                                with m.If(remaining == 1):      # LEN: then payload + CRC
                                    m.d.sync += [phase.eq(REST), remaining.eq(byte + 1)]
                            with m.Case(REST):
                                store(byte)
                                m.d.sync += remaining.eq(remaining - 1)
                                with m.If(remaining == 1):
                                    m.d.comb += finish.eq(1)
                        with m.If(finish):
                            m.d.sync += timer.eq(h - 1)
                            m.next = "HOLD"
                        with m.Else():
                            send_more = (phase == SEND) & (sent != self.req_len)
                            next_byte(Mux(send_more, req_shift[-8:], Const(0, 8)))
                            with m.If(send_more):
                                m.d.sync += [req_shift.eq(req_shift << 8), sent.eq(sent + 1)]
                            m.next = "LOW"

            with m.State("HOLD"):            # CS hold after the last falling SCLK edge
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [self.cs_n.eq(1), timer.eq(2 * h - 1)]
                    m.next = "GAP"

            with m.State("GAP"):             # CS high time between windows
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [self.done.eq(1), self.done_tag.eq(self.tag)]
                    m.next = "IDLE"
        return m


class Harness(wiring.Component):
    """``xbarflow_top`` (an Instance, from its own Verilog) plus the transactor."""

    def __init__(self, ports: list[dict], half: int):
        self.chip_ports = [p for p in ports if p["name"] not in ("clk", "rst")]
        names = {p["name"] for p in self.chip_ports}
        if not set(SPI_PINS) <= names:
            raise ValueError("the HDL SPI transactor needs a chip with SPI host pins")
        self.half = half
        members = {p["name"]: (In if p["dir"] == "in" else Out)(p["width"])
                   for p in self.chip_ports}
        members.update({
            "xtor_en": In(1),
            "xtor_req": In(REQ_BYTES * 8),
            "xtor_req_len": In(16),
            "xtor_tag": In(8),
            "xtor_resp": Out(RESP_BYTES * 8),
            "xtor_resp_len": Out(16),
            "xtor_done": Out(1),
            "xtor_done_tag": Out(8),
            "xtor_error": Out(1),
        })
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.xtor = xtor = SpiHostTransactor(self.half)
        for name in ("req", "req_len", "tag"):
            m.d.comb += getattr(xtor, name).eq(getattr(self, f"xtor_{name}"))
        for name in ("resp", "resp_len", "done", "done_tag", "error"):
            m.d.comb += getattr(self, f"xtor_{name}").eq(getattr(xtor, name))

        pins = {name: Signal(name=f"chip_{name}") for name in SPI_PINS}
        en = self.xtor_en
        m.d.comb += [
            pins["spi_sclk"].eq(Mux(en, xtor.sclk, self.spi_sclk)),
            pins["spi_cs_n"].eq(Mux(en, xtor.cs_n, self.spi_cs_n)),
            pins["spi_mosi"].eq(Mux(en, xtor.mosi, self.spi_mosi)),
            xtor.miso.eq(pins["spi_miso"]),
            self.spi_miso.eq(pins["spi_miso"]),
        ]
        conns = {"i_clk": ClockSignal(), "i_rst": ResetSignal()}
        for p in self.chip_ports:
            name = p["name"]
            signal = pins[name] if name in pins else getattr(self, name)
            conns[("i_" if p["dir"] == "in" else "o_") + name] = signal
        m.submodules.chip = Instance("xbarflow_top", **conns)
        return m


def write_harness(sidecar: Path, out_dir: Path, spi_clk_div: int) -> Path:
    """Write the harness Verilog for the chip described by its JSON sidecar; return its path."""
    from amaranth.back import verilog as amaranth_verilog

    meta = json.loads(Path(sidecar).read_text())
    if meta["top"] != "xbarflow_top":
        raise ValueError(f"harness expects the chip top 'xbarflow_top', got {meta['top']!r}")
    harness = Harness(meta["ports"], spi_clk_div // 2)
    text = amaranth_verilog.convert(harness, name=HARNESS_TOP, emit_src=False)
    out = Path(out_dir) / f"{HARNESS_TOP}.v"
    out.write_text(text)
    return out


class TransactorTransport:
    """`flow.host.Transport` over the harness's transactor: one await per frame exchange."""

    def __init__(self, dut):
        self.dut = dut
        self._tag = 0
        dut.xtor_tag.value = 0
        dut.xtor_en.value = 1

    async def exchange(self, request: bytes) -> bytes:
        from cocotb.triggers import RisingEdge

        request = bytes(request)
        if not 1 <= len(request) <= REQ_BYTES:
            raise ValueError(f"request of {len(request)} bytes; 1..{REQ_BYTES} allowed")
        dut = self.dut
        dut.xtor_req.value = int.from_bytes(request.ljust(REQ_BYTES, b"\x00"), "big")
        dut.xtor_req_len.value = len(request)
        self._tag = (self._tag + 1) & 0xFF
        dut.xtor_tag.value = self._tag
        await RisingEdge(dut.xtor_done)
        if int(dut.xtor_done_tag.value) != self._tag:
            raise protocol.ProtocolError("SPI transactor finished a different exchange")
        if int(dut.xtor_error.value):
            raise protocol.ProtocolError(f"no response: no SYNC within {MAX_FILLER} filler bytes")
        n = int(dut.xtor_resp_len.value)
        resp = dut.xtor_resp.value.to_unsigned() & ((1 << (8 * n)) - 1)
        return resp.to_bytes(n, "big")
