"""Datasets, input shaping and the chip's input-buffer layout.

Everything the host does to an image before the chip sees it lives here: loading (shipped npz,
a user's npz or IDX folder, a single .npy/.pgm image), resizing to n x n by area averaging,
quantising to DAC codes, and packing the codes into the input buffer's bit stream. The host
driver and the golden model both call `to_dac_codes`, so they produce identical codes.

Every problem raises `DataError` with a one-line message naming the file; the CLI maps it to
exit status 2.
"""

from __future__ import annotations

import gzip
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .core import paths
from .core.config import ChipConfig
from .core.errors import XbarflowError

__all__ = [
    "CLASSES", "DEFAULT_DATASET", "DataError", "Dataset", "image_to_codes", "load_dataset",
    "load_image", "pack_codes", "read_idx", "resize", "to_dac_codes", "unpack_codes",
]

DEFAULT_DATASET = paths.DEFAULT_DATASET
CLASSES = 10
_KEYS = ("x_train", "y_train", "x_test", "y_test")
# Standard IDX names; the second spelling is how several mirrors ship them.
_IDX_FILES = {
    "x_train": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "y_train": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "x_test": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "y_test": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}
_IDX_UBYTE = 0x08


class DataError(XbarflowError, ValueError):
    """Unusable input data; the message is one line meant for the user."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """uint8 images (N, H, W) with H == W and uint8 labels 0..9."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[1])


# -- loading ------------------------------------------------------------------------------------

def load_dataset(path: str | Path | None = None) -> Dataset:
    """Load the shipped MNIST (None), an npz in the standard layout, or a folder of IDX files."""
    p = Path(path) if path is not None else DEFAULT_DATASET
    if not p.exists():
        raise DataError(f"dataset not found: {p}")
    if p.is_dir():
        found = _find_idx_files(p)
        arrays = {key: read_idx(f) for key, f in found.items()}
        names = {key: f.name for key, f in found.items()}
        where = {key: str(f) for key, f in found.items()}
    elif p.suffix == ".npz":
        arrays = _read_npz(p)
        names = {key: key for key in _KEYS}
        where = {key: f"{p}: {key}" for key in _KEYS}
    else:
        raise DataError(f"{p}: expected a .npz file or a folder of IDX files")
    return _validate(arrays, names, where)


