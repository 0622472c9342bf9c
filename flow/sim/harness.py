"""The cocotb-only SPI transactor harness, as Verilog text: a frame-level SPI host in HDL
around the unchanged chip, for fast co-simulation (not silicon).

The bit-banged `xbarflow.cocotb_tests.spi_master.SpiMaster` costs two Python awaits per SPI bit
(about 2,200 per image), which bounds a co-simulation at ~20 images/s. The Verilog module
`xbarflow_spi_xtor` moves the bit shifting into the simulator: it does exactly what
`SpiTransport.exchange` does over `SpiMaster` -- select, send the request, clock 0x00 filler
bytes until SYNC comes back, read the header and the LEN + 1 remaining response bytes,
deselect -- with the same bytes on the wire and the same SCLK/CS timing in clocks, only
shifted half a clock earlier (the BFM changes pins on falling clock edges, the transactor on
rising ones, so the chip's synchronisers sample every change at the same rising edge).

`write_harness` wraps the generated chip (`xbarflow_top`, instantiated unchanged) in a
cocotb-only top level `xbarflow_harness`: every chip port is passed through under its own
name (so the analog bridge and any bench see the same `dut.*` handles), and the chip's SPI
pins come from the transactor while ``xtor_en`` is 1, or from the harness's own ``spi_*``
pins (the bit-banged reference BFM) while it is 0. The Python side (one await per frame) is
`xbarflow.cocotb_tests.spi_transactor.TransactorTransport`.
"""

from __future__ import annotations

import json
from pathlib import Path

from xbarflow.hdl import protocol

__all__ = ["CHIP_TOP", "HARNESS_TOP", "MAX_FILLER", "REQ_BYTES", "RESP_BYTES", "SPI_PINS",
           "TRANSACTOR_VERILOG", "harness_verilog", "write_harness"]

HARNESS_TOP = "xbarflow_harness"
CHIP_TOP = "xbarflow_top"
REQ_BYTES = 6 + protocol.MAX_PAYLOAD      # longest request frame
RESP_BYTES = 4 + protocol.MAX_PAYLOAD     # longest response frame
MAX_FILLER = 512                          # as SpiTransport: filler bytes before giving up
SPI_PINS = ("spi_sclk", "spi_cs_n", "spi_mosi", "spi_miso")

