"""Map independent jobs over a local process pool or a Dask distributed cluster.

This is the one place that chooses where jobs run. Callers (the sharded `sim` command, the
parameter sweep) hand it a function and a list of items:

    results = map_jobs(fn, items, jobs=2)                          # local processes
    results = map_jobs(fn, items, dask_address="tcp://host:8786")  # an existing Dask cluster

`fn` must be a module-level function (it is pickled to the workers) and each item must be
picklable. Results come back in item order; `progress(index, result)` is called in the calling
process as each job finishes, in completion order, so a caller can persist finished work at
once (the `sim` command writes each shard's result file there, which is what makes an
interrupted run resumable). `tick()`, if given, is called about every `tick_s` seconds while
waiting (for progress bars that poll).

Failure and interruption: when a job raises, `JobError` is raised, naming the item (the job's
exception is its cause). Locally no new job starts and the jobs already running finish first
(their results still go to `progress`); with Dask the remaining futures are cancelled. On Ctrl-C
(KeyboardInterrupt) the local workers are interrupted too (each gets SIGINT once, so a simulator
subprocess it waits on is killed by `subprocess.run`, and it refuses queued jobs), and the
KeyboardInterrupt propagates; with Dask the futures are cancelled.

Local workers are started with the "spawn" method (no fork of a parent that may hold threads,
e.g. a progress bar's). `jobs=1` without Dask runs the jobs in the calling process.
A Dask cluster's workers must import this package (same environment) and, for file-based jobs
such as co-simulation shards, see the same file system paths as the caller.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
from typing import Any, Callable, Iterable, Sequence


class ExecutorError(RuntimeError):
    """The executor itself cannot run (e.g. the Dask scheduler is unreachable)."""


class JobError(RuntimeError):
    """A job raised; ``index`` is its position in the items, the cause is chained."""

    def __init__(self, index: int, item: Any, exc: BaseException):
        self.index, self.item, self.exc = index, item, exc
        super().__init__(f"job {index} failed: {type(exc).__name__}: {exc}")


def default_jobs() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# -- local worker side ---------------------------------------------------------------------------
_running_job = False
_interrupted = False


def _worker_sigint(signum, frame):
    # The first SIGINT interrupts a running job (subprocess.run then kills the simulator it
    # waits on); after it the worker refuses queued jobs. A later SIGINT changes nothing, so it
    # cannot disturb that clean-up, and an idle worker exits without a traceback.
    global _interrupted
    first = not _interrupted
    _interrupted = True
    if _running_job and first:
        raise KeyboardInterrupt


def _worker_init() -> None:
    signal.signal(signal.SIGINT, _worker_sigint)


def _call(fn: Callable, item: Any) -> Any:
    global _running_job
    if _interrupted:
        raise KeyboardInterrupt("not started: the run was interrupted")
    _running_job = True
    try:
        return fn(item)
    finally:
        _running_job = False


# -- the caller's side -------------------------------------------------------------------------
def map_jobs(fn: Callable[[Any], Any], items: Iterable[Any], *, jobs: int = 1,
             dask_address: str | None = None,
             progress: Callable[[int, Any], None] | None = None,
             tick: Callable[[], None] | None = None, tick_s: float = 0.5) -> list[Any]:
    """Run ``fn(item)`` for every item (see the module docstring); return results in order."""
    items = list(items)
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if not items:
        return []
    if dask_address:
        return _map_dask(fn, items, dask_address, progress, tick, tick_s)
    if jobs == 1:
        return _map_inline(fn, items, progress, tick)
    return _map_pool(fn, items, min(jobs, len(items)), progress, tick, tick_s)


def _map_inline(fn, items, progress, tick) -> list[Any]:
    results = []
    for i, item in enumerate(items):
        try:
            result = fn(item)
        except Exception as exc:
            raise JobError(i, item, exc) from exc
        results.append(result)
        if progress:
            progress(i, result)
        if tick:
            tick()
    return results


def _map_pool(fn, items, workers, progress, tick, tick_s) -> list[Any]:
    results: list[Any] = [None] * len(items)
    pool = cf.ProcessPoolExecutor(max_workers=workers, initializer=_worker_init,
                                  mp_context=multiprocessing.get_context("spawn"))
    futures = {pool.submit(_call, fn, item): i for i, item in enumerate(items)}
    failure: JobError | None = None
    try:
        pending = set(futures)
        while pending:
            done, pending = cf.wait(pending, timeout=tick_s, return_when=cf.FIRST_COMPLETED)
            for fut in sorted(done, key=futures.get):
                i = futures[fut]
                if fut.cancelled():
                    continue
                exc = fut.exception()
                if exc is not None:
                    if failure is None:
                        failure = JobError(i, items[i], exc)
                        failure.__cause__ = exc
                        for other in pending:   # running ones cannot be cancelled: they finish
                            other.cancel()
                    continue
                results[i] = fut.result()
                if progress:
                    progress(i, results[i])
            if tick:
                tick()
    except KeyboardInterrupt:
        for fut in futures:
            fut.cancel()
        _interrupt_workers(pool)
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if failure is not None:
        raise failure
    return results


def _interrupt_workers(pool: cf.ProcessPoolExecutor) -> None:
    """Send SIGINT to this pool's worker processes (ours, by pid) so running jobs stop now."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        if proc.is_alive() and proc.pid:
            try:
                os.kill(proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass


def _map_dask(fn, items, address, progress, tick, tick_s) -> list[Any]:
    try:
        from distributed import Client, wait
    except ImportError:  # pragma: no cover - pinned dependency
        raise ExecutorError("Dask distributed is not installed (pip install distributed)") from None
    try:
        # A malformed host:port is refused before Client(): a Client that fails to parse its
        # address is left half-built and prints a traceback from __del__ 20 s later.
        from distributed.comm import get_address_host_port, parse_address
        if parse_address(address)[0] in ("tcp", "tls"):
            get_address_host_port(address)
        client = Client(address, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ExecutorError(f"cannot connect to the Dask scheduler at {address}: {exc}") from None
    results: list[Any] = [None] * len(items)
    futures: list = []
    try:
        # pure=False: every item is a fresh job, even if two items compare equal.
        futures = client.map(fn, items, pure=False)
        pending = dict(enumerate(futures))
        while pending:
            try:
                wait(list(pending.values()), timeout=tick_s, return_when="FIRST_COMPLETED")
            except Exception:   # distributed raises on timeout (and on cancelled futures)
                pass
            for i in sorted(pending):
                fut = pending[i]
                if fut.status == "pending":
                    continue
                del pending[i]
                if fut.status != "finished":
                    exc = fut.exception() if fut.status == "error" else \
                        RuntimeError(f"job {fut.status} by the Dask cluster")
                    client.cancel(list(pending.values()))
                    raise JobError(i, items[i], exc) from exc
                results[i] = fut.result()
                if progress:
                    progress(i, results[i])
            if tick:
                tick()
        return results
    except KeyboardInterrupt:
        client.cancel(futures)
        raise
    finally:
        client.close()


def chunk(seq: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """Split ``seq`` into consecutive pieces of ``size`` (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    return [seq[i:i + size] for i in range(0, len(seq), size)]
