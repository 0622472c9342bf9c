"""The host command layer (see `xbarflow.hdl.protocol`): receiver, executor and transmitter joined by
streams.

Data flow::

    rx ──> FrameReceiver ──frames──> CommandExecutor ──responses──> FrameTransmitter ──> tx
                 │                      ▲       │    <──payload───
                 └───────staging────────┘       └──> registers, input buffer, target memory,
                                                     output buffer, start pulses

* `xbarflow.hdl.frame_receiver.FrameReceiver` hunts for SYNC, reads a request frame through the rx FIFO,
  checks CRC, command, length and address, and offers the frame on a stream; its payload
  bytes go into the executor's staging memory as they arrive.
* `xbarflow.hdl.command_executor.CommandExecutor` answers a bad frame with NACK (BUSY too), or acts
  on it, and hands the response header to the transmitter, answering its payload reads.
* `xbarflow.hdl.frame_transmitter.FrameTransmitter` writes the response frame with its CRC into the
  tx FIFO, which drains at the pace of the link.

A frame is taken from the receiver only once its response is in the tx FIFO, so the three
work on one frame at a time and its latency is fixed: the SYNC of a NACK is written two
clocks after the frame's CRC byte left the rx FIFO, that of an ACK three (plus the commit of
a WRITE_BUF / WRITE_TARGETS, one clock per byte).
``abort`` (the SPI deselect) cuts the request stream where it happened; from the abort
pulse until the receiver has parsed it, responses are discarded (`FrameReceiver`).
"""

# No `from __future__ import annotations` here: wiring.Component reads the port annotations.
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from . import protocol
from .command_executor import CommandExecutor
from .frame_receiver import RX_FIFO_DEPTH, FrameReceiver
from .frame_transmitter import TX_FIFO_DEPTH, FrameTransmitter
from .ports import FrameCountersSignature, ReadSignature, RegisterSignature, WriteSignature

__all__ = ["CommandLayer", "RX_FIFO_DEPTH", "TX_FIFO_DEPTH"]


class CommandLayer(wiring.Component):
    """Parses request frames from ``rx``, executes them, and writes response frames to ``tx``.

    Parameters
    ----------
    input_bytes, output_bytes, target_bytes, timeout_cycles
        The buffer bounds and the frame timeout that `FrameReceiver` checks (see there);
        ``target_bytes`` defaults to 0 (no target memory: every WRITE_TARGETS is answered
        NACK BAD_ADDR), ``timeout_cycles`` to `protocol.FRAME_TIMEOUT_CYCLES`.

    Attributes
    ----------
    rx : In(stream.Signature(8))
        Received bytes (`FrameReceiver.rx`).
    tx : Out(stream.Signature(8))
        Response bytes, straight from the tx FIFO (`FrameTransmitter.tx`).
    abort : In(1)
        Pulse: drop a partial request and any pending response (wire to SPI ``deselect``).
    registers, input_buffer, targets, output_buffer, start, start_program, busy
        The `CommandExecutor` ports of those names, passed through: the register port, the
        buffer and target memory writes of a committed frame, the output buffer reads of
        READ_BUF, the START and START_PROGRAM pulses, and the busy input that makes START,
        START_PROGRAM, WRITE_BUF and WRITE_TARGETS answer NACK BUSY.
    counters : Out(FrameCountersSignature())
        Frames executed, and frames answered NACK or dropped, by cause (FRAMES_OK, ERR_*).
    clear_errors : In(1)
        Pulse: clear the four ``err_*`` counters (``frames_ok`` keeps counting).
    """

    def __init__(self, input_bytes: int, output_bytes: int,
                 timeout_cycles: int = protocol.FRAME_TIMEOUT_CYCLES, *, target_bytes: int = 0):
        if not 1 <= input_bytes <= 1 << 16:
            raise ValueError(f"input_bytes must be in 1..65536, got {input_bytes}")
        if not 1 <= output_bytes <= 1 << 16:
            raise ValueError(f"output_bytes must be in 1..65536, got {output_bytes}")
        if timeout_cycles < 2:
            raise ValueError(f"timeout_cycles must be >= 2, got {timeout_cycles}")
        if not 0 <= target_bytes <= 1 << 16:
            raise ValueError(f"target_bytes must be in 0..65536, got {target_bytes}")
        self.target_bytes = target_bytes
        self.input_bytes = input_bytes
        self.output_bytes = output_bytes
        self.timeout_cycles = timeout_cycles
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "abort": In(1),
            "registers": Out(RegisterSignature()),
            "input_buffer": Out(WriteSignature(addr_width=16)),
            "targets": Out(WriteSignature(addr_width=16)),
            "output_buffer": Out(ReadSignature(addr_width=16)),
            "start": Out(1),
            "start_program": Out(1),
            "busy": In(1),
            "counters": Out(FrameCountersSignature()),
            "clear_errors": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.receiver = receiver = FrameReceiver(
            input_bytes=self.input_bytes, output_bytes=self.output_bytes,
            target_bytes=self.target_bytes, timeout_cycles=self.timeout_cycles)
        m.submodules.executor = executor = CommandExecutor()
        m.submodules.transmitter = transmitter = FrameTransmitter()

        connect(m, flipped(self.rx), receiver.rx)
        connect(m, receiver.frames, executor.frames)
        connect(m, receiver.staging, executor.staging)
        connect(m, executor.responses, transmitter.responses)
        connect(m, transmitter.payload, executor.payload)
        connect(m, transmitter.tx, flipped(self.tx))
        for name in ("registers", "input_buffer", "targets", "output_buffer"):
            connect(m, getattr(executor, name), flipped(getattr(self, name)))

        counters = self.counters
        m.d.comb += [
            receiver.abort.eq(self.abort),
            transmitter.discard.eq(receiver.discarding),
            self.start.eq(executor.start),
            self.start_program.eq(executor.start_program),
            executor.busy.eq(self.busy),
            counters.frames_ok.eq(executor.frames_ok),
            counters.err_crc.eq(executor.err_crc),
            counters.err_cmd.eq(executor.err_cmd),
            counters.err_len.eq(executor.err_len),
            counters.err_timeout.eq(receiver.dropped),
            executor.clear_errors.eq(self.clear_errors),
            receiver.clear_errors.eq(self.clear_errors),
        ]
        return m
