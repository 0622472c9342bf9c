"""flow.executor: local process pool, inline runs, Dask on a loopback LocalCluster."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from flow.executor import ExecutorError, JobError, chunk, default_jobs, map_jobs


def _square(x):
    return x * x


def _pid(_):
    time.sleep(0.2)   # long enough that both workers get a job
    return os.getpid()


def _sleepy(x):
    time.sleep(0.15 * (3 - x))   # later items finish first
    return x


def _fail_on_3(x):
    if x == 3:
        raise ValueError("three")
    time.sleep(0.05)
    return x


def test_inline_results_and_progress_in_order():
    seen = []
    assert map_jobs(_square, range(5), jobs=1, progress=lambda i, r: seen.append((i, r))) == \
        [0, 1, 4, 9, 16]
    assert seen == [(0, 0), (1, 1), (2, 4), (3, 9), (4, 16)]


def test_pool_runs_jobs_in_other_processes():
    pids = map_jobs(_pid, range(4), jobs=2)
    assert os.getpid() not in pids
    assert len(set(pids)) == 2


def test_pool_returns_item_order_and_reports_completion_order():
    seen = []
    ticks = []
    results = map_jobs(_sleepy, range(4), jobs=2, progress=lambda i, r: seen.append(i),
                       tick=lambda: ticks.append(1), tick_s=0.05)
    assert results == [0, 1, 2, 3]
    assert sorted(seen) == [0, 1, 2, 3]
    assert seen != [0, 1, 2, 3], "progress follows completion, not item order"
    assert ticks, "tick is called while waiting"


@pytest.mark.parametrize("jobs", [1, 2])
def test_failure_names_the_item_and_keeps_finished_results(jobs):
    delivered = {}
    with pytest.raises(JobError) as info:
        map_jobs(_fail_on_3, range(6), jobs=jobs, progress=lambda i, r: delivered.__setitem__(i, r))
    assert info.value.index == 3
    assert isinstance(info.value.__cause__, ValueError)
    assert "three" in str(info.value)
    assert 3 not in delivered
    assert all(delivered[i] == i for i in delivered)
    assert {0, 1, 2} <= set(delivered)


def test_bad_arguments():
    with pytest.raises(ValueError):
        map_jobs(_square, [1], jobs=0)
    assert map_jobs(_square, [], jobs=3) == []
    assert default_jobs() >= 1
    assert chunk(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    with pytest.raises(ValueError):
        chunk([1], 0)


@pytest.fixture(scope="module")
def dask_address():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://",
                      host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster:
        yield cluster.scheduler_address


def test_dask_matches_local(dask_address):
    assert dask_address.startswith("tcp://127.0.0.1:")
    seen = []
    assert map_jobs(_square, range(6), dask_address=dask_address,
                    progress=lambda i, r: seen.append(i)) == map_jobs(_square, range(6), jobs=2)
    assert sorted(seen) == list(range(6))


def test_dask_failure_is_a_job_error(dask_address):
    with pytest.raises(JobError) as info:
        map_jobs(_fail_on_3, range(5), dask_address=dask_address)
    assert info.value.index == 3


def test_unreachable_scheduler_is_an_executor_error():
    with pytest.raises(ExecutorError, match="cannot connect"):
        map_jobs(_square, [1], dask_address="tcp://127.0.0.1:9")


WORKER_SCRIPT = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from flow.executor import map_jobs
    import test_executor as t
    try:
        map_jobs(t._record_and_sleep, [{tmp!r}] * 4, jobs=2)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
""")


def _record_and_sleep(folder):
    Path(folder, f"{os.getpid()}.pid").write_text("")
    # A child process of the worker, like a simulator: it must not outlive the interrupt.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    Path(folder, f"{child.pid}.child").write_text("")
    try:
        return subprocess.run([sys.executable, "-c", "import time; time.sleep(60)"]).returncode
    finally:
        child.kill()
        child.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:   # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_sigint_to_the_parent_stops_workers_and_their_children(tmp_path):
    script = WORKER_SCRIPT.format(tests=str(Path(__file__).parent), tmp=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("*.pid"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(list(tmp_path.glob("*.pid"))) == 2, "two workers started jobs"
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGINT)          # the parent only, not its process group
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "interrupted" in out
    pids = [int(p.stem) for p in tmp_path.glob("*.pid")] + [int(p.stem) for p in tmp_path.glob("*.child")]
    assert len(pids) == 4
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids), "workers and their children exited"
