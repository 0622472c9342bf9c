"""`xbarflow sim` (flow/commands/sim.py): the sharded report, resume after corruption and after
SIGINT, usage errors, and the same report from a Dask cluster on loopback."""

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from xbarflow.flow.cli import main
from xbarflow.flow.core.hold import HOLD_ENV
from xbarflow.flow.sim.shards import RUN_KEYS, stable_view
from tests.support.processes import assert_all_gone, dask_cluster, process_group, tree, wait_for

ROOT = Path(__file__).resolve().parents[3]


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
