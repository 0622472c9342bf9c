"""The `sweep` subcommand (flow/commands/sweep.py): CSV and PNG output, bad parameters, the same
rows from a Dask cluster, an unreachable scheduler, and Ctrl-C."""

import csv
import os
import signal
import subprocess
import sys

import pytest

from xbarflow.flow.cli import main
from xbarflow.flow.core.hold import HOLD_ENV
from tests.support.processes import assert_all_gone, process_group, tree, wait_for


def test_cli_writes_csv_and_png(tmp_path, capsys):
    argv = ["sweep", "--param", "adc.bits=4,8", "--param", "crossbar.wire_r=0,2",
            "--out", str(tmp_path), "--jobs", "2"]
    assert main(argv) == 0
    with (tmp_path / "sweep.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["adc.bits"], r["crossbar.wire_r"]) for r in rows] == [("4", "0"), ("4", "2"), ("8", "0"), ("8", "2")]
    acc = {(r["adc.bits"], r["crossbar.wire_r"]): float(r["golden_accuracy"]) for r in rows}
    assert all(0.5 < a < 1 for a in acc.values())
    assert acc[("8", "0")] > acc[("4", "0")], "4-bit ADCs cost accuracy"
    energy = {r["adc.bits"]: float(r["energy_pj"]) for r in rows}
    assert energy["8"] > energy["4"]
    png = (tmp_path / "sweep.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("param, needle", [
    ("adcc.bits=4", "did you mean 'adc'"),
    ("adc.bitz=4", "did you mean 'bits'"),
    ("adc.bits=40", "adc.bits must be in 2..16"),
    ("adc.bits", "use KEY=V1,V2"),
])
def test_cli_bad_parameters_exit_2(param, needle, tmp_path, capsys):
    assert main(["sweep", "--param", param, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1, err


def test_dask_cluster_gives_the_local_rows(cfg, tmp_path, capsys):
    """`xbarflow sweep --dask` on a loopback LocalCluster writes the rows a local run writes."""
    from distributed import LocalCluster

    argv = ["sweep", "--param", "adc.bits=4,8", "--param", "crossbar.wire_r=0,2"]
    assert main(argv + ["--out", str(tmp_path / "local"), "--jobs", "2"]) == 0
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://",
                      host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster:
        assert main(argv + ["--out", str(tmp_path / "dask"), "--dask", cluster.scheduler_address]) == 0
    assert "Dask at tcp://127.0.0.1:" in capsys.readouterr().err

    def rows(name):
        with (tmp_path / name / "sweep.csv").open() as fh:
            return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]
    assert rows("dask") == rows("local") and len(rows("dask")) == 4


def test_unreachable_dask_scheduler_is_a_usage_error(tmp_path, capsys):
    assert main(["sweep", "--param", "adc.bits=4", "--out", str(tmp_path),
                 "--dask", "tcp://127.0.0.1:9"]) == 2
    error = capsys.readouterr().err.splitlines()[-1]   # after the "[sweep] ..." progress line
    assert error.startswith("xbarflow: cannot connect to the Dask scheduler"), error


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_is_an_interrupt_not_a_failed_point(jobs, tmp_path):
    """SIGINT to the whole group while every point that can run is held inside
    `evaluate_point` (the test hook of flow/core/hold.py): exit 130, no row written, no process left."""
    holds = tmp_path / "holds"
    holds.mkdir()
    held = ["sweep-adc.bits=4"] if jobs == "1" else ["sweep-adc.bits=4", "sweep-adc.bits=8"]
    for name in held:
        (holds / f"{name}.hold").write_text("")
    cmd = [sys.executable, "-m", "xbarflow.flow.cli", "sweep", "--param", "adc.bits=4,8", "--jobs", jobs,
           "--out", str(tmp_path / "out")]
    with process_group(cmd, env={**os.environ, HOLD_ENV: str(holds)}, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True) as proc:
        wait_for(lambda: all(list(holds.glob(f"{n}.*.held")) for n in held), 600,
                 "every point that can run held", proc)
        run = tree(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        assert "interrupted" in err and "nothing written" in err, err
        assert "Traceback" not in err and "failed" not in err, err
        assert not (tmp_path / "out" / "sweep.csv").exists()
        assert_all_gone(run, proc.pid)