# Plain Verilog rather than Amaranth, for one reason: simulation speed on Icarus. The two wide
# frame registers must be touched only when a byte moves (`if (store) resp <= ...`); Amaranth's
# output recomputes and copies every register's next value on every clock, which made this
# 4 kbit transactor cost more than the whole chip on Icarus (16k instead of 40k clocks/s for
# chip plus transactor, measured on the same machine and load).
TRANSACTOR_VERILOG = r"""
// SPI mode 0 host, MSB first: one request/response frame exchange per change of `tag`.
// Same bytes and timing (in clocks) as xbarflow.cocotb_tests.spi_master.SpiTransport over SpiMaster.
module xbarflow_spi_xtor #(parameter HALF = 2, parameter MAX_FILLER = 512,
                           parameter REQ_BYTES = 261, parameter RESP_BYTES = 259) (
  input clk, input rst,
  input [REQ_BYTES*8-1:0] req,            // request frame, first byte in the top 8 bits
  input [15:0] req_len,                   // request bytes, 1 .. REQ_BYTES
  input [7:0] tag,                        // a new value starts an exchange (when idle)
  output reg [RESP_BYTES*8-1:0] resp,     // response frame, last byte in the low 8 bits
  output reg [15:0] resp_len,             // response bytes received, SYNC included
  output reg done,                        // pulse: exchange finished, outputs stable
  output reg [7:0] done_tag,              // tag of the last finished exchange
  output reg error,                       // no SYNC within MAX_FILLER filler bytes
  output reg sclk, output reg cs_n, output reg mosi, input miso);

  localparam [2:0] IDLE = 0, SELECT = 1, LOW = 2, HIGH = 3, HOLD = 4, GAP = 5;
  localparam [1:0] SEND = 0, HUNT = 1, HEADER = 2, REST = 3;   // what the byte just done is
  localparam [7:0] SYNC = 8'h%(sync)02x;

  reg [2:0] state = IDLE;
  reg [1:0] phase = SEND;
  reg [15:0] timer = 0, sent = 0, fillers = 0, remaining = 0;
  reg [7:0] tx_byte = 0, rx_byte = 0, store_byte = 0;
  reg [2:0] bit_n = 0;
  reg load_req = 0, shift_req = 0, store = 0;
  reg [REQ_BYTES*8-1:0] req_shift = 0;
  wire [7:0] next_req = req_shift[REQ_BYTES*8-1 -: 8];
  wire more_req = (phase == SEND) && (sent != req_len);
  wire finish = ((phase == HUNT) && (rx_byte != SYNC) && (fillers == MAX_FILLER - 1))
              || ((phase == REST) && (remaining == 1));

  initial begin
    resp = 0; resp_len = 0; done = 0; done_tag = 0; error = 0; sclk = 0; cs_n = 1; mosi = 0;
  end

  // The wide registers change only on their strobes (one clock after the FSM asks).
  always @(posedge clk) begin
    if (load_req) req_shift <= req;
    else if (shift_req) req_shift <= req_shift << 8;
    if (store) resp <= {resp[RESP_BYTES*8-9:0], store_byte};
  end

  always @(posedge clk) begin
    done <= 1'b0; load_req <= 1'b0; shift_req <= 1'b0; store <= 1'b0;
    if (rst) begin
      state <= IDLE; cs_n <= 1'b1; sclk <= 1'b0; mosi <= 1'b0; done_tag <= 8'd0; error <= 1'b0;
      resp_len <= 16'd0;
    end else case (state)
      IDLE: if (tag != done_tag) begin
        cs_n <= 1'b0; timer <= 2 * HALF - 1; load_req <= 1'b1; sent <= 16'd0; phase <= SEND;
        resp_len <= 16'd0; error <= 1'b0; fillers <= 16'd0; state <= SELECT;
      end
      SELECT: if (timer == 0) begin      // CS setup: two half periods before bit 7's half
        tx_byte <= next_req; mosi <= next_req[7]; shift_req <= 1'b1; sent <= 16'd1;
        bit_n <= 3'd0; timer <= HALF - 1; state <= LOW;
      end else timer <= timer - 1;
      LOW: if (timer == 0) begin         // SCLK rises; MISO sampled as it was before this edge
        sclk <= 1'b1; rx_byte <= {rx_byte[6:0], miso}; timer <= HALF - 1; state <= HIGH;
      end else timer <= timer - 1;
      HIGH: if (timer == 0) begin
        sclk <= 1'b0; timer <= HALF - 1;
        if (bit_n != 3'd7) begin
          bit_n <= bit_n + 3'd1; tx_byte <= tx_byte << 1; mosi <= tx_byte[6]; state <= LOW;
        end else begin
          case (phase)
            SEND: if (sent == req_len) phase <= HUNT;
            HUNT: if (rx_byte == SYNC) begin
                    store <= 1'b1; store_byte <= rx_byte; resp_len <= resp_len + 16'd1;
                    phase <= HEADER; remaining <= 16'd2;
                  end else if (fillers == MAX_FILLER - 1) error <= 1'b1;
                  else fillers <= fillers + 16'd1;
            HEADER: begin                // STATUS, then LEN: LEN payload bytes + CRC follow
                    store <= 1'b1; store_byte <= rx_byte; resp_len <= resp_len + 16'd1;
                    if (remaining == 1) begin phase <= REST; remaining <= rx_byte + 16'd1; end
                    else remaining <= remaining - 16'd1;
                  end
            REST: begin
                    store <= 1'b1; store_byte <= rx_byte; resp_len <= resp_len + 16'd1;
                    remaining <= remaining - 16'd1;
                  end
          endcase
          if (finish) state <= HOLD;
          else begin
            bit_n <= 3'd0; state <= LOW;
            if (more_req) begin
              tx_byte <= next_req; mosi <= next_req[7]; shift_req <= 1'b1; sent <= sent + 16'd1;
            end else begin
              tx_byte <= 8'h00; mosi <= 1'b0;
            end
          end
        end
      end else timer <= timer - 1;
      HOLD: if (timer == 0) begin        // CS hold after the last falling SCLK edge
        cs_n <= 1'b1; done_tag <= tag; timer <= 2 * HALF - 1; state <= GAP;
      end else timer <= timer - 1;
      GAP: if (timer == 0) begin         // CS high time between windows
        done <= 1'b1; state <= IDLE;
      end else timer <= timer - 1;
      default: state <= IDLE;
    endcase
  end
endmodule
""" % {"sync": protocol.SYNC}


