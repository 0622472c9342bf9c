"""Processes that tests start, and what is left of them, from /proc (Linux).

`process_group` starts a command in its own session (so its process group holds everything it
starts, as a terminal's foreground job does, and SIGINT is at its default) and kills that whole group when the test ends,
passed or failed, so a failing test leaves nothing running. `tree`, `alive` and `group_members`
say which processes of a run still exist; `wait_for` waits for an event with a generous upper
bound that only ends a hung test."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], ppid [1], pgrp [2],
    start time [19]); None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"


def _all_pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def start_time(pid: int) -> int | None:
    s = _stat(pid)
    return int(s[19]) if s else None


def alive(pid: int, started: int | None = None) -> bool:
    """The process exists and is not a zombie (and, given `started`, is the same process, not
    a later one that reuses the pid)."""
    s = _stat(pid)
    if s is None or s[0] in ("Z", "X"):
        return False
    return started is None or int(s[19]) == started


def tree(pid: int) -> dict[int, int]:
    """{pid: start time} of every process below `pid` (a snapshot)."""
    children: dict[int, list[int]] = {}
    for p in _all_pids():
        s = _stat(p)
        if s:
            children.setdefault(int(s[1]), []).append(p)
    found, todo = {}, list(children.get(pid, []))
    while todo:
        p = todo.pop()
        st = start_time(p)
        if st is not None:
            found[p] = st
        todo.extend(children.get(p, []))
    return found


def group_members(pgid: int) -> list[str]:
    """Live processes of process group `pgid`, as 'pid command' strings."""
    out = []
    for p in _all_pids():
        s = _stat(p)
        if s and int(s[2]) == pgid and s[0] not in ("Z", "X"):
            out.append(f"{p} {_cmdline(p)}")
    return out


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str,
             proc: subprocess.Popen | None = None) -> None:
    """Poll `condition` until it holds; fail after `timeout_s` (an upper bound for a hung test,
    not a guess at how long things take), or at once if `proc` exited meanwhile."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the process exited ({proc.returncode}) before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.05)


def assert_all_gone(pids: dict[int, int], pgid: int, timeout_s: float = 60.0) -> None:
    """Every process in `pids` ({pid: start time}) and every member of group `pgid` has exited."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = [p for p, st in pids.items() if alive(p, st)]
        members = group_members(pgid)
        if not left and not members:
            return
        time.sleep(0.1)
    raise AssertionError("processes of the run are still alive: "
                         f"{[f'{p} {_cmdline(p)}' for p in left]} {members}")


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group of `proc` (a session leader) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.communicate(timeout=30)


#: Exec `argv[1:]` with SIGINT at its default: a test run from a background job or a script
#: inherits an ignored SIGINT, which would make every Ctrl-C test fail (no preexec_fn: the
#: test process may have threads).
_DEFAULT_SIGINT = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                   "os.execvp(sys.argv[1], sys.argv[1:])")


@contextlib.contextmanager
def process_group(cmd: list[str], **kwargs):
    """`subprocess.Popen(cmd, start_new_session=True, **kwargs)` with SIGINT at its default,
    as in a terminal's foreground job; its whole process group is killed when the block ends,
    however it ends."""
    import sys

    proc = subprocess.Popen([sys.executable, "-c", _DEFAULT_SIGINT, *cmd], start_new_session=True,
                            **kwargs)
    try:
        yield proc
    finally:
        kill_group(proc)


DASK_CLUSTER = """
import sys
from distributed import LocalCluster
with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp://",
                  host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster:
    print(cluster.scheduler_address, flush=True)
    sys.stdin.read()   # until the test ends (its stdin closes, or the group is killed)
"""


@contextlib.contextmanager
def dask_cluster(log: Path, env: dict | None = None):
    """A loopback Dask cluster in a process group of its own (one worker, two threads): a
    client interrupted in another group cannot reach its tasks, as with a remote cluster.
    Yields the scheduler address; the cluster and everything its tasks started are killed
    at the end."""
    import sys

    env = dict(os.environ if env is None else env)   # the checkout: test jobs (tests.*) unpickle there
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[2]),
                                                    env.get("PYTHONPATH")) if p)
    with open(log, "w") as err, process_group([sys.executable, "-c", DASK_CLUSTER], env=env,
                                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                              stderr=err, text=True) as proc:
        address = proc.stdout.readline().strip()
        assert address.startswith("tcp://127.0.0.1:"), f"no Dask cluster: see {log}"
        yield address
