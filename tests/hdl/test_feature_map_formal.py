"""Formal proof (SymbiYosys, tests/support/formal.py) of the feature-map memory's write and read
rules, for every sequence of host byte writes, code writes and code reads (every port free,
both writes in one clock too, byte addresses past the memory too).

The harness watches one code address ``a`` (AnyConst: every address at once) and keeps its own
copy of the code there, written from the packing rule of the host's stream (code ``a`` is bits
``[a*b, a*b + b)`` of the byte stream, so byte ``a*b >> 3`` at bit offset ``a*b & 7``), not from
the RTL's word/lane split; a byte write wins over a code write in the same clock. It asserts

- a read of ``a`` returns, one clock later and for as long as no other read follows, the code
  written last before the read's clock (a write and a read of one address in one clock read the
  old code): so a code written is the code read back one clock later;
- the memory cell of ``a`` always holds the harness's copy (a comb read port added to the
  harness's copy of the memory, not to the component): no write to another code address, and no
  byte write other than to ``a``'s own byte (its two nibbles at 4 bits a code), ever changes it.

k-induction length 4: the cell equals the copy in every state, and the read data register is
loaded from that cell (held while the enable is low), so two clocks close the induction; 4
lets the base case reach a write, a read and a held read of another lane (a broken copy that
does not hold the data fails only there)."""

import pytest
from amaranth.asserts import AnyConst
from amaranth.hdl import Assert, Assume, Const, Module, Signal

from xbarflow.hdl import feature_map
from tests.support.formal import Elaborated, mutated, prove

pytestmark = pytest.mark.formal

DEPTH = 4
# (depth in codes, code width): an odd depth leaves the last byte half used at 4 bits
GEOMETRIES = [(5, 4), (7, 2), (3, 8)]


def harness(depth, bits, module=feature_map):
    m = Module()
    dut = Elaborated(module.FeatureMap(depth, bits))
    m.submodules.dut = dut.fragment
    fm = dut.component
    ports = {name: Signal(len(sig), name=name) for name, sig in (
        ("byte_addr", fm.write.addr), ("byte_data", fm.write.data), ("byte_en", fm.write.en),
        ("code_addr", fm.code_write.addr), ("code_data", fm.code_write.data),
        ("code_en", fm.code_write.en), ("read_addr", fm.code_read.addr),
        ("read_en", fm.code_read.en))}
    m.d.comb += [fm.write.addr.eq(ports["byte_addr"]), fm.write.data.eq(ports["byte_data"]),
                 fm.write.en.eq(ports["byte_en"]), fm.code_write.addr.eq(ports["code_addr"]),
                 fm.code_write.data.eq(ports["code_data"]), fm.code_write.en.eq(ports["code_en"]),
                 fm.code_read.addr.eq(ports["read_addr"]), fm.code_read.en.eq(ports["read_en"])]

    a = AnyConst(len(fm.code_read.addr))
    m.d.comb += Assume(a < depth)
    bit = a * bits
    own_byte, offset = bit >> 3, bit & 7
    # The memory starts all zero and a reset does not clear it: neither does the copy.
    copy = Signal(bits, name="copy", reset_less=True)
    byte_lands = ports["byte_en"] & (ports["byte_addr"] < (depth * bits + 7) // 8)
    with m.If(byte_lands):
        with m.If(ports["byte_addr"] == own_byte):
            m.d.sync += copy.eq(ports["byte_data"] >> offset)
    with m.Elif(ports["code_en"] & (ports["code_addr"] == a)):
        m.d.sync += copy.eq(ports["code_data"])

    # The cell of `a` through a comb read port on the harness's copy of the memory instance.
    memory = dut.sub("memory").fragment
    words = -(-depth // (8 // bits))
    assert words > 1, "a one-word memory has no word address to peek at"
    peek_addr, peek = Signal(range(words), name="peek_addr"), Signal(8, name="peek_word")
    m.d.comb += peek_addr.eq(own_byte)
    memory.read_port(domain="comb", addr=peek_addr, data=peek, en=Const(1), transparent_for=())
    m.d.comb += Assert(((peek >> offset) & ((1 << bits) - 1)) == copy)

    watching, expected = Signal(name="watching"), Signal(bits, name="expected")
    with m.If(ports["read_en"]):
        m.d.sync += [watching.eq(ports["read_addr"] == a), expected.eq(copy)]
    with m.If(watching):
        m.d.comb += Assert(fm.code_read.data == expected)
    return m, list(ports.values())


@pytest.mark.parametrize("depth, bits", GEOMETRIES)
def test_a_code_reads_back_as_written_and_a_write_touches_only_its_own_code(depth, bits, tmp_path):
    result = prove(*harness(depth, bits), tmp_path, depth=DEPTH, name="feature_map",
                   script=("memory_map",))
    assert result.passed, result.summary() + "\n" + result.log[-3000:]


@pytest.mark.parametrize("old, new", [
    # catalogue mutant feature_map_nibbles_swapped: code 2k read from the high nibble
    ("rd.data.word_select(lane, b)", "rd.data.word_select(~lane, b)"),
    # bytes past the memory no longer dropped: they wrap onto the first words
    ("with m.If(byte.en & (byte.addr < self.num_bytes)):", "with m.If(byte.en):"),
    # a byte write lands in the next byte
    ("wr.addr.eq(byte.addr)", "wr.addr.eq(byte.addr + 1)"),
    # a code write enables every lane of its word: it overwrites its neighbours
    ("wr.en.eq(Cat(code_lane == i for i in range(self.codes_per_word)))", "wr.en.eq(-1)"),
    # the read lane follows the address even while the enable is low: read data not held
    ("with m.If(self.code_read.en):\n            m.d.sync += lane", "with m.If(1):\n            m.d.sync += lane"),
])
def test_a_broken_feature_map_fails_the_proof(old, new, tmp_path):
    result = prove(*harness(5, 4, mutated(feature_map, old, new)), tmp_path, depth=DEPTH,
                   name="mutant", script=("memory_map",))
    assert result.status == "FAIL", result.summary() + "\n" + result.log[-3000:]
