"""Stable names of coverage items (flow/analysis/coverage_names.py): Yosys's temporaries and
Amaranth's numbered duplicates rewritten into shapes that do not depend on their numbers, on a
hand-written module in the Yosys backend's style."""

from xbarflow.flow.analysis.coverage_names import StableNames, demangle, stable_scope


def module(n_sum: int, n_next: int, n_mux: int, n_const: int, dup: int) -> list[str]:
    """The same logic with its temporaries numbered `n_*` and a duplicate named `start$dup`."""
    return [
        "module \\top.ctrl (clk, count, start);",
        f"  wire [4:0] \\${n_sum} ;",
        f"  reg [3:0] \\${n_next} ;",
        f"  reg \\${n_mux} ;",
        f"  wire \\${n_const} ;",
        f"  assign \\${n_sum}  = count + 1'h1;",
        f"  assign \\${n_const}  = 1'h1;",
        "  always @(posedge clk)",
        f"    count <= \\${n_next} ;",
        "  always @* begin",
        f"    \\${n_mux}  = 1'h0;",
        f"    if (\\start${dup} )",
        f"      \\${n_mux}  = 1'h1;",
        f"    if (\\${n_mux} ) begin end else if (\\${n_const} ) begin",
        f"      \\${n_next}  = \\${n_sum} [3:0];",
        "    end",
        "  end",
        "endmodule",
    ]


def test_temporaries_and_duplicates_get_their_shape_not_their_number():
    for numbers in ((33, 34, 35, 36, 15), (7, 120, 3, 41, 1164)):
        src = module(*numbers)
        names = StableNames(src)
        assert names.module_at(14) == "top.ctrl" and names.module_at(1) == "top.ctrl"
        assert names.text(src[13].strip(), 14) == "if ($mux(1'h0|1'h1) ) begin end else if ($(1'h1) ) begin"
        assert names.text(src[14].strip(), 15) == "$next(count) = $(count + 1'h1) [3:0];"
        assert names.text(src[11].strip(), 12) == "if (\\start$n )"
        # Toggle points name Verilator's mangled identifiers.
        n_sum = numbers[0]
        assert names.signal(f"__024{n_sum}[4]:0->1", 2) == "$(count + 1'h1)[4]:0->1"
        assert names.signal(f"start__024{numbers[4]}:1->0", 2) == "start$n:1->0"


def test_nesting_is_bounded_and_unknown_temporaries_are_marked():
    src = ["module m (a);", "  assign \\$1 = a + 1'h1;", "  assign \\$2 = \\$1 + 1'h1;",
           "  assign \\$3 = \\$2 + 1'h1;", "  assign \\$4 = \\$3 + 1'h1;", "  assign \\$9 [0] = a;",
           "endmodule"]
    names = StableNames(src)
    assert names.text("x = \\$4 ;", 2) == "x = $($($($? + 1'h1) + 1'h1) + 1'h1) ;"
    assert names.text("x = \\$9 ;", 2) == "x = $? ;", "assigned bit by bit: no shape"


def test_demangle_and_scope():
    assert demangle("counters___05Ferr_cmd") == "counters__err_cmd"
    assert demangle("requant_mult__024115") == "requant_mult$115"
    assert stable_scope("xbarflow_top.command.receiver.crc$39") == "xbarflow_top.command.receiver.crc$n"
    assert stable_scope("xbarflow_top.controller") == "xbarflow_top.controller"


def test_bits_tied_to_constants_are_marked():
    src = ["module m (a, y);", "  input [2:0] a;", "  wire [33:0] \\$19 ;", "  wire [9:0] \\$98 ;",
           "  wire [31:0] \\$9 ;", "  wire [31:0] \\$12 ;", "  wire [13:0] \\$5 ;",
           "  assign \\$19  = { 7'h00, a[2:0], 24'h000000 };", "  assign \\$98  = 10'h000;",
           "  assign \\$9 [31:1] = 31'h00000000;", "  assign \\$9 [0] = a[0];",
           "  assign { \\$12 [31:2], \\$12 [0] } = 31'h00000000;", "  assign \\$12 [1] = a[1];",
           "  assign \\$5  = { \\$98 , a[1], a };", "endmodule"]
    names = StableNames(src)
    tied = {n: {b for b in range(34) if names.tied(n, b, 8)} for n in ("$19", "$98", "$9", "$12", "$5")}
    assert tied["$19"] == set(range(24)) | set(range(27, 34))
    assert tied["$98"] == set(range(10))
    assert tied["$9"] == set(range(1, 32)) and tied["$12"] == set(range(32)) - {1}
    assert tied["$5"] == set(range(4, 14)), "a part that is itself a constant"
    assert names.signal("__02419[30]:1->0", 8) == "$({ 7'h00, a[2:0], 24'h000000 })[30]:1->0 (tied)"
    assert names.signal("__02419[25]:1->0", 8) == "$({ 7'h00, a[2:0], 24'h000000 })[25]:1->0"


def test_bits_on_which_every_constant_alternative_agrees_are_tied():
    src = ["module m (a, c);", "  wire [7:0] \\$3 ;", "  reg [3:0] \\$4 ;", "  reg [3:0] \\$5 ;",
           "  assign \\$3  = c ? 8'h03 : 8'h02;", "  always @* begin", "    \\$4  = 4'h0;",
           "    if (c)", "      \\$4  = 4'ha;", "    \\$5  = 4'h0;", "    if (c)", "      \\$5 [3] = 1'h1;",
           "    \\$6  = 4'h0;", "    if (c) \\$6  = 4'h1;", "  end",
           "  wire [1:0] g;", "  wire [9:0] \\$7 ;", "  assign \\$7  = g * 5'h10;", "endmodule"]
    names = StableNames(src)
    assert {b for b in range(8) if names.tied("$3", b, 5)} == set(range(1, 8)), "3 and 2 differ in bit 0"
    assert {b for b in range(4) if names.tied("$4", b, 5)} == {0, 2}, "0 and 10 agree in bits 0, 2"
    assert not any(names.tied("$5", b, 5) for b in range(4)), "a slice is set elsewhere: no claim"
    assert not any(names.tied("$6", b, 5) for b in range(4)), "a value on an if's line: no claim"
    # g * 16 for g in 0..3: 0, 16, 32, 48: bits 4, 5 vary, the others stay 0
    assert {b for b in range(10) if not names.tied("$7", b, 5)} == {4, 5}
