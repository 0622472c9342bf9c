"""Which reader a model file needs: ONNX (protobuf) or PyTorch (a zip or pickle from torch.save).

By suffix first (.onnx; .pt, .pth), else by its first bytes: a zip archive ("PK") or a pickle
(protocol marker 0x80) is a torch.save file, anything else is tried as ONNX, whose reader says
in one line when it is not a model.
"""

from __future__ import annotations

from pathlib import Path

from .network import ImportedNetwork, ModelImportError
from .onnx_reader import read_onnx
from .torch_reader import read_torch

__all__ = ["read_model"]

TORCH_SUFFIXES = (".pt", ".pth")


def read_model(path: str | Path) -> ImportedNetwork:
    """The network in `path`; ModelImportError (one line) for a file the chip cannot run."""
    p = Path(path)
    if not p.is_file():
        raise ModelImportError(f"model file not found: {p}" if not p.exists() else
                               f"{p} is a folder, not a model file")
    try:
        with p.open("rb") as fh:
            head = fh.read(2)
    except OSError as exc:
        raise ModelImportError(f"cannot read {p}: {exc.strerror or exc}") from None
    if not head:
        raise ModelImportError(f"{p}: empty file, not a model")
    if p.suffix.lower() == ".onnx":
        return read_onnx(p)
    if p.suffix.lower() in TORCH_SUFFIXES or head == b"PK" or head[:1] == b"\x80":
        return read_torch(p)
    return read_onnx(p)
