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
