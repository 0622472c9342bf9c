"""One place that picks the host link a bench talks to the chip through.

`make_transport(dut, cfg, kind)`:

* ``"pins"``: the Python BFM on the chip's own host pins, the reference: the bit-banged
  `SpiMaster` under `SpiTransport` (optionally asynchronous to the chip clock, `spi_timing`),
  or `UartTransport`, as the config's host interface says;
* ``"hdl"``: the harness's HDL SPI transactor (`TransactorTransport`, one await per frame);
* ``"fuzz"``: the fuzz bench's rule-breaking pin links (`SpiFuzzLink`, `UartFuzzLink`), which
  hand every byte coming back to a `ResponseParser` instead of returning frames.
"""

from __future__ import annotations

from .fuzz_links import ResponseParser, SpiFuzzLink, UartFuzzLink
from .spi_master import SpiJitter, SpiMaster, SpiTransport
from .spi_transactor import TransactorTransport
from .uart_host import UartTransport

__all__ = ["KINDS", "make_transport"]

KINDS = ("pins", "hdl", "fuzz")


def make_transport(dut, cfg, kind: str, *, spi_timing: dict | None = None,
                   parser: ResponseParser | None = None):
    """The host link of `kind` for the chip `dut` built from `cfg` (see the module docstring).

    `spi_timing` (SPI on "pins" only): the job's seeded jitter and phase for the master; the
    caller starts `master.watch_clock` on a clock edge. `parser` ("fuzz" on UART): where the
    bytes sampled on the chip's TX pin go."""
    period_ns = 1e9 / cfg.clock.freq_hz
    if kind == "hdl":
        return TransactorTransport(dut)
    if kind == "fuzz":
        if cfg.host.interface == "spi":
            return SpiFuzzLink(dut, period_ns * cfg.host.spi_clk_div / 2)
        return UartFuzzLink(dut, period_ns * cfg.host.uart_divider, parser)
    if kind != "pins":
        raise ValueError(f"unknown transport kind {kind!r}; choose one of: {', '.join(KINDS)}")
    if cfg.host.interface == "uart":
        return UartTransport(dut.uart_rx, dut.uart_tx, bit_time_ns=round(period_ns * cfg.host.uart_divider))
    half_ns = period_ns * cfg.host.spi_clk_div / 2
    if spi_timing:
        half_ns = float(spi_timing.get("half_period_ns", half_ns))
    master = SpiMaster(dut.spi_sclk, dut.spi_cs_n, dut.spi_mosi, dut.spi_miso, half_period=half_ns,
                       jitter=SpiJitter.from_job(spi_timing) if spi_timing else None)
    return SpiTransport(master)
