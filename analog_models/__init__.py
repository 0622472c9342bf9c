"""Python models of the analog side: devices, mapping, crossbar, DAC, sensing, ADC.

They never see a clock: the cocotb analog bridge and the golden model call them with integer
codes at the analog boundary and get integer codes (and latencies in cycles) back.
"""

__all__: list[str] = []
