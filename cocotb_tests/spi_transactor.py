"""The Python side of the HDL SPI transactor harness (`xbarflow.flow.sim.harness`), for fast
co-simulation (cocotb only, not silicon).

Python hands the harness's transactor a whole request frame and gets a whole response frame
back: one await per frame, instead of two per SPI bit over the bit-banged
`xbarflow.cocotb_tests.spi_master.SpiMaster`. `TransactorTransport` is the
`xbarflow.flow.host.driver.Transport` over the harness ports, so `HostDriver` runs unchanged on
either transport.
"""

from __future__ import annotations

from cocotb.triggers import RisingEdge

from xbarflow.flow.sim.harness import (CHIP_TOP, HARNESS_TOP, MAX_FILLER, REQ_BYTES, RESP_BYTES,
                                       SPI_PINS, harness_verilog, write_harness)
from xbarflow.hdl import protocol

__all__ = ["CHIP_TOP", "HARNESS_TOP", "MAX_FILLER", "REQ_BYTES", "RESP_BYTES", "SPI_PINS",
           "TransactorTransport", "harness_verilog", "write_harness"]


class TransactorTransport:
    """`xbarflow.flow.host.driver.Transport` over the harness's transactor: one await per frame exchange."""

    def __init__(self, dut):
        self.dut = dut
        self._tag = 0
        dut.xtor_tag.value = 0
        dut.xtor_en.value = 1

    async def exchange(self, request: bytes) -> bytes:
        request = bytes(request)
        if not 1 <= len(request) <= REQ_BYTES:
            raise ValueError(f"request of {len(request)} bytes; 1..{REQ_BYTES} allowed")
        dut = self.dut
        dut.xtor_req.value = int.from_bytes(request.ljust(REQ_BYTES, b"\x00"), "big")
        dut.xtor_req_len.value = len(request)
        self._tag = (self._tag + 1) & 0xFF
        dut.xtor_tag.value = self._tag
        await RisingEdge(dut.xtor_done)
        if int(dut.xtor_done_tag.value) != self._tag:
            raise protocol.ProtocolError("SPI transactor finished a different exchange")
        if int(dut.xtor_error.value):
            raise protocol.ProtocolError(f"no response: no SYNC within {MAX_FILLER} filler bytes")
        n = int(dut.xtor_resp_len.value)
        resp = dut.xtor_resp.value.to_unsigned() & ((1 << (8 * n)) - 1)
        return resp.to_bytes(n, "big")
