"""Test-only faults for the benches' self-tests: a scoreboard proves it can fail.

Asked for with ``XBARFLOW_TEST_FAULT`` in the environment (or ``"test_fault"`` in the job), as
``;``-separated items ``kind`` or ``kind:key=value,key=value``:

``adc_never_answers``
    the analog side never answers ``adc_start`` (served by `xbarflow.cocotb_tests.watchdog.bridge_task`).
``noise_key_off_by_one``
    the analog bridge answers every event with the ADC noise of the next event's key, so with
    ``adc.noise_lsb > 0`` the chip computes on codes the golden model did not draw and the
    scoreboard must report it (tests/cosim/test_inference_noise.py).
``flip_sum:image=K,output=J``
    bit 0 of read-back sum J of image K (K counts the run's images from 0).
``flip_class:image=K``
    bit 0 of the class read from RESULT for image K.
``flip_dac:image=K,tile=T,row=R``
    bit 0 of the DAC code of row R (of the tile) that tile T showed on the bus for image K.
``flip_pulses:row=R,col=C``
    bit 0 of the number of program pulses the monitor counted for cell (R, C).

The ``flip_*`` faults act as a broken wire between the chip and the scoreboard: they change
the copy of the chip's answer that the scoreboard (and the results file) receives, never what
the chip or the analog side computes with, and never the golden side. So the scoreboard must
report exactly that one difference.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

__all__ = ["Fault", "KINDS", "TEST_FAULT_ENV", "WireFaults", "parse", "requested"]

TEST_FAULT_ENV = "XBARFLOW_TEST_FAULT"
#: Every fault kind and the integer arguments it takes (all required).
KINDS: dict[str, tuple[str, ...]] = {
    "adc_never_answers": (),
    "noise_key_off_by_one": (),
    "flip_sum": ("image", "output"),
    "flip_class": ("image",),
    "flip_dac": ("image", "tile", "row"),
    "flip_pulses": ("row", "col"),
}


@dataclass(frozen=True)
class Fault:
    kind: str
    args: tuple[tuple[str, int], ...] = ()

    def get(self, key: str) -> int:
        return dict(self.args)[key]


def parse(text: str) -> tuple[Fault, ...]:
    """Faults from the ``kind:key=value,...;...`` syntax; anything malformed raises ValueError
    (a self-test must never run without the fault it asked for)."""
    faults = []
    for item in (part.strip() for part in (text or "").split(";")):
        if not item:
            continue
        kind, _, rest = item.partition(":")
        kind = kind.strip()
        if kind not in KINDS:
            raise ValueError(f"unknown test fault '{kind}'; known: {', '.join(KINDS)}")
        args = {}
        for pair in filter(None, (p.strip() for p in rest.split(","))):
            key, _, value = pair.partition("=")
            try:
                args[key.strip()] = int(value)
            except ValueError:
                raise ValueError(f"test fault '{item}': expected key=integer, got '{pair}'") from None
        if set(args) != set(KINDS[kind]):
            raise ValueError(f"test fault '{kind}' takes {', '.join(KINDS[kind]) or 'no arguments'}, "
                             f"got {', '.join(args) or 'none'}")
        faults.append(Fault(kind, tuple(sorted(args.items()))))
    return tuple(faults)


def requested(job: dict) -> tuple[Fault, ...]:
    return parse(job.get("test_fault") or os.environ.get(TEST_FAULT_ENV) or "")


class WireFaults:
    """The wire from the chip to a scoreboard, with the requested ``flip_*`` faults on it."""

    def __init__(self, faults: tuple[Fault, ...] = ()):
        self.faults = tuple(faults)

    @classmethod
    def from_job(cls, job: dict) -> "WireFaults":
        return cls(requested(job))

    def _hits(self, kind: str, **where: int) -> bool:
        return any(f.kind == kind and all(f.get(k) == v for k, v in where.items()) for f in self.faults)

    def result_class(self, image: int, cls: int) -> int:
        return cls ^ 1 if self._hits("flip_class", image=image) else cls

    def sums(self, image: int, sums: list[int]) -> list[int]:
        return [s ^ 1 if self._hits("flip_sum", image=image, output=j) else s for j, s in enumerate(sums)]

    def dac_codes(self, image: int, tile: int, codes: np.ndarray) -> np.ndarray:
        out = np.array(codes, dtype=np.int64, copy=True)
        for f in self.faults:
            if f.kind == "flip_dac" and f.get("image") == image and f.get("tile") == tile:
                out[f.get("row")] ^= 1
        return out

    def pulses(self, pulses: np.ndarray) -> np.ndarray:
        out = np.array(pulses, dtype=np.int64, copy=True)
        for f in self.faults:
            if f.kind == "flip_pulses":
                out[f.get("row"), f.get("col")] ^= 1
        return out
