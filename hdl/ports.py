"""Named port groups between the chip's blocks (`xbarflow.hdl.top` joins them with `wiring.connect`).

Each signature is written from the side that drives the group's address or values (like
amaranth-soc's `csr.Signature`, which is the initiator's view); the other side takes it
flipped, as ``In(...)``:

* `RegisterSignature`: the command layer's port to the register file.
* `WriteSignature`: byte writes into a buffer (command layer -> input buffer, command layer
  -> programmer's target memory, frame receiver -> executor's staging memory).
* `ReadSignature`: combinational byte reads (command layer -> output buffer, frame
  transmitter -> command executor for the payload of a response).
* `CodeReadSignature`, `CodeWriteSignature`: one DAC code per clock from / into the
  feature-map memory (controller, pooling unit -> `xbarflow.hdl.feature_map.FeatureMap`).
* `FrameCountersSignature`: the command layer's frame counters, read through FRAMES_OK and
  ERR_*.
* `InferenceStatusSignature`: the controller's state and counters, read through STATUS,
  RESULT, CYCLES_* and INFERENCES.
* `ProgrammingStatusSignature`: the programmer's state and counters, read through STATUS
  and PROG_*.

The analog boundary is not grouped here: it is the chip's top-level ports, whose names the
benches and the sidecar depend on (`xbarflow.hdl.top.Top`).
"""

# No `from __future__ import annotations` here: wiring reads the member annotations.
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = [
    "CodeReadSignature", "CodeWriteSignature", "FrameCountersSignature", "InferenceStatusSignature", "PhaseCountersSignature",
    "ProgrammingStatusSignature", "ReadSignature", "RegisterSignature", "WriteSignature",
]


class RegisterSignature(wiring.Signature):
    """A register port, the initiator's view: a combinational read of ``addr``, and writes.

    Reads have no side effect, so there is no read strobe.

    Parameters
    ----------
    addr_width : int
        Register address width.
    data_width : int
        Register width.

    Members
    -------
    addr : Out(addr_width)
        Register address (`xbarflow.hdl.protocol.Reg`).
    r_data : In(data_width)
        The register at ``addr``, combinationally.
    w_data : Out(data_width)
        Write data, valid with ``w_stb``.
    w_stb : Out(1)
        Write ``w_data`` into the register at ``addr`` this clock.
    """

    def __init__(self, *, addr_width: int = 8, data_width: int = 32):
        self._addr_width = _width("addr_width", addr_width)
        self._data_width = _width("data_width", data_width)
        super().__init__({
            "addr": Out(addr_width),
            "r_data": In(data_width),
            "w_data": Out(data_width),
            "w_stb": Out(1),
        })

    @property
    def addr_width(self) -> int:
        return self._addr_width

    @property
    def data_width(self) -> int:
        return self._data_width

    def __eq__(self, other):
        return (type(other) is RegisterSignature and other.addr_width == self.addr_width
                and other.data_width == self.data_width)

    def __repr__(self):
        return f"RegisterSignature(addr_width={self.addr_width}, data_width={self.data_width})"


class _ByteSignature(wiring.Signature):
    """A byte port with an address of `addr_width` bits; equal to another of its class and width."""

    def __init__(self, addr_width: int, members: dict):
        self._addr_width = addr_width   # checked by the caller, before it builds `members`
        super().__init__(members)

    @property
    def addr_width(self) -> int:
        return self._addr_width

    def __eq__(self, other):
        return type(other) is type(self) and other.addr_width == self.addr_width

    def __repr__(self):
        return f"{type(self).__name__}(addr_width={self.addr_width})"


class _FixedSignature(wiring.Signature):
    """A signature without parameters: all of its class are equal."""

    def __eq__(self, other):
        return type(other) is type(self)

    def __repr__(self):
        return f"{type(self).__name__}()"


class WriteSignature(_ByteSignature):
    """A byte write port, the writer's view: one byte per clock at most.

    Parameters
    ----------
    addr_width : int
        Byte address width.

    Members
    -------
    addr : Out(addr_width)
        Byte address (the writer has checked it is in range).
    data : Out(8)
        Byte to store.
    en : Out(1)
        Store ``data`` at ``addr`` this clock.
    """

    def __init__(self, *, addr_width: int = 16):
        super().__init__(_width("addr_width", addr_width), {
            "addr": Out(addr_width),
            "data": Out(8),
            "en": Out(1),
        })


class ReadSignature(_ByteSignature):
    """A combinational byte read port, the reader's view: ``data`` follows ``addr`` in the same
    clock. Reads have no side effect.

    Parameters
    ----------
    addr_width : int
        Byte address width.

    Members
    -------
    addr : Out(addr_width)
        Byte address.
    data : In(8)
        The byte at ``addr``.
    """

    def __init__(self, *, addr_width: int = 16):
        super().__init__(_width("addr_width", addr_width), {
            "addr": Out(addr_width),
            "data": In(8),
        })


