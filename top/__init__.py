"""The `xbarflow` package itself (setuptools maps `xbarflow` to this folder): the Python API.

    import xbarflow
    chip = xbarflow.Chip.from_config("configs/slp.toml")

The flow, the HDL, the analog models and the benches are its subpackages `xbarflow.flow`,
`xbarflow.hdl`, `xbarflow.analog_models`, `xbarflow.cocotb_tests` (their own folders).
"""

from xbarflow.flow.api import Chip, Cosimulation, Programming

__all__ = ["Chip", "Cosimulation", "Programming"]
