"""What every subcommand shares: argument types, and turning library errors into `UsageError`.

The commands are the one place where a library error caused by the user's input (a bad
config, data set, output folder or missing simulator) becomes a `UsageError` (one line on
stderr, exit status 2, printed by `xbarflow.flow.cli`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterable

from xbarflow.analog_models.selector import check_read
from xbarflow.analog_models.selector_memdiode import qmm_params

from ..core import config as config_mod
from ..core.errors import UsageError
from ..core.overrides import OverrideError, parse_override
from ..data import DataError, load_dataset

__all__ = ["UsageError", "dataset_or_usage", "load_config", "override", "positive_int",
           "toolchain_or_usage", "with_overrides", "writable_dir"]


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def override(text: str) -> tuple[str, Any]:
    """argparse type of `--set`: `section.key=value` with a TOML value (xbarflow.flow.core.overrides)."""
    try:
        return parse_override(text)
    except OverrideError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def writable_dir(path: Path) -> Path:
    """Create `path` if needed and check it can be written into."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".xbarflow-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"output folder {path} is not writable: {exc.strerror or exc}") from None
    return path


def load_config(path: Path | None) -> config_mod.ChipConfig:
    """The config at `path` (configs/slp.toml for None); a bad one is a usage error."""
    try:
        return config_mod.load(path)
    except config_mod.ConfigError as exc:
        raise UsageError(str(exc)) from None


def with_overrides(cfg: config_mod.ChipConfig, overrides: dict[str, Any] | Iterable[tuple[str, Any]]
                   ) -> config_mod.ChipConfig:
    """`cfg` with the `--set` overrides applied; a bad override is a usage error."""
    overrides = dict(overrides)
    try:
        cfg = cfg.replace(**overrides) if overrides else cfg
        if cfg.crossbar.cell == "1S1R":
            check_read(cfg)            # a selector that blocks V_read (analog_models/selector.py)
            if cfg.device.read_model == "qmm":
                qmm_params(cfg)        # ... or leaves a QMM cell no forward bias there
        return cfg
    except config_mod.ConfigError as exc:
        raise UsageError(str(exc)) from None


def dataset_or_usage(path: Path | None = None):
    """The data set at `path` (the shipped MNIST for None); a bad one is a usage error."""
    try:
        return load_dataset(path)
    except DataError as exc:
        raise UsageError(str(exc)) from None


def toolchain_or_usage(sim: str) -> None:
    """Check `sim` is installed and usable; if not, the usage error says how to install it."""
    from ..sim.runner import SimulatorError, prepare_toolchain   # why: amaranth, ~0.6 s

    try:
        prepare_toolchain(sim)
    except SimulatorError as exc:
        raise UsageError(str(exc)) from None