class _CodeSignature(wiring.Signature):
    """A code port of `addr_width` address bits and `code_bits` data bits; equal to another of
    its class and widths."""

    def __init__(self, addr_width: int, code_bits: int, members: dict):
        self._addr_width, self._code_bits = addr_width, code_bits   # checked by the caller
        super().__init__(members)

    @property
    def addr_width(self) -> int:
        return self._addr_width

    @property
    def code_bits(self) -> int:
        return self._code_bits

    def __eq__(self, other):
        return (type(other) is type(self) and other.addr_width == self.addr_width
                and other.code_bits == self.code_bits)

    def __repr__(self):
        return f"{type(self).__name__}(addr_width={self.addr_width}, code_bits={self.code_bits})"


class CodeReadSignature(_CodeSignature):
    """A synchronous code read port, the reader's view: ``data`` is the code at the ``addr`` of
    the last clock where ``en`` was high (one clock of latency), and holds while ``en`` is low.

    Parameters
    ----------
    addr_width : int
        Code address width.
    code_bits : int
        Code width (dac_bits).

    Members
    -------
    addr : Out(addr_width)
        Code address.
    en : Out(1)
        Read the code at ``addr`` this clock.
    data : In(code_bits)
        The code read, one clock after ``en``.
    """

    def __init__(self, *, addr_width: int, code_bits: int):
        super().__init__(_width("addr_width", addr_width), _width("code_bits", code_bits), {
            "addr": Out(addr_width),
            "en": Out(1),
            "data": In(code_bits),
        })


class CodeWriteSignature(_CodeSignature):
    """A code write port, the writer's view: one code per clock at most.

    Parameters
    ----------
    addr_width : int
        Code address width.
    code_bits : int
        Code width (dac_bits).

    Members
    -------
    addr : Out(addr_width)
        Code address.
    data : Out(code_bits)
        Code to store.
    en : Out(1)
        Store ``data`` at ``addr`` this clock.
    """

    def __init__(self, *, addr_width: int, code_bits: int):
        super().__init__(_width("addr_width", addr_width), _width("code_bits", code_bits), {
            "addr": Out(addr_width),
            "data": Out(code_bits),
            "en": Out(1),
        })


class PhaseCountersSignature(_FixedSignature):
    """The layered controller's per-phase clocks of the last inference (CYCLES_LOAD_WINDOW,
    CYCLES_ACCUMULATE, CYCLES_ACTIVATE, CYCLES_POOL), the controller's view.

    Members
    -------
    load_window, accumulate, activate, pool : Out(32)
        Clocks in LOAD_WINDOW (with SLIDE_WINDOW and LOAD_WINDOW_END), ACCUMULATE, ACTIVATE
        and POOL.
    """

    def __init__(self):
        super().__init__({name: Out(32) for name in ("load_window", "accumulate", "activate", "pool")})


class FrameCountersSignature(_FixedSignature):
    """The command layer's frame counters, the counting side's view (registers FRAMES_OK,
    ERR_CRC, ERR_CMD, ERR_LEN, ERR_TIMEOUT).

    Members
    -------
    frames_ok : Out(32)
        Frames executed (ACKed).
    err_crc : Out(32)
        Frames answered NACK BAD_CRC (every err_* saturates at 2^32 - 1, never wraps).
    err_cmd : Out(32)
        Frames answered NACK BAD_CMD.
    err_len : Out(32)
        Frames answered NACK BAD_LEN or BAD_ADDR.
    err_timeout : Out(32)
        Partial frames dropped (frame timeout, or SPI chip-select raised).
    """

    def __init__(self):
        super().__init__({name: Out(32) for name in
                          ("frames_ok", "err_crc", "err_cmd", "err_len", "err_timeout")})


class InferenceStatusSignature(_FixedSignature):
    """The controller's state and counters, the controller's view (STATUS bits 0-2, RESULT,
    CYCLES_*, INFERENCES).

    Members
    -------
    busy : Out(1)
        An inference is running.
    done : Out(1)
        ``result`` is valid; cleared by the next start.
    result : Out(8)
        Winning class of the last inference.
    cycles_total, cycles_drive, cycles_convert, cycles_argmax : Out(32)
        Clocks of the last inference, in all and in DRIVE, CONVERT and ARGMAX.
    inferences : Out(32)
        Inferences completed since reset.
    """

    def __init__(self):
        super().__init__({
            "busy": Out(1),
            "done": Out(1),
            "result": Out(8),
            "cycles_total": Out(32),
            "cycles_drive": Out(32),
            "cycles_convert": Out(32),
            "cycles_argmax": Out(32),
            "inferences": Out(32),
        })


class ProgrammingStatusSignature(_FixedSignature):
    """The programmer's state and counters, the programmer's view (STATUS bits 3-4, PROG_*).

    Members
    -------
    busy : Out(1)
        A programming run is going on.
    write_ok : Out(1)
        The last run finished (sticky until the next start).
    pulses : Out(32)
        Program pulses issued in the current/last run.
    failures : Out(32)
        Cells given up at the pulse timeout in the current/last run.
    cycles : Out(32)
        Clocks of the current/last run, from start to done.
    steps : Out(32)
        Cell steps finished in the current/last run.
    """

    def __init__(self):
        super().__init__({
            "busy": Out(1),
            "write_ok": Out(1),
            "pulses": Out(32),
            "failures": Out(32),
            "cycles": Out(32),
            "steps": Out(32),
        })


def _width(name: str, value: int) -> int:
    if not isinstance(value, int) or value < 1:
        raise TypeError(f"{name} must be a positive integer, not {value!r}")
    return value
