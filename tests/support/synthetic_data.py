"""A small separable data set for training tests (imported by tests/flow/model/test_train.py and
tests/flow/model/test_insitu.py)."""

import numpy as np

from xbarflow.flow.data import Dataset


def synthetic(n: int, seed: int) -> Dataset:
    """10 classes on 8x8 images: class k lights 2x2 block k of a 4x4 grid, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = rng.integers(0, 60, (n, 8, 8))
    for i, k in enumerate(y):
        r, c = divmod(int(k), 4)
        x[i, 2 * r:2 * r + 2, 2 * c:2 * c + 2] += 180
    x = x.astype(np.uint8)
    return Dataset(x[: n // 2], y[: n // 2].astype(np.uint8), x[n // 2:], y[n // 2:].astype(np.uint8))
