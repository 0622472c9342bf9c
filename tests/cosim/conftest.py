"""Fixtures shared by the co-simulations."""

import pytest

from xbarflow.flow.sim import runner as sim_mod


@pytest.fixture(scope="module")
def sim_root(tmp_path_factory):
    """One build folder for the session's co-simulations; Verilator's runtime objects too."""
    root = tmp_path_factory.getbasetemp() / "sim-builds"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sim_mod, "RUNTIME_CACHE", root / ".verilator-runtime")
        yield root
