"""xbarflow.flow.sim.executor: local process pool, inline runs, Dask on a loopback LocalCluster, and
interruption (SIGINT to the parent or its whole group) that leaves no process behind."""

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from xbarflow.flow.sim.executor import ExecutorError, JobError, chunk, default_jobs, map_jobs
from tests.support.processes import assert_all_gone, dask_cluster, process_group, tree, wait_for


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


# -- interruption -----------------------------------------------------------------------------

def _interrupt_at_2(args):
    """Item 2 gets a SIGINT in its own process, as a worker does when the terminal's Ctrl-C
    reaches the whole process group; `then` is what the job makes of it."""
    x, then = args
    if x != 2:
        time.sleep(0.05)
        return x
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(60)
    except KeyboardInterrupt:
        if then == "fail":   # e.g. a wrapper whose simulator died of the same SIGINT
            raise RuntimeError("simulator exited with -2") from None
        if then == "swallow":
            return x
        raise
    raise AssertionError("the SIGINT did not interrupt the job")


@pytest.fixture
def default_sigint():
    """Python's own SIGINT handler, even when the tests were started with SIGINT ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("then", ["raise", "fail", "swallow"])
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_sigint_inside_a_job_is_an_interrupt_not_a_failure(jobs, then, default_sigint):
    # Item 2 is the last one, so no later job of that worker can report the interrupt for it.
    delivered = {}
    with pytest.raises(KeyboardInterrupt):
        map_jobs(_interrupt_at_2, [(x, then) for x in range(3)], jobs=jobs,
                 progress=lambda i, r: delivered.__setitem__(i, r))
    assert 2 not in delivered and all(delivered[i] == i for i in delivered), \
        "finished jobs are delivered (a job still running at the interrupt is interrupted too)"
    if jobs == 1:
        assert delivered == {0: 0, 1: 1}
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "handler restored"
    assert map_jobs(_square, range(3), jobs=jobs) == [0, 1, 4], "the next run is unaffected"


def _keyboard_interrupt_at_2(x):
    if x == 2:
        raise KeyboardInterrupt
    return x


def test_dask_job_interrupted_is_an_interrupt(dask_address):
    with pytest.raises(KeyboardInterrupt):
        map_jobs(_keyboard_interrupt_at_2, range(5), dask_address=dask_address)
    assert map_jobs(_square, range(4), dask_address=dask_address) == [0, 1, 4, 9], \
        "the Dask workers survive an interrupted job"


SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    import tests.flow.sim.test_executor as t
    from xbarflow.flow.sim.executor import map_jobs
    jobs, where = {jobs!r}, sys.argv[1:]
    try:
        if where:   # a Dask scheduler's address
            map_jobs(t._start_children_and_wait, [({tmp!r}, False)] * 4, dask_address=where[0])
        else:
            map_jobs(t._start_children_and_wait, [({tmp!r}, jobs > 1)] * 4, jobs=jobs)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
    print("finished", flush=True)
""")


def _start_children_and_wait(args):
    """Like a shard: a child the job waits on (a simulator under subprocess.run) and, with
    `stray`, a child the job forgets, which the executor must still not leave behind. Each
    child writes its own pid file once it runs."""
    folder, stray = args
    Path(folder, f"{os.getpid()}.worker").write_text("")
    record = 'echo > "$0/$$.$1"; exec sleep 600'
    if stray:
        subprocess.Popen(["sh", "-c", record, folder, "stray"])
    return subprocess.run(["sh", "-c", record, folder, "child"]).returncode


@pytest.mark.parametrize("jobs, target", [(2, "parent"), (2, "group"), (1, "parent"), (1, "group"),
                                          ("dask", "parent"), ("dask", "group")])
def test_sigint_stops_the_jobs_and_leaves_no_process(jobs, target, tmp_path):
    """SIGINT to the parent alone (`kill -INT`) or to its whole process group (a terminal's
    Ctrl-C), once every job that can start has its children running. On Dask the parent is the
    client; the cluster runs elsewhere (its tasks cannot be stopped, only cancelled)."""
    jobs_dir = tmp_path / "jobs"
    jobs_dir.mkdir()
    script = SCRIPT.format(root=str(Path(__file__).resolve().parents[3]), tmp=str(jobs_dir), jobs=jobs)
    running = 1 if jobs == 1 else 2
    with contextlib.ExitStack() as stack:
        where = [stack.enter_context(dask_cluster(tmp_path / "dask.log"))] if jobs == "dask" else []
        proc = stack.enter_context(process_group([sys.executable, "-c", script, *where],
                                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                 text=True))

        def started():
            return (len(list(jobs_dir.glob("*.child"))) == running
                    and len(list(jobs_dir.glob("*.stray"))) == (running if jobs == 2 else 0))
        wait_for(started, 300, f"{running} job(s) with their children running", proc)
        run = tree(proc.pid)
        if jobs != "dask":
            recorded = {int(p.stem) for p in jobs_dir.iterdir()} - {proc.pid}
            assert recorded <= set(run), "the recorded processes belong to the run"
        if target == "parent":
            os.kill(proc.pid, signal.SIGINT)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130 and "interrupted" in out, (proc.returncode, out, err)
        assert "Traceback" not in err, err
        assert_all_gone(run, proc.pid)
