"""Host side of the command layer: the driver, its transport interface, and a reference model.

`HostDriver` speaks the frame protocol of `xbarflow.hdl.protocol` through any `Transport` (one
request frame in, one response frame out): the cocotb SPI BFM (`xbarflow.cocotb_tests.spi_master`)
in simulation, or a serial-port transport for a real chip.

`ChipProtocolModel` is a byte-exact Python model of the chip's command layer
(`xbarflow.hdl.command.CommandLayer` with `xbarflow.hdl.registers.RegisterFile` and the buffers): the same
parser, checks, error codes and counters. It is itself a `Transport`, so the driver is
tested against it without a simulator, and RTL tests use it as the reference to compare
the hardware against, frame by frame.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence, runtime_checkable

from xbarflow.hdl import protocol
from xbarflow.hdl.protocol import Cmd, Error, ProtocolError, Reg, Status

__all__ = [
    "COUNTER_REGS", "ChipProtocolModel", "ERROR_REGS", "HostDriver", "InferenceTimeout", "NackError",
    "PROGRAM_REGS", "ProgrammingTimeout", "Transport", "decode_outputs", "encode_outputs",
]

# The register counters returned by `HostDriver.counters`, keyed by lower-case names.
COUNTER_REGS = (Reg.CYCLES_TOTAL, Reg.CYCLES_DRIVE, Reg.CYCLES_CONVERT, Reg.CYCLES_ARGMAX,
                Reg.INFERENCES, Reg.FRAMES_OK, Reg.ERR_CRC, Reg.ERR_CMD, Reg.ERR_LEN,
                Reg.ERR_TIMEOUT)
# The error counters: they saturate at 2^32 - 1 in the RTL (`xbarflow.hdl.saturating`).
ERROR_REGS = (Reg.ERR_CRC, Reg.ERR_CMD, Reg.ERR_LEN, Reg.ERR_TIMEOUT, Reg.ERR_FRAMING)
# The programming run's counters returned by `HostDriver.program`.
PROGRAM_REGS = {"pulses": Reg.PROG_PULSES, "failures": Reg.PROG_FAILURES,
                "cycles": Reg.PROG_CYCLES, "steps": Reg.PROG_STEPS}


class NackError(ProtocolError):
    """The chip answered NACK; ``error`` is the `protocol.Error` (or the raw code if unknown)."""

    def __init__(self, what: str, error: Error | int):
        self.error = error
        name = error.name if isinstance(error, Error) else f"unknown error 0x{error:02x}"
        super().__init__(f"{what}: NACK {name}")


class InferenceTimeout(ProtocolError, TimeoutError):
    """The done bit did not come up within the allowed number of polls."""


class ProgrammingTimeout(ProtocolError, TimeoutError):
    """The write_ok bit did not come up within the allowed number of polls."""


@runtime_checkable
class Transport(Protocol):
    """Carries one request frame to the chip and returns its one response frame."""

    async def exchange(self, request: bytes) -> bytes: ...


def decode_outputs(data: bytes) -> list[int]:
    """Output buffer bytes -> signed ADC codes (2 bytes each, big endian, two's complement)."""
    if len(data) % 2:
        raise ProtocolError(f"output buffer data has an odd length {len(data)}")
    return [int.from_bytes(data[i:i + 2], "big", signed=True) for i in range(0, len(data), 2)]


def encode_outputs(codes: Sequence[int]) -> bytes:
    """Signed codes -> output buffer bytes (the inverse of `decode_outputs`)."""
    return b"".join(int(c).to_bytes(2, "big", signed=True) for c in codes)


class HostDriver:
    """Drives the chip through a `Transport`; every response is checked.

    A NACK raises `NackError` (a `protocol.ProtocolError`) naming the error; a malformed
    response, or an ACK with a payload of the wrong length, raises `protocol.ProtocolError`.
    """

    # Largest READ_BUF chunk that keeps 2-byte codes whole.
    READ_CHUNK = protocol.MAX_PAYLOAD - protocol.MAX_PAYLOAD % 2

    def __init__(self, transport: Transport, cfg):
        self.transport = transport
        self.cfg = cfg

    async def _request(self, cmd: Cmd, addr: int = 0, payload: bytes = b"",
                       expect: int | None = 0) -> bytes:
        response = protocol.decode_response(
            await self.transport.exchange(protocol.encode_request(cmd, addr, payload)))
        what = f"{Cmd(cmd).name} at 0x{addr:04x}"
        if response.status == Status.NACK:
            code = response.payload[0]
            raise NackError(what, Error(code) if code in Error._value2member_map_ else code)
        if expect is not None and len(response.payload) != expect:
            raise ProtocolError(f"{what}: ACK with {len(response.payload)} payload bytes, "
                                f"expected {expect}")
        return response.payload

    async def read_reg(self, reg: Reg | int) -> int:
        return int.from_bytes(await self._request(Cmd.READ_REG, int(reg), expect=4), "big")

    async def write_reg(self, reg: Reg | int, value: int) -> None:
        if not 0 <= value < 1 << 32:
            raise ValueError(f"register value {value} does not fit in 32 bits")
        await self._request(Cmd.WRITE_REG, int(reg), value.to_bytes(4, "big"))

    async def write_input(self, packed: bytes, offset: int = 0) -> None:
        """Write packed DAC codes into the input buffer, in WRITE_BUF frames of <= 255 bytes."""
        packed = bytes(packed)
        if offset + len(packed) > self.cfg.input_bytes:
            raise ValueError(f"{len(packed)} bytes at offset {offset} overflow the "
                             f"{self.cfg.input_bytes}-byte input buffer")
        for start in range(0, len(packed), protocol.MAX_PAYLOAD):
            chunk = packed[start:start + protocol.MAX_PAYLOAD]
            await self._request(Cmd.WRITE_BUF, offset + start, chunk)

    async def read_output_bytes(self, addr: int, count: int) -> bytes:
        data = bytearray()
        while count > 0:
            n = min(count, self.READ_CHUNK)
            data += await self._request(Cmd.READ_BUF, addr, bytes([n]), expect=n)
            addr, count = addr + n, count - n
        return bytes(data)

    async def read_outputs(self, count: int | None = None) -> list[int]:
        """The first ``count`` (default: all) signed ADC codes of the output buffer."""
        count = self.cfg.outputs if count is None else count
        if not 0 <= count <= self.cfg.outputs:
            raise ValueError(f"count must be in 0..{self.cfg.outputs}, got {count}")
        return decode_outputs(await self.read_output_bytes(0, 2 * count))

    async def start(self) -> None:
        await self._request(Cmd.START)

    async def write_targets(self, levels: bytes, offset: int = 0) -> None:
        """Write programming targets (one level code per cell, row-major: byte
        ``global_row * tile_cols + col``) in WRITE_TARGETS frames of <= 255 bytes."""
        levels = bytes(levels)
        if offset < 0 or offset + len(levels) > self.cfg.target_bytes:
            raise ValueError(f"{len(levels)} bytes at offset {offset} overflow the "
                             f"{self.cfg.target_bytes}-byte target memory")
        for start in range(0, len(levels), protocol.MAX_PAYLOAD):
            chunk = levels[start:start + protocol.MAX_PAYLOAD]
            await self._request(Cmd.WRITE_TARGETS, offset + start, chunk)

    async def start_program(self) -> None:
        await self._request(Cmd.START_PROGRAM)

    async def select_tile(self, tile: int) -> None:
        """PROG_TILE = `tile` (the tile the next START_PROGRAM programs), read back: the chip
        ignores an index past its tiles, so a mismatch raises `ProtocolError`."""
        tiles = len(self.cfg.tiles)
        if not 0 <= tile < tiles:
            raise ValueError(f"tile {tile} out of range: config '{self.cfg.name}' has tiles 0..{tiles - 1}")
        await self.write_reg(Reg.PROG_TILE, tile)
        got = await self.read_reg(Reg.PROG_TILE)
        if got != tile:
            raise ProtocolError(f"PROG_TILE reads {got} after writing {tile}")

    async def program_tile(self, tile: int, levels: bytes, max_polls: int = 100_000) -> dict[str, int]:
        """Program one tile: PROG_TILE, its targets (WRITE_TARGETS), START_PROGRAM, poll; the
        run's counters as `program` returns them."""
        await self.select_tile(tile)
        await self.write_targets(levels)
        return await self.program(max_polls)

    async def program(self, max_polls: int = 100_000) -> dict[str, int]:
        """START_PROGRAM, poll STATUS until write_ok; return the run's counters as
        ``{"pulses", "failures", "cycles", "steps"}`` (PROG_* registers)."""
        await self.start_program()
        status = None
        for _ in range(max_polls):
            status = await self.read_reg(Reg.STATUS)
            if status & protocol.STATUS_WRITE_OK and not status & protocol.STATUS_PROG_BUSY:
                return {name: await self.read_reg(reg) for name, reg in PROGRAM_REGS.items()}
        raise ProgrammingTimeout(f"write_ok not set after {max_polls} STATUS polls "
                                 f"(last STATUS 0x{status if status is not None else 0:02x})")

    async def read_result(self) -> tuple[int, int]:
        """(STATUS low byte, RESULT low byte)."""
        status, result = await self._request(Cmd.READ_RESULT, expect=2)
        return status, result

    async def classify(self, packed: bytes, max_polls: int = 10_000) -> int:
        """Write the input, START, poll READ_RESULT until done; return the class index."""
        await self.write_input(packed)
        await self.start()
        return await self.wait_result(max_polls)

    async def wait_result(self, max_polls: int = 10_000) -> int:
        """Poll READ_RESULT until the inference is done; return the class index."""
        status = None
        for _ in range(max_polls):
            status, result = await self.read_result()
            if status & protocol.STATUS_DONE and not status & protocol.STATUS_BUSY:
                return result
        raise InferenceTimeout(f"no result after {max_polls} READ_RESULT polls "
                               f"(last STATUS 0x{status if status is not None else 0:02x})")

    async def counters(self) -> dict[str, int]:
        """All counter registers, keyed by lower-case register name (e.g. 'err_crc')."""
        return {reg.name.lower(): await self.read_reg(reg) for reg in COUNTER_REGS}

    async def clear_errors(self) -> None:
        await self.write_reg(Reg.CTRL, protocol.CTRL_CLEAR_ERRORS)

    async def check_identity(self) -> None:
        """Raise `ProtocolError` unless ID and GEOMETRY match this driver's config."""
        chip_id = await self.read_reg(Reg.ID)
        if chip_id != protocol.CHIP_ID:
            raise ProtocolError(f"chip ID 0x{chip_id:08x}, expected 0x{protocol.CHIP_ID:08x}")
        geometry = await self.read_reg(Reg.GEOMETRY)
        if geometry != protocol.geometry_word(self.cfg):
            raise ProtocolError(f"GEOMETRY 0x{geometry:08x} does not match the config "
                                f"(0x{protocol.geometry_word(self.cfg):08x})")


class ChipProtocolModel:
    """Python reference model of the chip's command layer, registers and buffers.

    Feed it request bytes (`feed`) and it returns the response bytes the chip would send,
    with the same resynchronisation, checks (CRC, then command, then length, then
    address, then BUSY), error codes and counters as `xbarflow.hdl.command.CommandLayer`.
    `drop_partial` models a frame timeout or an SPI deselect mid-frame.

    Inference is modelled at the protocol level: START makes the chip busy for
    ``latency_polls`` status reads (READ_RESULT or READ_REG STATUS), then ``infer`` (if
    given) maps the input buffer to ``(result, output_codes)``; ``latency_polls=None``
    models a chip that never finishes.

    Programming likewise: START_PROGRAM makes the chip busy programming for
    ``program_latency_polls`` status reads, then ``program`` (if given) maps the target
    memory to ``(pulses, failures, cycles)``; PROG_STEPS then reads ``program_steps``.
    As in the RTL, START_PROGRAM clears the PROG_* registers; progress during a run is not
    modelled (they read 0 until the run completes).
    Target bytes are stored as written (the RTL saturates codes above the top weight
    level, which is invisible to the protocol).
    """

    def __init__(self, input_bytes: int, output_bytes: int, *, geometry: int = 0,
                 infer: Callable[[bytes], tuple[int, Sequence[int]]] | None = None,
                 latency_polls: int | None = 0, target_bytes: int = 0,
                 program: Callable[[bytes], tuple[int, int, int]] | None = None,
                 program_latency_polls: int | None = 0, program_steps: int = 0, tiles: int = 1):
        self.input_buffer = bytearray(input_bytes)
        self.output_buffer = bytearray(output_bytes)
        self.target_buffer = bytearray(target_bytes)
        self.program = program
        self.program_latency_polls = program_latency_polls
        self.program_steps = program_steps
        self.prog_polls_left: int | None = 0
        self.prog_busy = False
        self.write_ok = False
        self.programs = 0          # START_PROGRAM commands accepted
        self.tiles = tiles
        self.prog_tile = 0         # PROG_TILE: the tile each START_PROGRAM programs
        self.programmed_tiles: list[int] = []   # PROG_TILE at each accepted START_PROGRAM
        self.prog_pulses = self.prog_failures = self.prog_cycles = self.prog_steps = 0
        self.geometry = geometry
        self.infer = infer
        self.latency_polls = latency_polls
        self.polls_left: int | None = 0
        self.busy = False
        self.done = False
        self.result = 0
        self.scratch = 0
        self.requant_mult = 0      # REQUANT_MULT: the hidden ReLUs' multipliers, byte l for layer l
        self.starts = 0            # START commands and CTRL start writes accepted
        self.cycles = {Reg.CYCLES_TOTAL: 0, Reg.CYCLES_DRIVE: 0, Reg.CYCLES_CONVERT: 0,
                       Reg.CYCLES_ARGMAX: 0}
        self.inferences = 0
        self.frames_ok = self.err_crc = self.err_cmd = self.err_len = self.err_timeout = 0
        self.err_framing = 0       # UART characters with a low stop bit (`framing_error`)
        self._requests = protocol.FrameSplitter("request")

    @classmethod
    def from_config(cls, cfg, **kwargs) -> "ChipProtocolModel":
        kwargs.setdefault("target_bytes", cfg.target_bytes)
        kwargs.setdefault("program_steps", max(cfg.partition_rows) * cfg.crossbar.tile_cols)
        kwargs.setdefault("tiles", len(cfg.tiles))
        return cls(cfg.input_bytes, 2 * cfg.outputs, geometry=protocol.geometry_word(cfg), **kwargs)

    # -- the byte stream ---------------------------------------------------------------------
    def feed(self, data: bytes) -> bytes:
        """Consume request bytes; return every response frame they complete, concatenated."""
        return b"".join(self._execute(frame) for frame in self._requests.feed(data))

    @property
    def in_frame(self) -> bool:
        return self._requests.in_frame

    def drop_partial(self) -> None:
        """A frame timeout, or SPI chip-select raised: a partial frame is dropped and counted."""
        if self._requests.drop_partial():
            self.err_timeout += 1

    def framing_error(self) -> None:
        """A UART character with a low stop bit: the chip drops it and counts it (ERR_FRAMING)."""
        self.err_framing += 1

    async def exchange(self, request: bytes) -> bytes:
        response = self.feed(request)
        if not response:
            raise ProtocolError("no response")
        return response

    # -- frame execution -----------------------------------------------------------------------
    def _nack(self, error: Error) -> bytes:
        return protocol.encode_response(Status.NACK, bytes([error]))

    def check(self, cmd: int, addr: int, payload: bytes) -> Error | None:
        """The error a well-framed request with a good CRC gets, or None if it executes."""
        n = len(payload)
        if cmd not in Cmd._value2member_map_:
            return Error.BAD_CMD
        cmd = Cmd(cmd)
        if cmd == Cmd.WRITE_REG:
            length_ok, addr_ok = n == 4, addr in protocol.WRITABLE_REGS
        elif cmd == Cmd.READ_REG:
            length_ok, addr_ok = n == 0, addr < protocol.NUM_REGS
        elif cmd == Cmd.WRITE_BUF:
            length_ok, addr_ok = n >= 1, addr + n <= len(self.input_buffer)
        elif cmd == Cmd.READ_BUF:
            count = payload[0] if n == 1 else 0
            length_ok, addr_ok = n == 1 and count >= 1, addr + count <= len(self.output_buffer)
        elif cmd == Cmd.WRITE_TARGETS:
            length_ok, addr_ok = n >= 1, addr + n <= len(self.target_buffer)
        else:   # START, READ_RESULT, START_PROGRAM: ADDR is ignored
            length_ok, addr_ok = n == 0, True
        if not length_ok:
            return Error.BAD_LEN
        if not addr_ok:
            return Error.BAD_ADDR
        if (self.busy or self.prog_busy) and cmd in (Cmd.START, Cmd.WRITE_BUF,
                                                      Cmd.START_PROGRAM, Cmd.WRITE_TARGETS):
            return Error.BUSY
        return None

    def _execute(self, frame: bytes) -> bytes:
        cmd, addr, payload = frame[1], frame[2] << 8 | frame[3], frame[5:-1]
        if protocol.crc8(frame[1:-1]) != frame[-1]:
            self.err_crc += 1
            return self._nack(Error.BAD_CRC)
        error = self.check(cmd, addr, payload)
        if error is not None:
            if error == Error.BAD_CMD:
                self.err_cmd += 1
            elif error in (Error.BAD_LEN, Error.BAD_ADDR):
                self.err_len += 1
            return self._nack(error)
        reply = b""
        if cmd == Cmd.WRITE_REG:
            self.write_reg(addr, int.from_bytes(payload, "big"))
        elif cmd == Cmd.READ_REG:
            reply = self.read_reg(addr).to_bytes(4, "big")
        elif cmd == Cmd.WRITE_BUF:
            self.input_buffer[addr:addr + len(payload)] = payload
        elif cmd == Cmd.READ_BUF:
            reply = bytes(self.output_buffer[addr:addr + payload[0]])
        elif cmd == Cmd.START:
            self.start()
        elif cmd == Cmd.WRITE_TARGETS:
            self.target_buffer[addr:addr + len(payload)] = payload
        elif cmd == Cmd.START_PROGRAM:
            self.start_program()
        elif cmd == Cmd.READ_RESULT:
            reply = bytes([self.read_reg(Reg.STATUS) & 0xFF, self.result & 0xFF])
        self.frames_ok += 1      # after the reply: READ_REG FRAMES_OK shows the frames before it
        return protocol.encode_response(Status.ACK, reply)

    # -- registers and inference ---------------------------------------------------------------
    def status(self) -> int:
        return ((protocol.STATUS_BUSY if self.busy else 0)
                | (protocol.STATUS_DONE | protocol.STATUS_IRQ if self.done else 0)
                | (protocol.STATUS_PROG_BUSY if self.prog_busy else 0)
                | (protocol.STATUS_WRITE_OK if self.write_ok else 0))

    def read_reg(self, reg: int) -> int:
        if reg == Reg.STATUS:
            self._poll()
            return self.status()
        values = {
            Reg.ID: protocol.CHIP_ID, Reg.RESULT: self.result, Reg.INFERENCES: self.inferences,
            Reg.FRAMES_OK: self.frames_ok, Reg.ERR_CRC: self.err_crc, Reg.ERR_CMD: self.err_cmd,
            Reg.ERR_LEN: self.err_len, Reg.ERR_TIMEOUT: self.err_timeout,
            Reg.SCRATCH: self.scratch, Reg.GEOMETRY: self.geometry, **self.cycles,
            Reg.REQUANT_MULT: self.requant_mult,
            Reg.PROG_PULSES: self.prog_pulses, Reg.PROG_FAILURES: self.prog_failures,
            Reg.PROG_CYCLES: self.prog_cycles, Reg.PROG_STEPS: self.prog_steps,
            Reg.ERR_FRAMING: self.err_framing, Reg.PROG_TILE: self.prog_tile,
        }
        value = values.get(reg, 0)              # CTRL and unmapped addresses read 0
        if reg in ERROR_REGS:
            return min(value, 0xFFFFFFFF)       # the RTL's error counters saturate
        return value & 0xFFFFFFFF

    def write_reg(self, reg: int, value: int) -> None:
        if reg == Reg.SCRATCH:
            self.scratch = value
        elif reg == Reg.REQUANT_MULT:
            self.requant_mult = value
        elif reg == Reg.PROG_TILE:
            if value < self.tiles:    # an index past the chip's tiles is ignored
                self.prog_tile = value
        elif reg == Reg.CTRL:
            if value & protocol.CTRL_START:
                self.start()
            if value & protocol.CTRL_CLEAR_ERRORS:
                self.err_crc = self.err_cmd = self.err_len = self.err_timeout = self.err_framing = 0

    def start(self) -> None:
        if self.busy or self.prog_busy:   # ignored while inferring or programming
            return
        self.starts += 1
        self.busy, self.done = True, False
        self.polls_left = self.latency_polls
        if self.polls_left == 0:
            self._complete()

    def _poll(self) -> None:
        if self.prog_busy and self.prog_polls_left is not None:
            if self.prog_polls_left == 0:
                self._complete_program()
            else:
                self.prog_polls_left -= 1
        if not self.busy or self.polls_left is None:
            return
        if self.polls_left == 0:
            self._complete()
        else:
            self.polls_left -= 1

    def start_program(self) -> None:
        if self.busy or self.prog_busy:   # the command layer NACKs this case first
            return
        self.programs += 1
        self.programmed_tiles.append(self.prog_tile)
        self.prog_busy, self.write_ok = True, False
        self.prog_pulses = self.prog_failures = self.prog_cycles = self.prog_steps = 0
        self.prog_polls_left = self.program_latency_polls
        if self.prog_polls_left == 0:
            self._complete_program()

    def _complete_program(self) -> None:
        if self.program is not None:
            self.prog_pulses, self.prog_failures, self.prog_cycles = (
                int(v) & 0xFFFFFFFF for v in self.program(bytes(self.target_buffer)))
        self.prog_steps = self.program_steps
        self.prog_busy, self.write_ok = False, True

    def _complete(self) -> None:
        if self.infer is not None:
            result, codes = self.infer(bytes(self.input_buffer))
            data = encode_outputs(codes)
            self.output_buffer[:len(data)] = data
            self.result = result
        self.busy, self.done = False, True
        self.inferences += 1