def _clock_module(half_period_ns: float) -> str:
    """The harness clock: toggled by the simulator itself, so no VPI write (no Python, and no
    re-evaluation of all logic fed by top-level inputs) happens per clock edge."""
    return ("module xbarflow_harness_clock(output reg clk);\n"
            "  initial clk = 1'b0;\n"
            f"  always #({half_period_ns!r}) clk = ~clk;\n"
            "endmodule\n")


def _range(width: int) -> str:
    return f"[{width - 1}:0] " if width > 1 else ""


def harness_verilog(ports: list[dict], clock_hz: float, spi_clk_div: int) -> str:
    """Verilog of the harness (clock, transactor, chip instance) for the chip's port list."""
    chip = [p for p in ports if p["name"] not in ("clk", "rst")]
    names = {p["name"] for p in chip}
    if not set(SPI_PINS) <= names:
        raise ValueError("the HDL SPI transactor needs a chip with SPI host pins")
    if spi_clk_div < 4 or spi_clk_div % 2:
        raise ValueError(f"SPI clock divider must be even and >= 4, got {spi_clk_div}")
    decls = ["  input rst;"]
    for p in chip:
        decls.append(f"  {'input' if p['dir'] == 'in' else 'output'} {_range(p['width'])}{p['name']};")
    decls += [
        "  input xtor_en;                       // 1: SPI pins from the transactor",
        f"  input [{REQ_BYTES * 8 - 1}:0] xtor_req;",
        "  input [15:0] xtor_req_len;",
        "  input [7:0] xtor_tag;",
        f"  output [{RESP_BYTES * 8 - 1}:0] xtor_resp;",
        "  output [15:0] xtor_resp_len;",
        "  output xtor_done;",
        "  output [7:0] xtor_done_tag;",
        "  output xtor_error;",
    ]
    port_names = ["rst", *(p["name"] for p in chip), "xtor_en", "xtor_req", "xtor_req_len",
                  "xtor_tag", "xtor_resp", "xtor_resp_len", "xtor_done", "xtor_done_tag",
                  "xtor_error"]
    pins = {"spi_sclk": "xtor_en ? xtor_sclk : spi_sclk", "spi_cs_n": "xtor_en ? xtor_cs_n : spi_cs_n",
            "spi_mosi": "xtor_en ? xtor_mosi : spi_mosi", "spi_miso": "chip_miso"}
    conns = [".clk(clk)", ".rst(rst)"] + [f".{p['name']}({pins.get(p['name'], p['name'])})"
                                          for p in chip]
    return "".join([
        _clock_module(1e9 / clock_hz / 2),
        TRANSACTOR_VERILOG,
        f"\n// cocotb-only top level: the chip unchanged, its clock, and the SPI transactor.\n"
        f"module {HARNESS_TOP}({', '.join(port_names)});\n",
        "\n".join(decls), "\n",
        "  wire clk, xtor_sclk, xtor_cs_n, xtor_mosi, chip_miso;\n",
        "  xbarflow_harness_clock clock (.clk(clk));\n",
        f"  xbarflow_spi_xtor #(.HALF({spi_clk_div // 2}), .MAX_FILLER({MAX_FILLER}), "
        f".REQ_BYTES({REQ_BYTES}), .RESP_BYTES({RESP_BYTES})) xtor (\n",
        "    .clk(clk), .rst(rst), .req(xtor_req), .req_len(xtor_req_len), .tag(xtor_tag),\n",
        "    .resp(xtor_resp), .resp_len(xtor_resp_len), .done(xtor_done), .done_tag(xtor_done_tag),\n",
        "    .error(xtor_error), .sclk(xtor_sclk), .cs_n(xtor_cs_n), .mosi(xtor_mosi), .miso(chip_miso));\n",
        f"  {CHIP_TOP} chip (\n    " + ",\n    ".join(conns) + ");\n",
        "  assign spi_miso = chip_miso;\n",
        "endmodule\n",
    ])


def write_harness(sidecar: Path, out_dir: Path, spi_clk_div: int) -> Path:
    """Write the harness Verilog for the chip described by its JSON sidecar; return its path.

    Simulate it with a 1 ns time unit (the clock's half period is written in ns)."""
    meta = json.loads(Path(sidecar).read_text())
    if meta["top"] != CHIP_TOP:
        raise ValueError(f"harness expects the chip top '{CHIP_TOP}', got {meta['top']!r}")
    out = Path(out_dir) / f"{HARNESS_TOP}.v"
    out.write_text(harness_verilog(meta["ports"], meta["clock"]["freq_hz"], spi_clk_div))
    return out
