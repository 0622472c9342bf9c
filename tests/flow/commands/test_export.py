"""`xbarflow export`: the bundle of the SLP and of the MLP, read back with nothing but csv, json
and tomllib (the target conductances of every tile, the requantiser registers of the manifest,
the config TOML), reproduces the golden accuracy of their reference weights on the full test set;
the manifest's SHA-256 of every file holds; the schedule's totals are the replay's."""

import csv
import hashlib
import json
import tomllib

import numpy as np
import pytest

from xbarflow.flow.analysis import figures
from xbarflow.flow.cli import main
from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.model.weights import load_reference


def read_bundle(folder):
    """(config, per-layer conductances, requant_mult) from the bundle's files alone."""
    manifest = json.loads((folder / "manifest.json").read_text())
    cfg = cfgmod.from_dict(tomllib.loads((folder / "config.toml").read_text()))
    layers = [np.full((n_in, 2 * n_out), np.nan) for n_in, n_out in cfg.network.layer_shapes]
    for tile in manifest["tiles"]:
        with (folder / tile["targets"]).open() as fh:
            for row in csv.DictReader(fh):
                if int(row["layer"]) < 0:
                    continue
                col = 2 * int(row["output"]) + (row["sign"] == "-")
                layers[int(row["layer"])][int(row["input"]), col] = float(row["target_conductance_S"])
    assert not any(np.isnan(g).any() for g in layers), "every used cell is in exactly one tile file"
    return manifest, cfg, layers


#: the MLP's bundle with the ideal write: what this test checks (read-back accuracy, schedule
#: totals) does not depend on the write physics, and 10 tiles through the array take minutes
#: (tests/flow/interop/test_bundle.py checks the schedule through the array)
OVERRIDES = {"slp": {}, "mlp": {"programming.bias": "ideal"}}


@pytest.mark.parametrize("name, tiles", [("slp", 1), ("mlp", 10)])
def test_bundle_reproduces_the_golden_accuracy(name, tiles, dataset, tmp_path, capsys):
    path = cfgmod.CONFIG_DIR / f"{name}.toml"
    out = tmp_path / "bundle"
    sets = [a for k, v in OVERRIDES[name].items() for a in ("--set", f"{k}={v}")]
    assert main(["export", "--config", str(path), "--out", str(out), *sets]) == 0
    manifest, cfg, layers = read_bundle(out)
    assert len(manifest["tiles"]) == tiles and cfg.digest() == manifest["config_digest"]
    assert cfg == cfgmod.load(path).replace(**OVERRIDES[name])
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest, rel
    assert {"rtl/xbarflow_top.v", "rtl/xbarflow_top.json", "protocol/xbarflow.h",
            "protocol/registers.json", "protocol/protocol.md"} <= set(manifest["files"])
    sidecar = json.loads((out / "rtl" / "xbarflow_top.json").read_text())
    assert sidecar["config_digest"] == manifest["config_digest"]

    codes = to_dac_codes(dataset.x_test, cfg)
    from_bundle = GoldenChip(cfg, layers, manifest["requant_mult"] or None).infer(codes).classes
    ref = load_reference(cfgmod.load(path), dataset)
    expected = GoldenChip.from_weights(cfg, ref).infer(codes).classes
    accuracy = float(np.mean(from_bundle == dataset.y_test))
    assert accuracy == float(np.mean(expected == dataset.y_test)) == manifest["golden_accuracy"]
    assert list(manifest["requant_mult"]) == list(ref.requant_mult)
    printed = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert printed["golden_accuracy"] == accuracy

    # the schedule: per-tile pulse totals and per-cell lengths agree with each other
    for tile in manifest["tiles"]:
        with (out / tile["schedule"]).open() as fh:
            rows = list(csv.DictReader(fh))
        assert all(len(r["polarity"]) == int(r["pulses"]) for r in rows)
        assert max(int(r["pulses"]) for r in rows) == tile["pulses_per_cell_max"]
        assert sum(int(r["failed"]) for r in rows) == tile["failures"]
    if name == "slp":   # figures.json's programming replay (no faults): the README's table
        none = figures.load_stored()["figures"]["programming"]["none"]
        assert round(sum(int(r["pulses"]) for r in rows) / len(rows), 4) == none["pulses_per_cell_mean"]
        assert manifest["tiles"][0]["pulse_events"] == none["pulse_events"]
        assert manifest["golden_accuracy_programmed"] == none["golden_programmed"]
