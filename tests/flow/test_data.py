"""xbarflow.flow.data: loaders and their error messages, input shaping, input-buffer packing."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from xbarflow.flow.core import config
from xbarflow.flow.data import (
    DataError,
    image_to_codes,
    load_dataset,
    load_image,
    pack_codes,
    resize,
    to_dac_codes,
    unpack_codes,
)

CFG = config.load()
NAMES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
         "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


def idx_bytes(arr: np.ndarray, dtype_code: int = 0x08) -> bytes:
    """Our own tiny IDX writer: 00 00 <dtype> <ndim>, big-endian uint32 dims, raw data."""
    return (bytes([0, 0, dtype_code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
            + arr.astype(np.uint8).tobytes())


def tiny_arrays(side: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"x_train": rng.integers(0, 256, (6, side, side), dtype=np.uint8),
            "y_train": np.array([0, 1, 2, 3, 4, 9], dtype=np.uint8),
            "x_test": rng.integers(0, 256, (4, side, side), dtype=np.uint8),
            "y_test": np.array([5, 6, 7, 8], dtype=np.uint8)}


def write_idx_folder(folder: Path, arrays: dict[str, np.ndarray], gz: bool = False,
                     names: dict[str, str] = NAMES) -> Path:
    folder.mkdir(exist_ok=True)
    for key, arr in arrays.items():
        blob = idx_bytes(arr)
        if gz:
            (folder / (names[key] + ".gz")).write_bytes(gzip.compress(blob))
        else:
            (folder / names[key]).write_bytes(blob)
    return folder


def assert_same(ds, arrays) -> None:
    for key, arr in arrays.items():
        got = getattr(ds, key)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, arr)


# -- loading ------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_round_trip(tmp_path, gz):
    arrays = tiny_arrays()
    assert_same(load_dataset(write_idx_folder(tmp_path / "idx", arrays, gz=gz)), arrays)


def test_idx_dotted_names(tmp_path):
    arrays = tiny_arrays()
    dotted = {k: v.replace("-idx", ".idx") for k, v in NAMES.items()}
    assert_same(load_dataset(write_idx_folder(tmp_path / "idx", arrays, names=dotted)), arrays)


def test_npz_round_trip_3d_flat_and_float(tmp_path):
    arrays = tiny_arrays()
    np.savez(tmp_path / "a.npz", **arrays)
    assert_same(load_dataset(tmp_path / "a.npz"), arrays)
    flat = dict(arrays, x_train=arrays["x_train"].reshape(6, 64), x_test=arrays["x_test"].reshape(4, 64))
    np.savez(tmp_path / "flat.npz", **flat)
    assert_same(load_dataset(tmp_path / "flat.npz"), arrays)
    floats = dict(arrays, x_train=arrays["x_train"] / np.float32(255), x_test=arrays["x_test"] / 255.0)
    np.savez(tmp_path / "float.npz", **floats)
    assert_same(load_dataset(tmp_path / "float.npz"), arrays)


def test_shipped_dataset():
    ds = load_dataset()
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert ds.x_train.dtype == np.uint8 and ds.image_size == 28
    assert np.bincount(ds.y_test).tolist()[:3] == [980, 1135, 1032]


def test_missing_idx_file_is_named(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", tiny_arrays())
    (folder / NAMES["y_test"]).unlink()
    with pytest.raises(DataError, match="missing IDX files t10k-labels-idx1-ubyte"):
        load_dataset(folder)


@pytest.mark.parametrize("damage, message", [
    (lambda b: b"\x01\x02" + b[2:], "bad magic"),
    (lambda b: b[:-5], "truncated"),
    (lambda b: b[:10], "truncated header"),
    (lambda b: b + b"\x00", "trailing bytes"),
    (lambda b: b[:2] + b"\x0d" + b[3:], "data type 0x0d"),
])
def test_damaged_idx(tmp_path, damage, message):
    folder = write_idx_folder(tmp_path / "idx", tiny_arrays())
    f = folder / NAMES["x_train"]
    f.write_bytes(damage(f.read_bytes()))
    with pytest.raises(DataError, match=message) as err:
        load_dataset(folder)
    assert NAMES["x_train"] in str(err.value) and "\n" not in str(err.value)


def test_truncated_gzip(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", tiny_arrays(), gz=True)
    f = folder / (NAMES["y_train"] + ".gz")
    f.write_bytes(f.read_bytes()[:-8])
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: cannot read"):
        load_dataset(folder)


def test_idx_count_mismatch_and_labels(tmp_path):
    arrays = tiny_arrays()
    with pytest.raises(DataError, match="train-images-idx3-ubyte has 6 images but "
                                        "train-labels-idx1-ubyte has 5 labels"):
        load_dataset(write_idx_folder(tmp_path / "a", dict(arrays, y_train=arrays["y_train"][:5])))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: labels must be in 0\.\.9, got 0\.\.12"):
        load_dataset(write_idx_folder(tmp_path / "b", dict(arrays, y_train=np.array([0, 1, 2, 3, 4, 12]))))


def test_idx_wrong_shapes(tmp_path):
    arrays = tiny_arrays()
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: images are 8x6, need square"):
        load_dataset(write_idx_folder(tmp_path / "a", dict(arrays, x_train=arrays["x_train"][:, :, :6])))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: labels must be 1-D"):
        load_dataset(write_idx_folder(tmp_path / "b", dict(arrays, y_test=arrays["y_test"].reshape(2, 2))))
    small_test = dict(arrays, x_test=arrays["x_test"][:, :4, :4])
    with pytest.raises(DataError, match="images are 8x8 but t10k-images-idx3-ubyte images are 4x4"):
        load_dataset(write_idx_folder(tmp_path / "c", small_test))


@pytest.mark.parametrize("change, message", [
    ({"x_train": None}, "missing arrays x_train"),
    ({"y_train": np.array([0, 1, 2, 3, 4, 10])}, r"y_train: labels must be in 0\.\.9"),
    ({"x_train": np.zeros((6, 8, 8), dtype=np.int32)}, "pixel dtype int32 not supported"),
    ({"x_train": np.full((6, 8, 8), np.nan)}, "NaN"),
    ({"x_train": np.full((6, 8, 8), 2.0)}, r"float pixels must lie in \[0, 1\]"),
    ({"x_train": np.zeros((6, 60), dtype=np.uint8)}, "60 pixels are not square"),
    ({"x_train": np.zeros((6, 8, 8, 1), dtype=np.uint8)}, "expected images of shape"),
    ({"y_test": np.array([0.0, 1.0, 2.0, 3.0])}, "labels must be integers"),
    ({"y_test": np.array([0, 1, 2])}, "x_test has 4 images but y_test has 3 labels"),
])
def test_npz_errors(tmp_path, change, message):
    arrays = tiny_arrays()
    arrays.update(change)
    np.savez(tmp_path / "bad.npz", **{k: v for k, v in arrays.items() if v is not None})
    with pytest.raises(DataError, match=message) as err:
        load_dataset(tmp_path / "bad.npz")
    assert "bad.npz" in str(err.value)


def test_path_errors(tmp_path):
    with pytest.raises(DataError, match="dataset not found"):
        load_dataset(tmp_path / "nope.npz")
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(DataError, match="expected a .npz file or a folder"):
        load_dataset(tmp_path / "x.csv")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable npz"):
        load_dataset(tmp_path / "junk.npz")


# -- single images ------------------------------------------------------------------------------

def test_load_image_npy_and_pgm(tmp_path):
    img = np.arange(16, dtype=np.uint8).reshape(4, 4) * 17
    np.save(tmp_path / "a.npy", img)
    np.testing.assert_array_equal(load_image(tmp_path / "a.npy"), img)
    np.save(tmp_path / "f.npy", img / 255.0)
    np.testing.assert_array_equal(load_image(tmp_path / "f.npy"), img)
    (tmp_path / "a.pgm").write_bytes(b"P5\n# a comment\n4 4\n255\n" + img.tobytes())
    np.testing.assert_array_equal(load_image(tmp_path / "a.pgm"), img)
    # maxval 15: samples are rescaled to 0..255
    (tmp_path / "b.pgm").write_bytes(b"P5 4 4 15\n" + (img // 17).tobytes())
    np.testing.assert_array_equal(load_image(tmp_path / "b.pgm"), img)


def test_load_image_errors(tmp_path):
    with pytest.raises(DataError, match="image file not found"):
        load_image(tmp_path / "none.npy")
    (tmp_path / "a.pgm").write_bytes(b"P2\n4 4\n255\n0 0 0")
    with pytest.raises(DataError, match="magic must be P5"):
        load_image(tmp_path / "a.pgm")
    (tmp_path / "b.pgm").write_bytes(b"P5\n4 4\n255\n" + bytes(10))
    with pytest.raises(DataError, match="truncated PGM data"):
        load_image(tmp_path / "b.pgm")
    (tmp_path / "c.pgm").write_bytes(b"P5\n4 x\n255\n")
    with pytest.raises(DataError, match="malformed PGM header"):
        load_image(tmp_path / "c.pgm")
    np.save(tmp_path / "r.npy", np.zeros((4, 5), dtype=np.uint8))
    with pytest.raises(DataError, match="image is 4x5, need a square image"):
        load_image(tmp_path / "r.npy")
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(DataError, match="unsupported image format '.png'"):
        load_image(tmp_path / "a.png")


# -- input shaping ------------------------------------------------------------------------------

def test_resize_28_to_14_is_2x2_mean():
    x = load_dataset().x_test[:20]
    blocks = x.reshape(20, 14, 2, 14, 2).astype(np.float64).mean(axis=(2, 4)) / 255.0
    np.testing.assert_allclose(resize(x, 14), blocks, rtol=1e-15, atol=0)


@pytest.mark.parametrize("side", [28, 9])
def test_resize_constant_stays_constant(side):
    for value in (0, 1, 128, 255):
        x = np.full((2, side, side), value, dtype=np.uint8)
        for n in range(1, side + 1):
            assert np.all(resize(x, n) == value / 255.0), (side, n, value)


def test_resize_non_integer_ratio_hand_checked():
    # 3 -> 2: each output cell covers 1.5 input pixels, weights [2/3, 1/3, 0] and [0, 1/3, 2/3]
    corner = np.zeros((1, 3, 3), dtype=np.uint8)
    corner[0, 2, 2] = 255
    np.testing.assert_allclose(resize(corner, 2)[0], [[0, 0], [0, 4 / 9]], rtol=1e-15)
    centre = np.zeros((1, 3, 3), dtype=np.uint8)
    centre[0, 1, 1] = 255
    np.testing.assert_allclose(resize(centre, 2)[0], np.full((2, 2), 1 / 9), rtol=1e-15)
    with pytest.raises(DataError, match="cannot resize 3x3 images to 4x4"):
        resize(corner, 4)


def test_dac_codes_round_half_to_even():
    # 28 -> 14 and 4 bits: code = rint(block_sum / 68); block sums 34 and 102 sit on .5
    x = np.zeros((1, 28, 28), dtype=np.uint8)
    x[0, 0, 0], x[0, 0, 2], x[0, 0, 4], x[0, 0, 6] = 34, 102, 68, 255
    codes = to_dac_codes(x, CFG)
    assert codes.shape == (1, 196) and codes.dtype == np.uint8
    assert codes[0, :4].tolist() == [0, 2, 1, 4]
    assert codes[0, 4:].max() == 0


def test_dac_codes_match_formula_for_other_configs():
    x = load_dataset().x_test[:50]
    for n, bits in ((14, 4), (7, 8), (10, 1), (12, 3)):
        cfg = CFG.replace(**{"network.input_size": n, "quant.dac_bits": bits})
        expected = np.rint(resize(x, n) * (2 ** bits - 1)).reshape(50, -1)
        np.testing.assert_array_equal(to_dac_codes(x, cfg), expected)


def test_image_to_codes_matches_batch():
    x = load_dataset().x_test[:5]
    batch = to_dac_codes(x, CFG)
    for i in range(5):
        np.testing.assert_array_equal(image_to_codes(x[i], CFG), batch[i])
        np.testing.assert_array_equal(image_to_codes(x[i] / 255.0, CFG), batch[i])


@pytest.mark.parametrize("img, message", [
    (np.zeros((2, 28, 28), dtype=np.uint8), "expected a 2-D image"),
    (np.zeros((28, 27), dtype=np.uint8), "need a square image"),
    (np.zeros((28, 28), dtype=np.int16), "pixel dtype int16"),
    (np.full((28, 28), -0.5), r"must lie in \[0, 1\]"),
    (np.zeros((10, 10), dtype=np.uint8), "cannot resize 10x10 images to 14x14"),
])
def test_image_to_codes_errors(img, message):
    with pytest.raises(DataError, match=message):
        image_to_codes(img, CFG)


# -- input buffer -------------------------------------------------------------------------------

@pytest.mark.parametrize("bits", range(1, 9))
def test_pack_unpack_round_trip(bits):
    rng = np.random.default_rng(bits)
    for rows in (1, 13, 196):
        codes = rng.integers(0, 1 << bits, rows)
        packed = pack_codes(codes, bits)
        assert len(packed) == (rows * bits + 7) // 8
        np.testing.assert_array_equal(unpack_codes(packed, rows, bits), codes)


def test_pack_hand_checked():
    assert pack_codes(np.array([1, 2, 3]), 4) == bytes([0x21, 0x03])
    # 3 bits: 5 -> bits 0..2 = 1,0,1; 3 -> bits 3..5 = 1,1,0; 7 -> bits 6..8 = 1,1,1
    assert pack_codes(np.array([5, 3, 7]), 3) == bytes([0xDD, 0x01])
    assert pack_codes(np.array([0xA5, 0x01]), 8) == bytes([0xA5, 0x01])


def test_pack_matches_config_buffer_size():
    codes = image_to_codes(load_dataset().x_test[0], CFG)
    assert len(pack_codes(codes, CFG.quant.dac_bits)) == CFG.input_bytes


def test_pack_errors():
    with pytest.raises(DataError, match=r"codes must be in 0\.\.15 for 4-bit DACs, got 0\.\.16"):
        pack_codes(np.array([0, 16]), 4)
    with pytest.raises(DataError, match="1-D integer array"):
        pack_codes(np.array([0.5]), 4)
    with pytest.raises(DataError, match="holds 3 bytes, 4 codes of 4 bits need 2"):
        unpack_codes(bytes(3), 4, 4)
