"""xbarflow.flow.core.paths: one place resolves build/ and runs/; tests never write into the checkout's."""

import os
import subprocess
import sys

from tests.support.user_files import CHECKOUT, changed_user_files, snapshot_user_folders

from xbarflow.flow.core import paths
from xbarflow.flow.model import programming as programming_golden
from xbarflow.flow.sim import runner as sim


def _paths_in_a_fresh_process(env: dict) -> list[str]:
    code = "from xbarflow.flow.core import paths; print(paths.BUILD); print(paths.RUNS); print(paths.WEIGHTS)"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=CHECKOUT, capture_output=True,
                         text=True, check=True).stdout
    return out.split()


def test_the_session_keeps_every_generated_file_out_of_the_checkout():
    for folder in (paths.BUILD, paths.RUNS, paths.WEIGHTS, paths.SIM_BUILD, paths.SYNTH,
                   sim.BUILD_ROOT, sim.RUNTIME_CACHE, programming_golden.WEIGHTS_DIR):
        assert CHECKOUT not in folder.parents, folder
    assert paths.WEIGHTS == paths.BUILD / "weights" and sim.BUILD_ROOT == paths.BUILD / "sim"
    # the shipped reference weights are read from the checkout (read only)
    assert paths.REFERENCE_WEIGHTS == CHECKOUT / "data" / "weights"


def test_users_get_build_and_runs_of_the_checkout_unless_the_environment_says_otherwise(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in (paths.BUILD_ENV, paths.RUNS_ENV)}
    assert _paths_in_a_fresh_process(env) == [str(CHECKOUT / "build"), str(CHECKOUT / "runs"),
                                              str(CHECKOUT / "build" / "weights")]
    env.update({paths.BUILD_ENV: str(tmp_path / "b"), paths.RUNS_ENV: str(tmp_path / "r")})
    assert _paths_in_a_fresh_process(env) == [str(tmp_path / "b"), str(tmp_path / "r"),
                                              str(tmp_path / "b" / "weights")]


def test_the_guard_sees_files_created_changed_and_removed(tmp_path):
    (tmp_path / "build" / "weights").mkdir(parents=True)
    (tmp_path / "build" / "weights" / "a.npz").write_bytes(b"1")
    (tmp_path / "elsewhere.txt").write_text("not guarded")
    before = snapshot_user_folders(tmp_path)
    assert changed_user_files(before, snapshot_user_folders(tmp_path)) == []
    (tmp_path / "elsewhere.txt").write_text("still not guarded")
    assert changed_user_files(before, snapshot_user_folders(tmp_path)) == []
    (tmp_path / "runs" / "demo").mkdir(parents=True)
    assert changed_user_files(before, snapshot_user_folders(tmp_path)) == ["runs", "runs/demo"]
    (tmp_path / "build" / "weights" / "a.npz").write_bytes(b"22")
    assert "build/weights/a.npz" in changed_user_files(before, snapshot_user_folders(tmp_path))
    before = snapshot_user_folders(tmp_path)
    (tmp_path / "build" / "weights" / "a.npz").unlink()
    assert "build/weights/a.npz" in changed_user_files(before, snapshot_user_folders(tmp_path))
