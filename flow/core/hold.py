"""Test hook: hold a job at a named point until a test releases it.

Interrupt tests need a run that is provably in the middle of its work when the signal comes (a
shard finished, the next one started and still running), whatever the machine's load; waiting a
fixed time and hoping is what made them fail on a busy machine. So a few places call
`hold("name")`: the co-simulation bench before each image (`image-<test-set index>`, in the
simulator process) and the sweep before each point (`sweep-<key>=<value>,...`).

With ``XBARFLOW_HOLD_DIR`` unset (always, outside tests) `hold` returns at once. With it set to
a folder, a point whose file ``<folder>/<name>.hold`` exists writes ``<folder>/<name>.<pid>.held``
(so the test sees who is held, and where) and blocks until the ``.hold`` file is removed, or at
most `LIMIT_S`. A signal (Ctrl-C) interrupts the wait like any other.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["HOLD_ENV", "LIMIT_S", "hold"]

HOLD_ENV = "XBARFLOW_HOLD_DIR"
#: The longest a point stays held: a forgotten hold ends the job instead of hanging it forever.
LIMIT_S = 900.0


def hold(name: str) -> None:
    """Block while the test holds the point `name` (see the module docstring)."""
    folder = os.environ.get(HOLD_ENV)
    if not folder:
        return
    gate = Path(folder, f"{name}.hold")
    if not gate.exists():
        return
    Path(folder, f"{name}.{os.getpid()}.held").write_text("")
    deadline = time.monotonic() + LIMIT_S
    while gate.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"test hold '{name}' was not released within {LIMIT_S:.0f} s")
        time.sleep(0.02)
