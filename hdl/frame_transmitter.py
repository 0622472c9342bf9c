"""The frame transmitter of the command layer: response framing with CRC into the tx FIFO.

For each response header taken from ``responses`` it writes ``SYNC STATUS LEN payload CRC``
into the tx FIFO, one byte per clock while the FIFO has room, reading the payload bytes from
the executor through ``payload`` and running a CRC processor (`protocol.CRC.create()`) over
STATUS, LEN and the payload. The tx FIFO (`TX_FIFO_DEPTH`: one maximal response) drains at
the pace of the link, so the next request is parsed while a response is still going out.

FSM: IDLE (SYNC is written in the clock a header arrives) -> STATUS -> LEN -> (PAYLOAD) ->
CRC -> IDLE. The header is taken in the clock the CRC is written.
"""

# No `from __future__ import annotations` here: amaranth reads the Struct annotations.
from amaranth.hdl import Module, ResetInserter, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from . import protocol
from .ports import ReadSignature

__all__ = ["FrameTransmitter", "ResponseHeader", "TX_FIFO_DEPTH"]

TX_FIFO_DEPTH = 4 + protocol.MAX_PAYLOAD   # one maximal response frame


class ResponseHeader(data.Struct):
    """A response to write: its STATUS byte and its payload length (LEN).

    The ``responses`` stream carries its bits as a plain payload that both ends view as a
    `ResponseHeader` (as `xbarflow.hdl.frame_receiver.Frame`, to keep per-field wires out of the
    Verilog).
    """
    status: unsigned(8)
    length: unsigned(8)


class FrameTransmitter(wiring.Component):
    """Writes response frames into the tx FIFO; ``tx`` is the FIFO's output.

    Attributes
    ----------
    responses : In(stream.Signature(ResponseHeader.as_shape().size))
        Responses to write, the payload a `ResponseHeader`. The header must hold while
        ``valid``; it is taken (``ready``) in the clock the frame's CRC is written, so its
        producer knows the response is out.
    payload : Out(ReadSignature(addr_width=8))
        Reads of the payload: byte ``payload.addr`` (0 .. LEN-1) is taken from
        ``payload.data`` in the clock it is written into the FIFO.
    tx : Out(stream.Signature(8))
        Response bytes, straight from the tx FIFO.
    discard : In(1)
        While high the tx FIFO is held empty: bytes written meanwhile are dropped.
    """

    responses: In(stream.Signature(ResponseHeader.as_shape().size))
    payload: Out(ReadSignature(addr_width=8))
    tx: Out(stream.Signature(8))
    discard: In(1)

    def elaborate(self, platform):
        m = Module()
        header = ResponseHeader(self.responses.payload)

        # -- tx FIFO: whole response frames; held empty while discarding ---------------------
        fifo = SyncFIFOBuffered(width=8, depth=TX_FIFO_DEPTH)
        m.submodules.tx_fifo = ResetInserter(self.discard)(fifo)
        m.d.comb += [
            self.tx.payload.eq(fifo.r_data),
            self.tx.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.tx.ready),
        ]

        m.submodules.crc = crc = protocol.CRC.create()
        sent = self.payload.addr    # payload bytes written so far
        pushed = Signal()           # a byte goes into the FIFO this clock
        m.d.comb += [
            pushed.eq(fifo.w_en & fifo.w_rdy),
            crc.data.eq(fifo.w_data),
        ]

        with m.FSM(name="transmitter") as fsm:
            with m.State("IDLE"):
                m.d.comb += fifo.w_data.eq(protocol.SYNC)
                with m.If(pushed):
                    m.d.sync += sent.eq(0)
                    m.next = "STATUS"

            with m.State("STATUS"):
                m.d.comb += fifo.w_data.eq(header.status)
                with m.If(pushed):
                    m.next = "LEN"

            with m.State("LEN"):
                m.d.comb += fifo.w_data.eq(header.length)
                with m.If(pushed):
                    m.next = "PAYLOAD"
                    with m.If(~header.length.any()):
                        m.next = "CRC"

            with m.State("PAYLOAD"):
                m.d.comb += fifo.w_data.eq(self.payload.data)
                with m.If(pushed):
                    m.d.sync += sent.eq(sent + 1)
                    with m.If(sent == header.length - 1):
                        m.next = "CRC"

            with m.State("CRC"):
                m.d.comb += fifo.w_data.eq(crc.crc)
                with m.If(pushed):
                    m.next = "IDLE"

        # Every state writes a byte, IDLE only the SYNC of a waiting response; the CRC runs
        # over STATUS, LEN and the payload, and the header is taken with the CRC byte.
        idle, last = fsm.ongoing("IDLE"), fsm.ongoing("CRC")
        m.d.comb += [
            fifo.w_en.eq(~idle | self.responses.valid),
            crc.start.eq(idle & pushed),
            crc.valid.eq(~idle & ~last & pushed),
            self.responses.ready.eq(last & pushed),
        ]
        return m
