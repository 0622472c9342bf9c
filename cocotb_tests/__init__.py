"""cocotb benches and their bus models: they run inside the simulator and import xbarflow.flow
and xbarflow.hdl; nothing below them imports this package."""

__all__: list[str] = []
