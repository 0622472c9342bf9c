"""Parity: did the chip compute what the golden model computes, image by image?

The one definition every co-simulation path uses (demo, program, the shards of `sim` and their
merge, classify, the benchmark). An image is at parity when all three of the chip's own answers
equal the golden model's:

* its class, read from RESULT (READ_RESULT) over the host link;
* its final-layer sums, read back from the output buffer (READ_BUF) the RTL accumulated them in;
* the DAC codes the chip drove onto the array, seen on the ``dac_codes`` bus tile by tile: the
  tiles in `cfg.tiles` order, each with the codes the golden model feeds it (the image's codes
  for layer 0, the previous layer's activation codes after); for a layered network every VMM
  event of the golden trace in order (the tiles repeat per output position), each with its
  window's slice on the tile's rows.

The ADC codes the analog bridge produced are NOT part of it: the bridge computes them with the
same `AnalogArray` call the golden model makes, so they cannot differ whatever the RTL does
(`CosimResult.bridge_adc_codes` keeps them as a diagnostic).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["ChipAnswers", "Parity", "check", "readback_digest", "summary", "tile_inputs"]

#: The three terms of parity, in the order `Parity.failures` names them.
TERMS = ("class", "sums", "dac_codes")


@dataclass(frozen=True)
class ChipAnswers:
    """What the chip computed for a batch of images: the RTL's results, not the bench's.

    ``tile_dac_codes[k]`` lists, for image k, every tile transaction the chip started, in order,
    as (tile_sel, the codes on the tile's rows)."""
    indices: np.ndarray          # (n,) test-set indices
    classes: np.ndarray          # (n,) RESULT
    sums: np.ndarray             # (n, outputs) final-layer sums read back from the output buffer
    tile_dac_codes: tuple[tuple[tuple[int, np.ndarray], ...], ...]

    @classmethod
    def from_json(cls, doc: dict) -> "ChipAnswers":
        """From the bench's (or a shard's) JSON: keys indices, classes, sums, tile_dac_codes."""
        n = len(doc["indices"])
        return cls(indices=np.asarray(doc["indices"], dtype=np.int64),
                   classes=np.asarray(doc["classes"], dtype=np.int64),
                   sums=np.asarray(doc["sums"], dtype=np.int64).reshape(n, -1),
                   tile_dac_codes=tuple(tuple((int(t), np.asarray(c, dtype=np.int64)) for t, c in image)
                                        for image in doc["tile_dac_codes"]))

    def to_json(self) -> dict:
        return {"indices": self.indices.tolist(), "classes": self.classes.tolist(),
                "sums": self.sums.tolist(),
                "tile_dac_codes": [[[t, c.tolist()] for t, c in image] for image in self.tile_dac_codes]}

    @classmethod
    def concatenate(cls, parts: Sequence["ChipAnswers"]) -> "ChipAnswers":
        return cls(indices=np.concatenate([p.indices for p in parts]),
                   classes=np.concatenate([p.classes for p in parts]),
                   sums=np.concatenate([p.sums for p in parts]),
                   tile_dac_codes=tuple(image for p in parts for image in p.tile_dac_codes))


@dataclass(frozen=True)
class Parity:
    """Per-image verdicts: each term, and `same` (all three)."""
    indices: np.ndarray
    classes: np.ndarray      # (n,) bool: RESULT == golden class
    sums: np.ndarray         # (n,) bool: read-back sums == golden sums
    dac_codes: np.ndarray    # (n,) bool: every tile driven once, in order, with golden's codes

    @property
    def same(self) -> np.ndarray:
        return self.classes & self.sums & self.dac_codes

    @property
    def fraction(self) -> float:
        """Share of images at parity (1.0 for none: nothing disagreed)."""
        return float(np.mean(self.same)) if self.same.size else 1.0

    @property
    def mismatched_images(self) -> int:
        return int(np.sum(~self.same))

    def summary(self) -> str:
        return summary(self.mismatched_images, int(self.same.size))

    def failures(self, limit: int | None = 20) -> list[str]:
        """'image 12: differs from golden in class, sums' for the first `limit` images off parity."""
        out = []
        for k in np.flatnonzero(~self.same)[:limit]:
            bad = [name for name, ok in zip(TERMS, (self.classes, self.sums, self.dac_codes)) if not ok[k]]
            out.append(f"image {int(self.indices[k])}: differs from golden in {', '.join(bad)}")
        return out


def summary(mismatched: int, images: int) -> str:
    """'parity 1.000', or e.g. 'parity 0.999 (1 of 10000 images differ)': rounded down, so a
    single differing image never prints as 1.000."""
    if not mismatched:
        return "parity 1.000"
    milli = (images - mismatched) * 1000 // images
    return f"parity {milli // 1000}.{milli % 1000:03d} ({mismatched} of {images} images differ)"


def tile_inputs(golden: Any, codes: np.ndarray) -> list[np.ndarray]:
    """The codes golden feeds each tile, (n, tile rows) per tile in `cfg.tiles` order.

    `golden` is a `xbarflow.flow.model.golden.GoldenResult` computed with ``trace=True`` (its hidden layers'
    activation codes are the inputs of the later layers); `codes` the images' DAC codes."""
    trace = getattr(golden, "trace", None)
    if trace is None:
        raise ValueError("parity needs the golden result's trace: GoldenChip.infer(..., trace=True)")
    codes = np.atleast_2d(np.asarray(codes, dtype=np.int64))
    out = []
    for spec in trace.tiles:
        layer_in = codes if spec.layer == 0 else trace.activations[spec.layer - 1]
        out.append(np.asarray(layer_in[:, spec.row_start:spec.row_stop], dtype=np.int64))
    return out


def check(answers: Any, golden: Any, codes: np.ndarray) -> Parity:
    """Parity of the chip's answers (a `ChipAnswers` or a `xbarflow.flow.sim.runner.CosimResult`: anything with
    indices, classes, sums, tile_dac_codes) against `golden` (a traced `GoldenResult` of the same
    images in the same order); `codes` are the images' DAC codes the host sent."""
    n = len(answers.indices)
    if len(golden.classes) != n or len(codes) != n:
        raise ValueError(f"{n} co-simulated images, but {len(golden.classes)} golden results "
                         f"and {len(codes)} code vectors")
    trace = getattr(golden, "trace", None)
    if trace is not None and trace.feature_maps:
        # A layered network: every VMM event of the trace in order, each with its window's
        # slice on the tile's rows (the tiles repeat per output position).
        order = [ev.tile for ev in trace.events]
        expected = [trace.event_dac_codes(j)[:, :trace.tiles[t].rows] for j, t in enumerate(order)]
    else:
        expected = tile_inputs(golden, codes)   # raises without a trace
        order = list(range(len(expected)))
    classes = np.asarray(answers.classes) == np.asarray(golden.classes)
    sums = np.asarray(answers.sums)
    want = np.asarray(golden.adc_codes)
    sums_ok = (np.all(sums == want, axis=1) if sums.shape == want.shape
               else np.zeros(n, dtype=bool))
    dac = np.array([[t for t, _ in image] == order
                    and all(np.array_equal(c, expected[j][k]) for j, (_, c) in enumerate(image))
                    for k, image in enumerate(answers.tile_dac_codes)], dtype=bool).reshape(n)
    return Parity(np.asarray(answers.indices, dtype=np.int64), classes, sums_ok, dac)


def readback_digest(indices: np.ndarray, classes: np.ndarray, sums: np.ndarray) -> str:
    """SHA-256 over every image's (index, class, read-back sums), as int64 rows: equal for a
    co-simulation and the golden model exactly when every class and sum agrees."""
    rows = np.column_stack([np.asarray(indices, dtype=np.int64), np.asarray(classes, dtype=np.int64),
                            np.asarray(sums, dtype=np.int64).reshape(len(indices), -1)])
    return hashlib.sha256(np.ascontiguousarray(rows, dtype="<i8").tobytes()).hexdigest()
