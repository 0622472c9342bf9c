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

Failure: when a job raises, `JobError` is raised, naming the item (the job's exception is its
cause). Locally no new job starts and the jobs already running finish first (their results
still go to `progress`); with Dask the remaining futures are cancelled.

Interruption (Ctrl-C) is never a failure: `map_jobs` raises KeyboardInterrupt, after `progress`
has had every job that finished, whether the SIGINT reached this process, a worker (a
terminal's Ctrl-C signals the whole foreground process group), or both, and whatever a job made
of it (a job whose simulator died of the same SIGINT may raise something else; in a worker it
comes back as `JobInterrupted`). In the main thread a SIGINT only sets a flag while jobs run
elsewhere, and the wait loop acts on it at a safe point: a KeyboardInterrupt raised at an
arbitrary line could land inside concurrent.futures' locks (a hang) or in a finaliser
(swallowed: the run went on). Locally every worker then gets SIGINT once (a job waiting on a
simulator through `subprocess.run` kills it; the worker refuses queued jobs and kills whatever
child processes an interrupted job left), and if jobs still run after `INTERRUPT_GRACE_S` or a
second Ctrl-C, the workers are killed with their process trees. With Dask the futures are
cancelled (Dask cannot stop a task that already runs on a worker).

Local workers are started with the "spawn" method (no fork of a parent that may hold threads,
e.g. a progress bar's), with SIGINT blocked until their handler is in place. `jobs=1` without
Dask runs the jobs in the calling process. A Dask cluster's workers must import this package
(same environment) and, for file-based jobs such as co-simulation shards, see the same file
system paths as the caller.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from typing import Any, Callable, Iterable, Sequence

from ..core.errors import XbarflowError

__all__ = ["ExecutorError", "INTERRUPT_GRACE_S", "JobError", "JobInterrupted", "chunk",
           "default_jobs", "map_jobs"]

#: How long interrupted local workers get to stop before they are killed with their children.
INTERRUPT_GRACE_S = 15.0
#: How often the wait loops look at the interrupt flag (seconds).
POLL_S = 0.05


class ExecutorError(XbarflowError, RuntimeError):
    """The executor itself cannot run (e.g. the Dask scheduler is unreachable)."""


class JobError(XbarflowError, RuntimeError):
    """A job raised; ``index`` is its position in the items, the cause is chained."""

    def __init__(self, index: int, item: Any, exc: BaseException):
        self.index, self.item, self.exc = index, item, exc
        super().__init__(f"job {index} failed: {type(exc).__name__}: {exc}")


class JobInterrupted(Exception):
    """A job stopped because its worker was interrupted (an Exception, not a KeyboardInterrupt,
    so that it travels back like a result and does not take a Dask worker down)."""


def default_jobs() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _is_interrupt(exc: BaseException) -> bool:
    return isinstance(exc, (KeyboardInterrupt, JobInterrupted))


# -- process trees (Linux /proc; elsewhere only the processes themselves are killed) ---------
def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, parents before children."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue   # gone meanwhile
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop(0)
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def _kill(pids: Iterable[int], sig: int = signal.SIGKILL) -> None:
    for p in pids:
        try:
            os.kill(p, sig)
        except (ProcessLookupError, PermissionError):
            pass


# -- the caller's SIGINT ---------------------------------------------------------------------
class _Sigint:
    """Counts SIGINTs while map_jobs runs; raises KeyboardInterrupt only while `raising`
    (a job running in this very process, which must stop)."""

    def __init__(self) -> None:
        self.hits = 0
        self.raising = False

    def __call__(self, signum, frame) -> None:
        self.hits += 1
        if self.raising:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def job(self):
        """Around a job that runs in this process: a SIGINT interrupts it at once."""
        self.raising = True
        try:
            yield
        finally:
            self.raising = False


@contextlib.contextmanager
def _watch_sigint():
    """Install a `_Sigint` for the duration, if this is the main thread and SIGINT has Python's
    default handler (an ignored or custom SIGINT is left alone; then `hits` stays 0 and a
    KeyboardInterrupt, if any, arrives the ordinary way)."""
    watch = _Sigint()
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield watch
        return
    signal.signal(signal.SIGINT, watch)
    try:
        yield watch
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextlib.contextmanager
def _sigint_blocked():
    """SIGINT blocked in this thread: processes and threads started meanwhile inherit the mask
    (workers unblock it once their handler is in place; pool threads never take it)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


# -- local worker side ---------------------------------------------------------------------------
_running_job = False
_interrupted = False


def _worker_sigint(signum, frame):
    # The first SIGINT interrupts a running job (subprocess.run then kills the simulator it
    # waits on); after it the worker refuses queued jobs. A later SIGINT (the terminal's and the
    # parent's both arrive) changes nothing, so it cannot disturb that clean-up, and an idle
    # worker exits without a traceback.
    global _interrupted
    first = not _interrupted
    _interrupted = True
    if _running_job and first:
        raise KeyboardInterrupt


def _worker_init() -> None:
    signal.signal(signal.SIGINT, _worker_sigint)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})   # blocked since the spawn


def _call(fn: Callable, item: Any) -> Any:
    global _running_job
    _running_job = True   # before the check: a SIGINT in between still stops this job
    try:
        if _interrupted:
            raise JobInterrupted("not started: the run was interrupted")
        result = fn(item)
        if _interrupted:   # it swallowed the KeyboardInterrupt: the result may be partial
            raise JobInterrupted("interrupted (the job returned after the SIGINT)")
        return result
    except JobInterrupted:
        raise
    except BaseException as exc:
        if _interrupted or isinstance(exc, KeyboardInterrupt):
            raise JobInterrupted(f"interrupted ({type(exc).__name__}: {exc})") from None
        raise
    finally:
        _running_job = False
        if _interrupted:   # what the job started and could not stop (e.g. a Popen it lost)
            _kill(_descendants(os.getpid()))


def _call_dask(fn: Callable, item: Any) -> Any:
    try:
        return fn(item)
    except KeyboardInterrupt as exc:
        raise JobInterrupted(f"interrupted ({type(exc).__name__}: {exc})") from None


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
    with _watch_sigint() as sigint:
        if dask_address:
            return _map_dask(fn, items, dask_address, progress, tick, tick_s, sigint)
        if jobs == 1:
            return _map_inline(fn, items, progress, tick, sigint)
        return _map_pool(fn, items, min(jobs, len(items)), progress, tick, tick_s, sigint)


def _map_inline(fn, items, progress, tick, sigint: _Sigint) -> list[Any]:
    results = []
    for i, item in enumerate(items):
        try:
            with sigint.job():
                result = fn(item)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            if sigint.hits or isinstance(exc, JobInterrupted):
                raise KeyboardInterrupt from exc   # e.g. its simulator died of the same Ctrl-C
            raise JobError(i, item, exc) from exc
        if sigint.hits:   # swallowed inside the job (a finaliser, a broad except)
            raise KeyboardInterrupt
        results.append(result)
        if progress:
            progress(i, result)
        if tick:
            tick()
        if sigint.hits:   # during the callbacks, which are not interrupted mid-way
            raise KeyboardInterrupt
    return results


class _Delivery:
    """Results of finished futures, each handed to `progress` once."""

    def __init__(self, futures: dict, results: list, progress):
        self.futures, self.results, self.progress = futures, results, progress
        self.delivered: set[int] = set()

    def take(self, fut) -> None:
        i = self.futures[fut]
        if i in self.delivered:
            return
        self.delivered.add(i)
        self.results[i] = fut.result()
        if self.progress:
            self.progress(i, self.results[i])

    def take_finished(self) -> None:
        for fut in sorted(self.futures, key=self.futures.get):
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self.take(fut)


def _map_pool(fn, items, workers, progress, tick, tick_s, sigint: _Sigint) -> list[Any]:
    results: list[Any] = [None] * len(items)
    pool = cf.ProcessPoolExecutor(max_workers=workers, initializer=_worker_init,
                                  mp_context=multiprocessing.get_context("spawn"))
    futures: dict = {}
    delivery = _Delivery(futures, results, progress)
    failure: JobError | None = None
    interrupted = False
    try:
        with _sigint_blocked():   # the workers are spawned in submit()
            for i, item in enumerate(items):
                futures[pool.submit(_call, fn, item)] = i
        pending = set(futures)
        next_tick = time.monotonic() + tick_s
        while pending and not interrupted:
            done, pending = cf.wait(pending, timeout=min(POLL_S, tick_s),
                                    return_when=cf.FIRST_COMPLETED)
            for fut in sorted(done, key=futures.get):
                i = futures[fut]
                if fut.cancelled():
                    continue
                exc = fut.exception()
                if exc is None:
                    delivery.take(fut)
                elif _is_interrupt(exc) or sigint.hits:
                    interrupted = True
                elif failure is None:
                    failure = JobError(i, items[i], exc)
                    failure.__cause__ = exc
                    for other in pending:   # running ones cannot be cancelled: they finish
                        other.cancel()
            interrupted = interrupted or sigint.hits > 0
            if tick and (done or time.monotonic() >= next_tick):
                tick()
                next_tick = time.monotonic() + tick_s
    except BaseException:   # a callback raised: stop the jobs too
        _stop_pool(pool, futures, None, sigint)
        raise
    if interrupted:
        _stop_pool(pool, futures, delivery, sigint)
        raise KeyboardInterrupt
    pool.shutdown(wait=True)
    if sigint.hits:   # a Ctrl-C as the last job finished is still an interrupt
        raise KeyboardInterrupt
    if failure is not None:
        raise failure
    return results


def _stop_pool(pool: cf.ProcessPoolExecutor, futures: dict, delivery: _Delivery | None,
               sigint: _Sigint) -> None:
    """Interrupt the workers, keep what finishes meanwhile, kill what still runs after
    `INTERRUPT_GRACE_S` (or a further Ctrl-C), and leave no process of the pool behind."""
    for fut in futures:
        fut.cancel()
    procs = list((getattr(pool, "_processes", None) or {}).values())
    _kill([p.pid for p in procs if p.pid and p.is_alive()], signal.SIGINT)   # ours, by pid
    hits = sigint.hits
    deadline = time.monotonic() + INTERRUPT_GRACE_S
    running = [f for f in futures if not f.done()]
    while running and time.monotonic() < deadline and sigint.hits == hits:
        cf.wait(running, timeout=POLL_S)
        if delivery:
            delivery.take_finished()
        running = [f for f in running if not f.done()]
    if running:
        for p in procs:
            if p.pid and p.is_alive():
                _kill([p.pid, *_descendants(p.pid)])
    pool.shutdown(wait=True, cancel_futures=True)
    if delivery:
        delivery.take_finished()


def _map_dask(fn, items, address, progress, tick, tick_s, sigint: _Sigint) -> list[Any]:
    try:
        from distributed import Client, wait  # heavy (~0.4 s): only --dask needs it
    except ImportError:  # pragma: no cover - pinned dependency
        raise ExecutorError("Dask distributed is not installed (pip install distributed)") from None
    try:
        # A malformed host:port is refused before Client(): a Client that fails to parse its
        # address is left half-built and prints a traceback from __del__ 20 s later.
        from distributed.comm import get_address_host_port, parse_address  # as above
        if parse_address(address)[0] in ("tcp", "tls"):
            get_address_host_port(address)
        client = Client(address, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ExecutorError(f"cannot connect to the Dask scheduler at {address}: {exc}") from None
    results: list[Any] = [None] * len(items)
    futures: list = []
    try:
        # pure=False: every item is a fresh job, even if two items compare equal.
        futures = client.map(_call_dask, [fn] * len(items), items, pure=False)
        pending = dict(enumerate(futures))
        next_tick = time.monotonic() + tick_s
        while pending:
            try:
                wait(list(pending.values()), timeout=min(POLL_S, tick_s), return_when="FIRST_COMPLETED")
            except Exception:   # distributed raises on timeout (and on cancelled futures)
                pass
            finished, interrupted = False, sigint.hits > 0
            for i in sorted(pending):
                fut = pending[i]
                if fut.status == "pending":
                    continue
                if fut.status == "finished":
                    del pending[i]
                    finished = True
                    results[i] = fut.result()
                    if progress:
                        progress(i, results[i])
                    continue
                exc = fut.exception() if fut.status == "error" else \
                    RuntimeError(f"job {fut.status} by the Dask cluster")
                if _is_interrupt(exc) or interrupted:
                    interrupted = True
                    continue
                client.cancel(list(pending.values()))
                raise JobError(i, items[i], exc) from exc
            if interrupted or sigint.hits:
                raise KeyboardInterrupt
            if tick and (finished or time.monotonic() >= next_tick):
                tick()
                next_tick = time.monotonic() + tick_s
        if sigint.hits:
            raise KeyboardInterrupt
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
