"""Shared fixtures: the default config, the shipped MNIST and the trained SLP (reference weights).

Tests leave the user's files alone: before anything imports flow, the build cache (trained
weights, simulator models, synthesis) and the default run folders are moved to a temporary
folder of this session (`xbarflow.flow.core.paths` reads XBARFLOW_BUILD_DIR / XBARFLOW_RUNS_DIR; simulator
and CLI subprocesses inherit them), and at the end the session fails if anything under the
checkout's build/ or runs/ was created, changed or removed.
"""

import os
import shutil
import tempfile
from pathlib import Path

from tests.support.user_files import GUARDED, changed_user_files, snapshot_user_folders

SESSION_DIR = Path(tempfile.mkdtemp(prefix="xbarflow-tests-"))
os.environ["XBARFLOW_BUILD_DIR"] = str(SESSION_DIR / "build")
os.environ["XBARFLOW_RUNS_DIR"] = str(SESSION_DIR / "runs")

_BEFORE = snapshot_user_folders()

import pytest  # noqa: E402

from xbarflow.flow.core import config as cfgmod  # noqa: E402  (after the environment above)


def pytest_sessionfinish(session, exitstatus):
    changed = changed_user_files(_BEFORE, snapshot_user_folders())
    if changed:
        shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
        writer = session.config.get_terminal_writer()
        writer.line()
        writer.line(f"FAILED: tests wrote into the checkout's {' or '.join(g + '/' for g in GUARDED)}: "
                    f"{shown}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    shutil.rmtree(SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def cfg():
    return cfgmod.load()


@pytest.fixture(scope="session")
def dataset():
    from xbarflow.flow.data import load_dataset
    return load_dataset()


@pytest.fixture(scope="session")
def weights(cfg, dataset):
    from xbarflow.flow.core.paths import WEIGHTS
    from xbarflow.flow.model.train import load_or_train
    return load_or_train(cfg, dataset, WEIGHTS)
