"""Where a VCD's sidecar (FSM encodings, ports, clock) and chip config come from.

Sidecar: ``--sidecar PATH`` when given; else ``xbarflow_top.json`` next to the VCD; else
``rtl/xbarflow_top.json`` next to the VCD; else the sidecar named by the ``job.json`` that
`xbarflow.flow.sim.runner.run` writes into the run folder next to the VCD (it points at the build folder the
VCD came from). Without one, FSM registers show raw codes.

Config (for the UART divider): ``--config`` if given, else the one in that ``job.json``, else
configs/slp.toml.
"""

from __future__ import annotations

import json
from pathlib import Path

from xbarflow.hdl.top import TOP_NAME

from ...core import config as config_mod
from .errors import WavesError

__all__ = ["SIDECAR_SUFFIX", "find_config", "find_sidecar", "load_sidecar"]

SIDECAR_SUFFIX = ".json"          # <top>.json, written by xbarflow.flow.sim.verilog.generate


def find_sidecar(vcd_path: Path, explicit: Path | None = None) -> Path | None:
    """The sidecar rule of the module docstring."""
    if explicit is not None:
        if not explicit.is_file():
            raise WavesError(f"sidecar not found: {explicit}")
        return explicit
    folder = vcd_path.resolve().parent
    name = TOP_NAME + SIDECAR_SUFFIX
    for cand in (folder / name, folder / "rtl" / name):
        if cand.is_file():
            return cand
    job = _job(folder)
    if job and job.get("sidecar") and Path(job["sidecar"]).is_file():
        return Path(job["sidecar"])
    return None


def _job(folder: Path) -> dict | None:
    """The job.json of a run folder, None when there is none or it does not parse."""
    p = folder / "job.json"
    try:
        return json.loads(p.read_text()) if p.is_file() else None
    except (OSError, ValueError):
        return None


def load_sidecar(path: Path | None) -> dict:
    """The sidecar's JSON ({} without one); a file that is no sidecar is a WavesError."""
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise WavesError(f"{path}: not a readable sidecar ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict) or not isinstance(data.get("fsms", {}), dict):
        raise WavesError(f"{path}: not an xbarflow sidecar (no 'fsms' table)")
    return data


def find_config(vcd_path: Path, explicit: Path | None = None):
    """The ChipConfig of the config rule of the module docstring."""
    try:
        if explicit is not None:
            return config_mod.load(explicit)
        job = _job(vcd_path.resolve().parent)
        if job and isinstance(job.get("config"), dict):
            return config_mod.from_dict(job["config"], source="job.json")
        return config_mod.load()
    except config_mod.ConfigError as exc:
        raise WavesError(str(exc)) from None
