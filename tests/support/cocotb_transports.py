"""cocotb bench for tests/cosim/test_spi_transactor.py: the HDL SPI transactor against the bit-banged BFM.

Runs on the harness build (transport "hdl"): the same request frames go out once through the
Python `SpiMaster` (harness pins, xtor_en = 0) and once through the transactor (xtor_en = 1);
the response frames must be identical, byte for byte. Then a request the chip never answers
must make the transactor give up after its filler budget, as `SpiTransport` does.
Writes a JSON summary to $XBARFLOW_TRANSPORT_OUT.
"""

import json
import os
from pathlib import Path

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge

from xbarflow.cocotb_tests.spi_master import SpiMaster, SpiTransport
from xbarflow.cocotb_tests.spi_transactor import TransactorTransport
from xbarflow.hdl import protocol
from xbarflow.hdl.protocol import Cmd, Reg

REQUESTS = [
    protocol.encode_request(Cmd.READ_REG, Reg.ID),
    protocol.encode_request(Cmd.READ_REG, Reg.GEOMETRY),
    protocol.encode_request(Cmd.WRITE_REG, Reg.SCRATCH, (0xDEADBEEF).to_bytes(4, "big")),
    protocol.encode_request(Cmd.READ_REG, Reg.SCRATCH),
    protocol.encode_request(Cmd.WRITE_BUF, 3, bytes(range(1, 41))),          # 40-byte payload
    protocol.encode_request(Cmd.READ_BUF, 0, bytes([20])),                   # 20-byte reply
    protocol.encode_request(Cmd.READ_REG, Reg.ID)[:-1] + b"\x00",           # bad CRC: NACK
    protocol.encode_request(0x7E, 0),                                        # unknown: NACK
    protocol.encode_request(Cmd.READ_REG, Reg.FRAMES_OK),
]


async def reset(dut):
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4, rising=False)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2, rising=False)


@cocotb.test()
async def transports_agree(dut):
    dut.xtor_en.value = 0
    dut.xtor_tag.value = 0
    dut.spi_cs_n.value = 1
    dut.spi_sclk.value = 0
    dut.spi_mosi.value = 0
    await reset(dut)

    pins = SpiTransport(SpiMaster(dut.spi_sclk, dut.spi_cs_n, dut.spi_mosi, dut.spi_miso,
                                  half_period=float(os.environ["XBARFLOW_SPI_HALF_NS"])))
    results = {"pins": [], "hdl": [], "no_response": None}
    for req in REQUESTS:
        await FallingEdge(dut.clk)
        results["pins"].append((await pins.exchange(req)).hex())
    await reset(dut)                       # the same chip state for the second pass
    hdl = TransactorTransport(dut)         # takes the pins over from here on
    for req in REQUESTS:
        results["hdl"].append((await hdl.exchange(req)).hex())
    try:
        await hdl.exchange(b"\x00\x11\x22")  # no SYNC: the chip never answers
    except protocol.ProtocolError as exc:
        results["no_response"] = str(exc)
    results["after_error"] = (await hdl.exchange(REQUESTS[0])).hex()   # still usable
    Path(os.environ["XBARFLOW_TRANSPORT_OUT"]).write_text(json.dumps(results))
