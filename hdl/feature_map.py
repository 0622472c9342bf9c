"""Feature-map memory: the input image and every intermediate map of a layered network, as DAC codes."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from .ports import CodeReadSignature, CodeWriteSignature, WriteSignature

__all__ = ["FeatureMap", "address_width"]


def address_width(depth: int) -> int:
    """Width of a code address into a feature-map memory of `depth` codes."""
    return max(1, (depth - 1).bit_length())


class FeatureMap(wiring.Component):
    """One DAC code per code address, written a byte at a time by the command layer or a code at
    a time by the controller, read a code at a time.

    Byte ``k`` of the host's stream is bits ``[8k, 8k+8)`` of the codes packed LSB first, as in
    `xbarflow.hdl.input_buffer.InputBuffer` (4-bit codes: the low nibble is code ``2k``). The
    memory's word is that byte, ``8 / dac_bits`` codes, so dac_bits must divide 8 (every shipped
    config has 4): a byte write is a word write, a code address splits into word and lane by
    bits, and no code straddles two words. The byte port and the code write port share the
    one write port: byte writes win (the command layer only writes while no inference runs).

    Parameters
    ----------
    depth : int
        Codes held (`NetworkConfig.feature_map_codes`).
    dac_bits : int
        Width of one code.

    Attributes
    ----------
    write : In(WriteSignature(addr_width=16))
        The command layer's byte writes (WRITE_BUF); bytes past the memory are dropped.
    code_read : In(CodeReadSignature(addr_width, dac_bits))
        Synchronous code reads: ``data`` one clock after ``en``, held while ``en`` is low.
    code_write : In(CodeWriteSignature(addr_width, dac_bits))
        Code writes; a write and a read of one address in one clock read the old code.
    """

    def __init__(self, depth: int, dac_bits: int):
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        if dac_bits not in (1, 2, 4, 8):
            raise ValueError(f"the feature-map memory holds whole codes per byte: dac_bits "
                             f"must be 1, 2, 4 or 8, got {dac_bits}")
        self.depth, self.dac_bits = depth, dac_bits
        self.codes_per_word = 8 // dac_bits
        self.words = -(-depth // self.codes_per_word)
        self.num_bytes = (depth * dac_bits + 7) // 8
        self.addr_width = address_width(depth)
        codes = dict(addr_width=self.addr_width, code_bits=dac_bits)
        super().__init__({
            "write": In(WriteSignature(addr_width=16)),
            "code_read": In(CodeReadSignature(**codes)),
            "code_write": In(CodeWriteSignature(**codes)),
        })

    def elaborate(self, platform):
        m = Module()
        b = self.dac_bits
        word_bits = 8
        lane_bits = (self.codes_per_word - 1).bit_length()   # codes_per_word is a power of two
        m.submodules.memory = memory = Memory(shape=word_bits, depth=self.words, init=[])
        rd = memory.read_port()
        wr = memory.write_port(granularity=b)

        # Reads: the word now, the code's lane one clock later (with the data).
        lane = Signal(max(1, lane_bits), name="read_lane")
        m.d.comb += [rd.addr.eq(self.code_read.addr >> lane_bits), rd.en.eq(self.code_read.en)]
        with m.If(self.code_read.en):
            m.d.sync += lane.eq(self.code_read.addr[:lane_bits] if lane_bits else 0)
        m.d.comb += self.code_read.data.eq(rd.data.word_select(lane, b) if lane_bits else rd.data)

        # Writes: a byte fills a word; a code is repeated over the word with only its lane enabled.
        byte, code = self.write, self.code_write
        with m.If(byte.en & (byte.addr < self.num_bytes)):
            # A word is one byte: the byte address is the word address.
            m.d.comb += [wr.addr.eq(byte.addr), wr.data.eq(byte.data), wr.en.eq(-1)]
        with m.Elif(code.en):
            code_lane = code.addr[:lane_bits] if lane_bits else Const(0, 1)
            m.d.comb += [
                wr.addr.eq(code.addr >> lane_bits),
                wr.data.eq(Cat([code.data] * self.codes_per_word)),
                wr.en.eq(Cat(code_lane == i for i in range(self.codes_per_word))),
            ]
        return m
