"""Independent oracle of the command layer's frame check: CRC-8/AUTOSAR written from its
definition, never from `amaranth.lib.crc` or `xbarflow.hdl.protocol`.

CRC-8/AUTOSAR (the catalogue entry hdl/protocol.py names): width 8, polynomial
x^8 + x^5 + x^3 + x^2 + x + 1 (0x2F), initial register 0xFF, no input or output reflection,
final XOR 0xFF; its standard check value, the CRC of the ASCII bytes "123456789", is 0xDF.
The oracle computes it twice, as the bit-serial shift register and as the remainder of GF(2)
polynomial division, and the tests compare it with the host side (`protocol.crc8`,
`encode_request`, `decode_response`, `HostDriver`, `ChipProtocolModel`), with the RTL (the CRC
processor and the whole `CommandLayer` in amaranth.sim), and with hand-made frames whose CRC
bytes are written out below. A changed polynomial, initial value or final XOR fails them.
"""

import asyncio
import random

import pytest
from amaranth.sim import Simulator

from xbarflow.flow.host.driver import ChipProtocolModel, HostDriver
from xbarflow.hdl import protocol
from xbarflow.hdl.command import CommandLayer
from xbarflow.hdl.protocol import (
    SYNC,
    Cmd,
    Error,
    FrameSplitter,
    ProtocolError,
    Reg,
    Status,
    encode_request,
    encode_response,
)

POLY = 0x2F        # x^8 + x^5 + x^3 + x^2 + x + 1, the x^8 term implicit
INIT = 0xFF
XOR_OUT = 0xFF
CHECK = 0xDF       # CRC-8/AUTOSAR of b"123456789" (the catalogue's check value)


def crc8_shift_register(data: bytes, poly: int = POLY, init: int = INIT, xor_out: int = XOR_OUT) -> int:
    """Bit-serial, MSB first: each message bit enters at the top; when the bit shifted out of
    x^7 is 1, the polynomial is subtracted (XORed)."""
    reg = init
    for byte in data:
        for shift in range(7, -1, -1):
            top = ((reg >> 7) ^ (byte >> shift)) & 1
            reg = ((reg << 1) & 0xFF) ^ (poly if top else 0)
    return reg ^ xor_out


def crc8_polynomial_division(data: bytes, poly: int = POLY, init: int = INIT,
                             xor_out: int = XOR_OUT) -> int:
    """Remainder of (M(x) + I(x) x^(n-8)) x^8 modulo P(x) over GF(2), then the final XOR: the
    initial register complements the first 8 message bits (n = message bits, MSB first)."""
    n = 8 * len(data)
    dividend = ((int.from_bytes(data, "big") ^ (init << (n - 8))) << 8) if n else init
    divisor = 0x100 | poly
    while dividend.bit_length() >= divisor.bit_length():
        dividend ^= divisor << (dividend.bit_length() - divisor.bit_length())
    return dividend ^ xor_out


def oracle(data: bytes) -> int:
    a, b = crc8_shift_register(data), crc8_polynomial_division(data)
    assert a == b, f"the two definitions disagree on {data.hex()}"
    return a


# Hand-made frames, CRC bytes written out (SYNC CMD ADDR_HI ADDR_LO LEN payload CRC / SYNC STATUS LEN payload CRC).
READ_ID = bytes.fromhex("a5 02 00 00 00 57")
ID_RESPONSE = bytes.fromhex("a5 06 04 58 42 46 31 bb")          # ACK, CHIP_ID "XBF1"
START = bytes.fromhex("a5 05 00 00 00 2d")
START_ACK = bytes.fromhex("a5 06 00 6f")
WRITE_BUF = bytes.fromhex("a5 03 00 02 03 11 22 33 29")         # 3 bytes at offset 2
UNKNOWN_CMD = bytes.fromhex("a5 7e 00 00 00 8b")                # good CRC, no such command
NACK_BAD_CRC = bytes.fromhex("a5 15 01 01 86")
NACK_BAD_CMD = bytes.fromhex("a5 15 01 02 f7")
# READ_REG ID with the CRC of another common CRC-8 (SMBus: poly 0x07, init 0, no final XOR).
READ_ID_SMBUS_CRC = bytes.fromhex("a5 02 00 00 00 2c")
HAND_MADE = (READ_ID, ID_RESPONSE, START, START_ACK, WRITE_BUF, UNKNOWN_CMD, NACK_BAD_CRC, NACK_BAD_CMD)


# -- the oracle itself --------------------------------------------------------------------------

def test_oracle_gives_the_standard_check_value():
    assert oracle(b"123456789") == CHECK
    # Sanity of the definition: the SMBus CRC-8 of the same string is its own check value 0xF4.
    assert crc8_shift_register(b"123456789", 0x07, 0x00, 0x00) == 0xF4
    assert crc8_polynomial_division(b"123456789", 0x07, 0x00, 0x00) == 0xF4


