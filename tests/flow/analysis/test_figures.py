"""Figures (flow/analysis/figures.py): the figures of the shipped reference weights recompute to
exactly figures.json's values, whatever the BLAS thread count (the README blocks made from the
JSON: test_figures_readme.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from xbarflow.flow.analysis import figures
from xbarflow.flow.model.weights import reference_manifest


def test_figures_were_made_with_the_shipped_reference_weights(stored):
    assert stored["reference_weights"] == {k: v["sha256"] for k, v in reference_manifest()["weights"].items()}


def test_reference_figures_recompute_exactly(stored):
    """Golden accuracies and metrics of the shipped configs, the default config's programming
    replay (all fault cases but the slow weak-driver one), the cost table, the sweep row and the
    reference rows of the tables, recomputed from the reference weights: EXACTLY the JSON."""
    ctx = figures.Context(reference_only=True, include_slow=False)
    fresh = figures.compute(ctx=ctx)
    want = figures.reference_view(stored["figures"], include_slow=False)
    assert set(fresh) == set(want)
    for name in want:
        assert fresh[name] == want[name], name
    assert len(want["programming"]) == 4 and len(want["sweep"]["rows"]) == 3
    assert [r["change"] for r in want["mlp_limits"]] == ["none", "crossbar.wire_r=20.0"]


SCRIPT = """
import hashlib, json, sys
from xbarflow.flow.core import config; from xbarflow.flow.analysis import figures; from xbarflow.flow.model import lbfgs, train, weights
from xbarflow.flow.data import load_dataset, to_dac_codes
cfg = config.load(); ds = load_dataset()
w = weights.load_reference(cfg, ds)
codes = to_dac_codes(ds.x_test, cfg)
z = lbfgs.float_scores(w.w, codes)
out = {}
if sys.argv[1:] == ["figures"]:
    ctx = figures.Context(reference_only=True, include_slow=False)
    out = figures.compute(FIGURE_GROUPS, ctx)
out["software_accuracy"] = train.software_accuracy(w, codes, ds.y_test)
out["float_scores_sha256"] = hashlib.sha256(z.tobytes()).hexdigest()
print(json.dumps(out, sort_keys=True))
"""
#: the default config's figures: golden, the programming replay through the array, the cost table
FIGURE_GROUPS = ["golden_slp", "programming", "cost"]


def test_figures_do_not_depend_on_the_blas_thread_count(stored):
    """Two BLAS threads (this machine's cores) give the default config's figures exactly as
    figures.json has them (`make figures` makes them with one thread, and
    test_reference_figures_recompute_exactly recomputes them under `make test`'s one thread), and
    the software accuracy's float sums (xbarflow.flow.model.lbfgs.float_scores, a fixed order)
    bit for bit as with one thread. The figures are computed once, at two threads: the
    one-thread side is the stored JSON. `make figures-check` under both settings covers every
    reference figure."""
    outputs = []
    for threads, args in (("1", []), ("2", ["figures"])):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
        script = SCRIPT.replace("FIGURE_GROUPS", repr(FIGURE_GROUPS))
        proc = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True,
                              text=True, check=True)
        outputs.append(json.loads(proc.stdout))
    one, two = outputs
    want = figures.reference_view(stored["figures"], include_slow=False)
    for name in FIGURE_GROUPS:
        assert two.pop(name) == want[name], name
    assert one == two


def test_slow_groups_are_left_out_of_the_fast_recompute(stored):
    """Group.slow (the MLP read-model rows take minutes): neither computed nor expected by the
    fast test, but part of `reference_view` with the slow rows (`xbarflow figures --check`)."""
    slow = [name for name, g in figures.GROUPS.items() if g.slow]
    assert "qmm_mlp" in slow
    ctx = figures.Context(reference_only=True, include_slow=False)
    assert figures.compute(slow, ctx) == {}
    assert not set(slow) & set(figures.reference_view(stored["figures"], include_slow=False))
    assert set(slow) <= set(figures.reference_view(stored["figures"]))
