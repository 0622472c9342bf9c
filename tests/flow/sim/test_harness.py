"""The Verilog harness around the chip (flow/sim/harness.py): every chip port passed through, the
transactor's request and response ports, the internal clock."""

import pytest

from xbarflow.flow.sim.harness import HARNESS_TOP, REQ_BYTES, RESP_BYTES, harness_verilog


# -- the harness and its transactor ------------------------------------------------------------

PORTS = [{"name": "clk", "dir": "in", "width": 1}, {"name": "rst", "dir": "in", "width": 1},
         {"name": "spi_sclk", "dir": "in", "width": 1}, {"name": "spi_cs_n", "dir": "in", "width": 1},
         {"name": "spi_mosi", "dir": "in", "width": 1}, {"name": "spi_miso", "dir": "out", "width": 1},
         {"name": "dac_codes", "dir": "out", "width": 784}, {"name": "adc_codes", "dir": "in", "width": 80},
         {"name": "new_port", "dir": "in", "width": 3}]


def test_harness_passes_every_chip_port_through():
    text = harness_verilog(PORTS, 5e7, 4)
    top = text.split(f"module {HARNESS_TOP}(", 1)[1]
    assert "output [783:0] dac_codes;" in top and "input [79:0] adc_codes;" in top
    assert "input [2:0] new_port;" in top and ".new_port(new_port)" in top
    assert f"input [{REQ_BYTES * 8 - 1}:0] xtor_req;" in top
    assert f"output [{RESP_BYTES * 8 - 1}:0] xtor_resp;" in top
    assert ".spi_sclk(xtor_en ? xtor_sclk : spi_sclk)" in top
    assert "always #(10.0) clk = ~clk;" in text          # 50 MHz: 10 ns half period
    assert ".HALF(2)" in text and "8'ha5" in text.lower()
    assert "input clk" not in top.split(");", 1)[1]       # the clock is internal
    with pytest.raises(ValueError, match="SPI"):
        harness_verilog([p for p in PORTS if p["name"] != "spi_miso"], 5e7, 4)
    with pytest.raises(ValueError, match="divider"):
        harness_verilog(PORTS, 5e7, 5)
