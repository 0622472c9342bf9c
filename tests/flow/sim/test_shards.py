"""`xbarflow sim`: shard plan, checksummed shard results, merge, resume after corruption and
after SIGINT, usage errors, and the same report from a Dask cluster on loopback."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xbarflow.flow.cli import main
from xbarflow.flow.core.hold import HOLD_ENV
from xbarflow.flow.sim.shards import (
    RUN_KEYS,
    merge,
    plan_shards,
    read_result,
    shard_key,
    stable_view,
    write_result,
)
from tests.support.processes import assert_all_gone, dask_cluster, process_group, tree, wait_for

ROOT = Path(__file__).resolve().parents[3]


# -- plan, keys, result files, merge -----------------------------------------------------------

def test_plan_covers_the_images_in_order():
    for n, jobs, size in ((10000, 2, None), (12, 2, 4), (7, 3, None), (1, 4, None), (5, 1, 100)):
        shards = plan_shards(n, jobs, size)
        assert shards[0][0] == 0 and shards[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(shards, shards[1:]))
        assert all(stop > start for start, stop in shards)
        assert plan_shards(n, jobs, size) == shards
    assert len(plan_shards(10000, 2)) == 10          # at most 1,000 images per shard
    assert plan_shards(12, 2, 4) == [(0, 4), (4, 8), (8, 12)]
    assert plan_shards(0, 2) == []


def test_shard_key_changes_with_every_input():
    base = dict(config_digest="c", sim="verilator", transport="hdl", model_digest="m",
                conductance=np.ones((4, 2)), indices=np.arange(3), images=np.zeros((3, 2, 2), np.uint8),
                labels=np.arange(3))
    key = shard_key(**base)
    assert shard_key(**base) == key
    for name, value in (("config_digest", "d"), ("sim", "icarus"), ("transport", "pins"),
                        ("model_digest", "n"), ("conductance", np.ones((4, 2)) * 2),
                        ("indices", np.arange(1, 4)), ("images", np.ones((3, 2, 2), np.uint8)),
                        ("labels", np.arange(3)[::-1].copy())):
        assert shard_key(**{**base, name: value}) != key, name


def test_result_files_detect_truncation_tampering_and_stale_keys(tmp_path):
    payload = {"indices": [0, 1], "classes": [3, 4], "mismatches": []}
    path = tmp_path / "0000.json"
    write_result(path, "k1", payload)
    assert read_result(path, "k1") == (payload, "")
    assert read_result(path, "k2")[0] is None
    assert read_result(tmp_path / "none.json", "k1") == (None, "missing")

    text = path.read_text()
    path.write_text(text[: len(text) // 2])                       # an interrupted write
    assert read_result(path, "k1")[0] is None

    doc = json.loads(text)
    doc["payload"]["classes"][0] = 5                              # a flipped result
    path.write_text(json.dumps(doc))
    assert read_result(path, "k1") == (None, "checksum mismatch (corrupted)")

    doc = json.loads(text)
    del doc["complete"]
    path.write_text(json.dumps(doc))
    assert read_result(path, "k1") == (None, "incomplete")
    assert not list(tmp_path.glob("*.tmp*")), "no temporary files left behind"


def _payload(indices, classes, sums, dac, total=28):
    return {"indices": indices, "classes": classes, "sums": sums,
            "tile_dac_codes": [[[0, d]] for d in dac], "bridge_adc_codes": sums,
            "cycles": {"total": [total], "drive": [4]}, "mismatches": []}


def _golden(classes, sums, codes):
    """A traced golden result of a one-tile chip (2 inputs, 2 outputs), written out by hand."""
    from xbarflow.flow.core.config import TileSpec
    from xbarflow.flow.model.golden import GoldenResult, GoldenTrace

    tile = TileSpec(index=0, layer=0, row_tile=0, col_tile=0, row_start=0, row_stop=codes.shape[1],
                    out_start=0, out_stop=sums.shape[1])
    trace = GoldenTrace(np.zeros((len(classes), 1), dtype=np.int64), (sums,), (sums,), (), (tile,))
    return GoldenResult(adc_codes=sums, classes=classes, trace=trace)


def test_merge_counts_parity_on_the_chips_answers():
    golden_cls = np.array([1, 2, 3, 4])
    golden_sums = np.array([[1, 0], [2, 0], [3, 0], [4, 0]])
    codes = np.array([[5, 6], [7, 8], [9, 10], [11, 12]])
    golden = _golden(golden_cls, golden_sums, codes)
    labels = np.array([1, 2, 0, 4])
    good = [_payload([0, 1], [1, 2], [[1, 0], [2, 0]], [[5, 6], [7, 8]]),
            _payload([2, 3], [3, 4], [[3, 0], [4, 0]], [[9, 10], [11, 12]])]
    m = merge(good, golden, codes, labels)
    assert m["parity"] == 1.0 and m["mismatched_images"] == 0 and m["parity_failures"] == []
    assert m["readback_sha256"] == m["golden_readback_sha256"]
    assert re.fullmatch(r"[0-9a-f]{64}", m["readback_sha256"])

    p = json.loads(json.dumps(good))
    p[1]["sums"][1] = [4, 1]                                   # image 3: one read-back sum
    m = merge(p, golden, codes, labels)
    assert m["images"] == 4 and m["parity"] == 0.75 and m["mismatched_images"] == 1
    assert m["parity_failures"] == ["image 3: differs from golden in sums"]
    assert m["readback_sha256"] != m["golden_readback_sha256"]
    assert m["cosim_accuracy"] == 0.75 and m["golden_accuracy"] == 0.75
    assert m["cycles_per_inference"] == 28 and m["cycles_same_in_every_shard"]
    assert merge(p, golden, codes, labels) == m
    with pytest.raises(ValueError):
        merge(p[::-1], golden, codes, labels)
    p[1]["cycles"]["total"] = [29]
    assert not merge(p, golden, codes, labels)["cycles_same_in_every_shard"]

    p = json.loads(json.dumps(good))
    p[0]["tile_dac_codes"][1] = [[0, [7, 9]]]                  # image 1: a DAC code on the bus
    p[1]["classes"][0] = 4                                     # image 2: RESULT
    p[0]["tile_dac_codes"][0] = [[0, [5, 6]], [0, [5, 6]]]     # image 0: the tile driven twice
    p[1]["bridge_adc_codes"] = [[9, 9], [9, 9]]                # the bridge's codes: not parity
    m = merge(p, golden, codes, labels)
    assert m["parity_failures"] == ["image 0: differs from golden in dac_codes",
                                    "image 1: differs from golden in dac_codes",
                                    "image 2: differs from golden in class"]
    assert m["results_sha256"] != merge(good, golden, codes, labels)["results_sha256"]


# -- the command -------------------------------------------------------------------------------

def _sim(out: Path, *extra: str) -> dict:
    argv = ["sim", "--sim", "verilator", "--images", "12", "--shard-size", "4", "--out", str(out),
            *extra]
    assert main(argv) == 0
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim-local")
    return out, _sim(out, "--jobs", "2")


def test_sim_report(local_run):
    out, report = local_run
    assert report["images"] == 12 and report["shards"] == 3
    assert report["parity"] == 1.0 and report["mismatches"] == []
    assert report["cosim_accuracy"] == report["golden_accuracy"]
    assert report["cycles_per_inference"] == report["cycles_by_phase"]["total"] > 0
    assert report["shards_run"] == 3 and report["shards_reused"] == 0
    assert sorted(p.name for p in (out / "shards").glob("*.json")) == ["0000.json", "0001.json", "0002.json"]
    assert set(RUN_KEYS) <= set(report)


def test_sim_resume_reuses_good_shards_and_reruns_corrupted_ones(local_run, tmp_path):
    out, first = local_run
    work = tmp_path / "run"
    subprocess.run(["cp", "-r", str(out), str(work)], check=True)
    again = _sim(work, "--jobs", "1")
    assert again["shards_reused"] == 3 and again["shards_run"] == 0
    assert stable_view(again) == stable_view(first)

    shards = work / "shards"
    text = (shards / "0001.json").read_text()
    (shards / "0001.json").write_text(text[:-40])                  # truncated
    doc = json.loads((shards / "0002.json").read_text())
    doc["payload"]["classes"] = [(c + 1) % 10 for c in doc["payload"]["classes"]]
    (shards / "0002.json").write_text(json.dumps(doc))             # tampered, old checksum
    mtime0 = (shards / "0000.json").stat().st_mtime_ns
    healed = _sim(work, "--jobs", "2")
    assert healed["shards_reused"] == 1 and healed["shards_run"] == 2
    assert (shards / "0000.json").stat().st_mtime_ns == mtime0, "the good shard was not rerun"
    assert stable_view(healed) == stable_view(first), "corrupted results were never merged"


def test_sim_dask_cluster_gives_the_local_report(local_run, tmp_path):
    from distributed import LocalCluster

    _, local = local_run
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://",
                      host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        report = _sim(tmp_path, "--dask", cluster.scheduler_address)
    assert report["shards_run"] == 3
    assert stable_view(report) == stable_view(local)


@pytest.mark.parametrize("jobs", ["1", "2", "dask"])
def test_sim_sigint_keeps_finished_shards_and_resumes(jobs, local_run, tmp_path):
    """Ctrl-C (SIGINT to the whole foreground group) once shard 0 has finished and the next
    shards are provably running: their simulators are held before image 5 (shard 1) and image 9
    (shard 2) by the bench's test hook (flow/core/hold.py), so the run cannot end first, whatever the
    load. With --dask the client is interrupted and the cluster runs in a group of its own."""
    _, local = local_run
    out, holds = tmp_path / "run", tmp_path / "holds"
    holds.mkdir()
    held = ["image-5"] if jobs == "1" else ["image-5", "image-9"]   # the shards that can start
    for name in held:
        (holds / f"{name}.hold").write_text("")
    env = {**os.environ, HOLD_ENV: str(holds)}
    cmd = [sys.executable, "-m", "xbarflow.flow.cli", "sim", "--sim", "verilator", "--images", "12",
           "--shard-size", "4", "--out", str(out)]
    with contextlib.ExitStack() as stack:
        if jobs == "dask":
            cmd += ["--dask", stack.enter_context(dask_cluster(tmp_path / "dask.log", env=env))]
        else:
            cmd += ["--jobs", jobs]
        proc = stack.enter_context(process_group(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                                 stderr=subprocess.PIPE, text=True))

        def in_the_middle():
            return ((out / "shards" / "0000.json").exists()
                    and all(list(holds.glob(f"{name}.*.held")) for name in held))
        wait_for(in_the_middle, 600, "shard 0 finished and the other shards held", proc)
        run = tree(proc.pid)
        simulators = [int(p.name.split(".")[1]) for p in holds.glob("*.held")]
        if jobs != "dask":
            assert set(simulators) <= set(run), "the held simulators are processes of the run"
        os.killpg(proc.pid, signal.SIGINT)            # Ctrl-C: the whole foreground group
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        assert "interrupted" in err and "run the same command again to resume" in err, err
        assert "failed" not in err, err
        assert sorted(p.name for p in (out / "shards").glob("*.json")) == ["0000.json"]
        assert_all_gone(run, proc.pid)                # no worker, no simulator of the run is left
    resumed = _sim(out, "--jobs", "1")
    assert resumed["shards_reused"] == 1 and resumed["shards_run"] == 2
    assert stable_view(resumed) == stable_view(local)


@pytest.mark.parametrize("argv, needle", [
    (["sim", "--images", "0"], "--images"),
    (["sim", "--images", "ten"], "--images"),
    (["sim"], "--images"),
    (["sim", "--images", "all", "--jobs", "0"], "--jobs"),
    (["sim", "--images", "20000"], "exceeds"),
    (["sim", "--images", "4", "--sim", "modelsim"], "--sim"),
    (["sim", "--images", "4", "--dask", " "], "--dask"),
    (["sim", "--images", "4", "--config", "/nonexistent.toml"], "nonexistent"),
])
def test_usage_errors_are_one_line_exit_2(argv, needle, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err


def test_unreachable_dask_scheduler_is_a_usage_error(tmp_path, capsys):
    assert main(["sim", "--images", "4", "--dask", "tcp://127.0.0.1:9", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot connect" in err