def test_hand_made_frames_carry_the_oracle_crc():
    for frame in HAND_MADE:
        assert frame[0] == protocol.SYNC and oracle(frame[1:-1]) == frame[-1], frame.hex()
    assert oracle(READ_ID_SMBUS_CRC[1:-1]) != READ_ID_SMBUS_CRC[-1]


# -- host side ----------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [b"123456789", b"", b"\x00", b"\xff" * 7, bytes(range(256))])
def test_host_crc_matches_the_oracle(data):
    assert protocol.crc8(data) == oracle(data)


def test_host_encodes_and_decodes_the_hand_made_frames():
    assert protocol.encode_request(Cmd.READ_REG, Reg.ID) == READ_ID
    assert protocol.encode_request(Cmd.START) == START
    assert protocol.encode_request(Cmd.WRITE_BUF, 2, b"\x11\x22\x33") == WRITE_BUF
    assert protocol.encode_response(Status.ACK, b"XBF1") == ID_RESPONSE
    assert protocol.encode_response(Status.NACK, bytes([Error.BAD_CRC])) == NACK_BAD_CRC
    assert protocol.decode_response(ID_RESPONSE).payload == b"XBF1"
    assert protocol.decode_response(NACK_BAD_CMD).error == Error.BAD_CMD
    for k in range(1, len(ID_RESPONSE) - 1):      # any flipped bit after SYNC is caught
        bad = bytearray(ID_RESPONSE)
        bad[k] ^= 0x10
        with pytest.raises(ProtocolError):
            protocol.decode_response(bytes(bad))


class ScriptedLink:
    """A Transport that answers with fixed frames and records what it was sent."""

    def __init__(self, *answers):
        self.answers, self.sent = list(answers), []

    async def exchange(self, request):
        self.sent.append(bytes(request))
        return self.answers.pop(0)


def test_host_driver_frame_check():
    from xbarflow.flow.core import config as cfgmod

    cfg = cfgmod.load()
    link = ScriptedLink(ID_RESPONSE, ID_RESPONSE[:-1] + bytes([ID_RESPONSE[-1] ^ 1]))
    host = HostDriver(link, cfg)
    assert asyncio.run(host.read_reg(Reg.ID)) == protocol.CHIP_ID
    assert link.sent == [READ_ID]
    with pytest.raises(ProtocolError, match="CRC"):
        asyncio.run(host.read_reg(Reg.ID))


def test_reference_model_checks_the_crc():
    model = ChipProtocolModel(8, 4, infer=lambda _buf: (0, []))
    assert model.feed(READ_ID_SMBUS_CRC) == NACK_BAD_CRC
    assert model.feed(UNKNOWN_CMD) == NACK_BAD_CMD
    assert model.feed(START) == START_ACK
    assert (model.err_crc, model.err_cmd, model.frames_ok) == (1, 1, 1)


# -- RTL ----------------------------------------------------------------------------------------

def run_crc_processor(data: bytes) -> int:
    """protocol.CRC's RTL processor in amaranth.sim, one byte per clock."""
    dut = protocol.CRC.create()
    out = {}

    async def bench(ctx):
        for k, byte in enumerate(data):
            ctx.set(dut.start, k == 0)
            ctx.set(dut.valid, 1)
            ctx.set(dut.data, byte)
            await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.valid, 0)
        out["crc"] = ctx.get(dut.crc)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out["crc"]


@pytest.mark.parametrize("data", [b"123456789", b"\x00", bytes(range(40))])
def test_rtl_crc_processor_matches_the_oracle(data):
    assert run_crc_processor(data) == oracle(data)


def exchange_with_command_layer(requests: list[bytes], reg_value: int = protocol.CHIP_ID) -> list[bytes]:
    """Each request into the CommandLayer's rx stream, its whole response frame from tx."""
    dut = CommandLayer(input_bytes=8, output_bytes=4, timeout_cycles=1000)
    responses: list[bytes] = []

    async def bench(ctx):
        ctx.set(dut.registers.r_data, reg_value)
        ctx.set(dut.tx.ready, 1)
        for request in requests:
            for byte in request:
                ctx.set(dut.rx.valid, 1)
                ctx.set(dut.rx.payload, byte)
                await ctx.tick().until(dut.rx.ready)
            ctx.set(dut.rx.valid, 0)
            frame = bytearray()
            for _ in range(2000):
                valid, payload = ctx.get(dut.tx.valid), ctx.get(dut.tx.payload)
                await ctx.tick()
                if valid:
                    frame.append(payload)
                if len(frame) >= 3 and len(frame) == protocol.response_length(bytes(frame)):
                    break
            responses.append(bytes(frame))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return responses


def test_rtl_command_layer_checks_and_writes_the_oracle_crc():
    got = exchange_with_command_layer([READ_ID, READ_ID_SMBUS_CRC, UNKNOWN_CMD, START, WRITE_BUF])
    assert got == [ID_RESPONSE, NACK_BAD_CRC, NACK_BAD_CMD, START_ACK, START_ACK]
    # Every response the RTL wrote ends in the oracle's CRC of its bytes.
    assert all(oracle(frame[1:-1]) == frame[-1] for frame in got)