def _read_npz(p: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(p, allow_pickle=False) as npz:
            missing = [k for k in _KEYS if k not in npz.files]
            if missing:
                raise DataError(f"{p}: missing arrays {', '.join(missing)} "
                                f"(need {', '.join(_KEYS)})")
            return {k: npz[k] for k in _KEYS}
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{p}: not a readable npz file ({_one_line(exc)})") from None


def _find_idx_files(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for key, names in _IDX_FILES.items():
        hits = [folder / (n + ext) for n in names for ext in ("", ".gz") if (folder / (n + ext)).is_file()]
        if hits:
            found[key] = hits[0]
    missing = [names[0] for key, names in _IDX_FILES.items() if key not in found]
    if missing:
        raise DataError(f"{folder}: missing IDX files {', '.join(missing)} (raw or .gz)")
    return found


def read_idx(path: str | Path) -> np.ndarray:
    """Parse one IDX file (raw or gzip): magic 00 00 <dtype> <ndim>, big-endian uint32 dims, data."""
    p = Path(path)
    try:
        raw = p.read_bytes()
        if p.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{p}: cannot read ({_one_line(exc)})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{p}: bad magic number (not an IDX file)")
    dtype_code, ndim = raw[2], raw[3]
    if dtype_code != _IDX_UBYTE:
        raise DataError(f"{p}: unsupported IDX data type 0x{dtype_code:02x} (need 0x08, unsigned byte)")
    if ndim == 0:
        raise DataError(f"{p}: bad magic number (zero dimensions)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{p}: truncated header ({len(raw)} bytes, need {header})")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    size = math.prod(dims)
    if len(raw) - header != size:
        what = "truncated" if len(raw) - header < size else "trailing bytes"
        raise DataError(f"{p}: {what}: dims {dims} need {size} data bytes, file has {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _validate(a: dict[str, np.ndarray], names: dict[str, str], where: dict[str, str]) -> Dataset:
    """`names` are short (key or file name), `where` full (path and key) for the messages."""
    images = {k: _as_uint8_images(a[k], where[k]) for k in ("x_train", "x_test")}
    labels = {k: _as_labels(a[k], where[k]) for k in ("y_train", "y_test")}
    for split in ("train", "test"):
        nx, ny = len(images[f"x_{split}"]), len(labels[f"y_{split}"])
        if nx != ny:
            raise DataError(f"{where[f'x_{split}']} has {nx} images but {names[f'y_{split}']} "
                            f"has {ny} labels")
    (htr, wtr), (hte, wte) = images["x_train"].shape[1:], images["x_test"].shape[1:]
    if htr != hte:
        raise DataError(f"{where['x_train']} images are {htr}x{wtr} but {names['x_test']} "
                        f"images are {hte}x{wte}; they must match")
    return Dataset(images["x_train"], labels["y_train"], images["x_test"], labels["y_test"])


def _as_uint8_images(x: np.ndarray, where: str) -> np.ndarray:
    """(N, H, W) or flattened (N, H*W) uint8 / float-in-[0,1] -> uint8 (N, H, H)."""
    x = np.asarray(x)
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1] or side == 0:
            raise DataError(f"{where}: flattened images of {x.shape[1]} pixels are not square")
        x = x.reshape(x.shape[0], side, side)
    if x.ndim != 3:
        raise DataError(f"{where}: expected images of shape (N, H, W) or (N, H*W), got {x.shape}")
    if x.shape[0] == 0:
        raise DataError(f"{where}: no images")
    if x.shape[1] != x.shape[2]:
        raise DataError(f"{where}: images are {x.shape[1]}x{x.shape[2]}, need square images")
    return _to_uint8(x, where)


def _to_uint8(x: np.ndarray, where: str) -> np.ndarray:
    """uint8 passes through; floats in [0, 1] become rint(x * 255); anything else is refused."""
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise DataError(f"{where}: contains NaN or infinite values")
        if x.min() < 0.0 or x.max() > 1.0:
            raise DataError(f"{where}: float pixels must lie in [0, 1], got [{x.min():g}, {x.max():g}]")
        return np.rint(x * 255.0).astype(np.uint8)
    raise DataError(f"{where}: pixel dtype {x.dtype} not supported (need uint8, or float in [0, 1])")


def _as_labels(y: np.ndarray, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{where}: labels must be 1-D, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: labels must be integers, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= CLASSES):
        raise DataError(f"{where}: labels must be in 0..{CLASSES - 1}, got {y.min()}..{y.max()}")
    return y.astype(np.uint8)


def load_image(path: str | Path) -> np.ndarray:
    """A user's single image for the CLI: .npy (2-D array) or binary .pgm (P5) -> uint8 (H, H)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"image file not found: {p}")
    if p.suffix == ".npy":
        try:
            img = np.load(p, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(f"{p}: not a readable .npy file ({_one_line(exc)})") from None
    elif p.suffix == ".pgm":
        img = _read_pgm(p)
    else:
        raise DataError(f"{p}: unsupported image format '{p.suffix}' (use .npy or .pgm)")
    return _as_image(img, str(p))


def _read_pgm(p: Path) -> np.ndarray:
    """Binary PGM: 'P5' width height maxval (whitespace/comments between), then the samples."""
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataError(f"{p}: cannot read ({_one_line(exc)})") from None
    if raw[:2] != b"P5":
        raise DataError(f"{p}: not a binary PGM (magic must be P5)")
    fields: list[int] = []
    pos = 2
    while len(fields) < 3:
        while pos < len(raw) and raw[pos:pos + 1].isspace():
            pos += 1
        if raw[pos:pos + 1] == b"#":
            while pos < len(raw) and raw[pos:pos + 1] not in (b"\n", b"\r"):
                pos += 1
            continue
        start = pos
        while pos < len(raw) and raw[pos:pos + 1].isdigit():
            pos += 1
        if start == pos:
            raise DataError(f"{p}: malformed PGM header")
        fields.append(int(raw[start:pos]))
    width, height, maxval = fields
    if not (1 <= maxval <= 65535) or width == 0 or height == 0:
        raise DataError(f"{p}: bad PGM header (width {width}, height {height}, maxval {maxval})")
    pos += 1  # the single whitespace byte that ends the header
    dtype = np.dtype(np.uint8) if maxval < 256 else np.dtype(">u2")
    need = width * height * dtype.itemsize
    if len(raw) - pos < need:
        raise DataError(f"{p}: truncated PGM data ({len(raw) - pos} bytes, need {need})")
    pix = np.frombuffer(raw, dtype=dtype, count=width * height, offset=pos).reshape(height, width)
    if maxval == 255:
        return pix.copy()
    return np.rint(pix.astype(np.float64) * (255.0 / maxval)).clip(0, 255).astype(np.uint8)


def _as_image(img: np.ndarray, where: str) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim != 2:
        raise DataError(f"{where}: expected a 2-D image, got shape {img.shape}")
    if img.shape[0] != img.shape[1] or img.shape[0] == 0:
        raise DataError(f"{where}: image is {img.shape[0]}x{img.shape[1]}, need a square image")
    return _to_uint8(img, where)


# -- input shaping ------------------------------------------------------------------------------

def _overlap_matrix(n: int, h: int) -> np.ndarray:
    """Integer (n, h) box-filter weights: overlap of output cell i with input pixel j.

    Output cell i spans [i*h, (i+1)*h) and input pixel j spans [j*n, (j+1)*n) on a common grid of
    n*h steps, so each row sums to h and every weight is an exact integer.
    """
    i = np.arange(n)[:, None]
    j = np.arange(h)[None, :]
    lo = np.maximum(i * h, j * n)
    hi = np.minimum((i + 1) * h, (j + 1) * n)
    return np.maximum(hi - lo, 0).astype(np.float64)


_CHUNK = 4096  # images per matmul: keeps the float64 temporaries in cache-friendly sizes


def _box_sums(images: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """Integer S = R img R^T per image and its full-scale value 255 * H * H.

    The products are integers below 2**53, so float64 matmuls give them exactly whatever the
    BLAS summation order or batch size: host, golden model and benches get the same codes.
    """
    x = np.asarray(images)
    if x.ndim != 3 or x.shape[1] != x.shape[2] or x.dtype != np.uint8:
        raise DataError(f"expected uint8 images of shape (N, H, H), got {x.dtype} {x.shape}")
    h = x.shape[1]
    if not 1 <= n <= h:
        raise DataError(f"cannot resize {h}x{h} images to {n}x{n} (need 1 <= n <= {h})")
    r = _overlap_matrix(n, h)
    out = np.empty((len(x), n, n), dtype=np.int64)
    for start in range(0, len(x), _CHUNK):
        chunk = x[start:start + _CHUNK]
        count = len(chunk)
        # Two plain 2-D matmuls (columns, then rows): ~3x faster than a stacked matmul.
        cols = (chunk.reshape(count * h, h).astype(np.float64) @ r.T).reshape(count, h, n)
        rows = r @ cols.transpose(1, 0, 2).reshape(h, count * n)
        out[start:start + count] = np.rint(rows.reshape(n, count, n).transpose(1, 0, 2))
    return out, 255 * h * h


def resize(images: np.ndarray, n: int) -> np.ndarray:
    """uint8 (N, H, H) -> float64 (N, n, n) in [0, 1] by exact area averaging (28->14 is the 2x2 mean)."""
    sums, full = _box_sums(images, n)
    return sums / full


def to_dac_codes(images: np.ndarray, cfg: ChipConfig) -> np.ndarray:
    """uint8 (N, H, H) -> uint8 (N, n*n) DAC codes rint(resize * dac_max), flattened row-major.

    The rounding (half to even, like np.rint) is done in exact integer arithmetic, so a pixel
    sitting on a code boundary rounds the same way on every machine.
    """
    dac_max = cfg.quant.dac_max
    sums, full = _box_sums(images, cfg.network.input_size)
    q, r = np.divmod(sums * dac_max, full)
    up = (2 * r > full) | ((2 * r == full) & (q % 2 == 1))
    return (q + up).astype(np.uint8).reshape(len(sums), -1)


def image_to_codes(img: np.ndarray, cfg: ChipConfig) -> np.ndarray:
    """One image (2-D square, uint8 or float in [0, 1]) -> uint8 (n*n,) codes via `to_dac_codes`."""
    return to_dac_codes(_as_image(img, "image")[None], cfg)[0]


# -- input buffer layout ------------------------------------------------------------------------

def pack_codes(codes: np.ndarray, dac_bits: int) -> bytes:
    """Codes -> the input buffer: code i at bits [i*b, (i+1)*b) of an LSB-first stream, zero padded."""
    c = np.asarray(codes)
    if c.ndim != 1 or not np.issubdtype(c.dtype, np.integer):
        raise DataError(f"codes must be a 1-D integer array, got {c.dtype} {c.shape}")
    if not 1 <= dac_bits <= 8:
        raise DataError(f"dac_bits must be in 1..8, got {dac_bits}")
    if c.size and (c.min() < 0 or c.max() >= 1 << dac_bits):
        raise DataError(f"codes must be in 0..{(1 << dac_bits) - 1} for {dac_bits}-bit DACs, "
                        f"got {c.min()}..{c.max()}")
    bits = (c.astype(np.int64)[:, None] >> np.arange(dac_bits)) & 1
    return np.packbits(bits.astype(np.uint8).ravel(), bitorder="little").tobytes()


def unpack_codes(data: bytes, rows: int, dac_bits: int) -> np.ndarray:
    """Inverse of `pack_codes`: the first `rows` codes of the buffer as int64."""
    if not 1 <= dac_bits <= 8:
        raise DataError(f"dac_bits must be in 1..8, got {dac_bits}")
    need = (rows * dac_bits + 7) // 8
    if len(data) != need:
        raise DataError(f"input buffer holds {len(data)} bytes, {rows} codes of {dac_bits} bits need {need}")
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little", count=rows * dac_bits)
    return bits.reshape(rows, dac_bits).astype(np.int64) @ (1 << np.arange(dac_bits, dtype=np.int64))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
