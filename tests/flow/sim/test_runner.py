"""Simulator builds (flow/sim/runner.py): two processes building one model at once build it once."""

import contextlib
import re

from tests.support.processes import process_group


def test_concurrent_builds_share_one_model(cfg, tmp_path):
    """Two processes building the same model at once: one builds, the other waits and reuses."""
    import subprocess
    import sys

    code = ("import sys, pathlib; from xbarflow.flow.core import config; from xbarflow.flow.sim.runner import build; "
            "b = build(config.load(), 'icarus', root=pathlib.Path(sys.argv[1])); "
            "print(b.digest, b.build_seconds > 0)")
    with contextlib.ExitStack() as stack:   # both process groups are killed however this ends
        procs = [stack.enter_context(process_group([sys.executable, "-c", code, str(tmp_path)],
                                                   stdout=subprocess.PIPE, text=True))
                 for _ in range(2)]
        outs = [p.communicate(timeout=600)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0][0] == outs[1][0], "same model digest"
    assert sorted(o[1] for o in outs) == ["False", "True"], "built once, reused once"
    assert re.fullmatch(r"[0-9a-f]{64}", outs[0][0])


def test_configs_with_the_same_verilog_share_one_verilator_model(cfg, dataset, weights, tmp_path):
    """Stuck cells change nothing the RTL sees, so the Verilog is the same: the second build
    copies the first's compiled model into its own folder instead of compiling (build time 0),
    and that model co-simulates at parity with the golden chip of its own config. A waves build
    of the same Verilog needs another model (Verilator's --trace): its digest differs."""
    import numpy as np

    from xbarflow.flow.data import to_dac_codes
    from xbarflow.flow.model.golden import GoldenChip
    from xbarflow.flow.sim.runner import build, model_digest, run

    first = build(cfg, "verilator", root=tmp_path / "sim")
    stuck = cfg.replace(**{"device.stuck_on_rate": 0.05})
    second = build(stuck, "verilator", root=tmp_path / "sim")
    assert first.build_seconds > 0 and second.build_seconds == 0, "compiled once, copied once"
    assert second.directory != first.directory and second.digest == first.digest
    assert not list(second.sim_build.glob("*.gch")), "precompiled headers are not copied"
    chip = GoldenChip.from_weights(stuck, weights.w)
    indices = np.array([0, 1])
    r = run(second, chip.array.conductance, dataset.x_test[indices], dataset.y_test[indices],
            indices, tmp_path / "run", timeout_s=600)
    golden = chip.infer(to_dac_codes(dataset.x_test[indices], stuck), indices)
    assert r.mismatches == [] and np.array_equal(r.sums, golden.adc_codes)
    assert np.array_equal(r.classes, golden.classes)
    rtl = [first.rtl.verilog]
    assert model_digest(rtl, [], None) != model_digest(rtl, [], "vcd")