def test_rtl_response_crc_follows_the_payload():
    """Register values the host never sent: the RTL's tx CRC of its own bytes."""
    for value in (0x00000000, 0xFFFFFFFF, 0x80000001, 0x12345678):
        (frame,) = exchange_with_command_layer([READ_ID], value)
        body = bytes([Status.ACK, 4]) + value.to_bytes(4, "big")
        assert frame == bytes([protocol.SYNC]) + body + bytes([oracle(body)])


# -- the frame splitter: SYNC hunt, then the length from the header's LEN byte ----------
# Expected frames are built with the encoders and cut by hand from known lengths (a request is
# SYNC CMD ADDR_HI ADDR_LO LEN payload CRC, a response SYNC STATUS LEN payload CRC).

def test_request_frames_come_out_whole_at_their_last_byte():
    frames = [encode_request(Cmd.READ_REG, Reg.ID), encode_request(Cmd.WRITE_BUF, 3, bytes(range(9))),
              encode_request(Cmd.WRITE_REG, Reg.SCRATCH, b"\xa5\xa5\xa5\xa5")]   # SYNC in the payload
    assert [len(f) for f in frames] == [6, 15, 10]
    s = FrameSplitter("request")
    for frame in frames:
        got = [s.push(b) for b in frame]
        assert got[:-1] == [None] * (len(frame) - 1) and got[-1] == frame
        assert not s.in_frame and s.partial == b""


def test_response_frames_use_the_three_byte_header():
    frames = [encode_response(Status.ACK), encode_response(Status.NACK, bytes([3])),
              encode_response(Status.ACK, bytes(255))]
    assert [len(f) for f in frames] == [4, 5, 259]
    assert FrameSplitter("response").feed(b"".join(frames)) == frames
    # A request's header is five bytes: an empty response is not a frame there.
    as_request = FrameSplitter("request")
    assert as_request.feed(frames[0]) == [] and as_request.partial == frames[0]


def test_bytes_before_sync_are_skipped_and_a_partial_frame_is_kept():
    frame = encode_request(Cmd.READ_BUF, 0, b"\x04")
    s = FrameSplitter()
    assert s.feed(b"\x00\xff\x13" + frame[:4]) == []
    assert s.in_frame and s.partial == frame[:4]
    assert s.feed(frame[4:] + b"\x00") == [frame]
    assert not s.in_frame


def test_drop_partial_hunts_again():
    s = FrameSplitter()
    assert s.drop_partial() is False              # nothing under way
    s.feed(encode_request(Cmd.START)[:3])
    assert s.drop_partial() is True and not s.in_frame and s.partial == b""
    # The rest of the cut frame is garbage now: no SYNC in it, nothing comes out.
    rest = encode_request(Cmd.START)[3:]
    assert SYNC not in rest and s.feed(rest) == []
    assert s.feed(encode_request(Cmd.START)) == [encode_request(Cmd.START)]


def test_random_streams_split_back_into_their_frames():
    rng = random.Random(13)
    for direction, encode in (("request", lambda p: encode_request(rng.choice(list(Cmd)),
                                                                     rng.randrange(1 << 16), p)),
                              ("response", lambda p: encode_response(Status.ACK, p))):
        frames, stream = [], b""
        for _ in range(200):
            frame = encode(bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 4, 255]))))
            gap = bytes(rng.choice([b for b in range(256) if b != SYNC]) for _ in range(rng.randrange(3)))
            frames.append(frame)
            stream += gap + frame
        s = FrameSplitter(direction)
        got = []
        while stream:                             # in chunks of any size
            n = rng.randrange(1, 40)
            got += s.feed(stream[:n])
            stream = stream[n:]
        assert got == frames and not s.in_frame


def test_lengths_and_directions():
    assert protocol.request_length(encode_request(Cmd.WRITE_BUF, 0, bytes(7))[:5]) == 13
    assert protocol.response_length(encode_response(Status.ACK, bytes(2))[:3]) == 6
    with pytest.raises(ValueError, match="direction"):
        FrameSplitter("sideways")


def test_the_rtl_crc_is_the_catalogue_crc8_autosar():
    # protocol.CRC (the RTL's CRC processor) is built from protocol's own parameters, on first use
    from amaranth.lib.crc import catalog

    mine, catalogue = protocol.CRC.algorithm, catalog.CRC8_AUTOSAR
    fields = ("crc_width", "polynomial", "initial_crc", "reflect_input", "reflect_output", "xor_output")
    assert [getattr(mine, f) for f in fields] == [getattr(catalogue, f) for f in fields]
    assert protocol.CRC.data_width == 8 and protocol.CRC.compute(b"123456789") == CHECK
