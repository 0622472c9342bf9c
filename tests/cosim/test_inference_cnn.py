"""A layered network co-simulated: the tiny CNN of tests/support/tiny_cnn.py (6 x 6 image, conv
3x3x2 with zero padding, max pool 2, flatten, dense 4, dense 3 on 10 tiles of 8 x 4) on Icarus
and Verilator, with keyed ADC noise: the bridge keys VMM event j of image i by i * events_per_image + j, the
scoreboard checks every event (tile, window slice on the DAC bus, ADC codes) against the golden
trace, the class and sums read back equal the golden model's, and the cycle counters read over
SPI equal the controller's phase lengths plus the bridge's analog waits."""

import numpy as np
import pytest

from xbarflow.flow.analysis import cost
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.sim import parity
from xbarflow.flow.sim.runner import build, run

from tests.support.layered_cycles import expected_phases
from tests.support.tiny_cnn import tiny_cfg

IMAGES = 6


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_tiny_cnn_cosimulates_at_parity(sim, dataset, tmp_path):
    cfg = tiny_cfg(**{"adc.noise_lsb": 0.7})
    rng = np.random.default_rng(5)
    weights = [rng.normal(size=shape) for shape in cfg.network.layer_shapes]
    chip = GoldenChip.from_weights(cfg, weights, requant_mult=[60, 120])
    indices = np.arange(IMAGES, dtype=np.int64) * 101
    images = dataset.x_test[indices]
    result = run(build(cfg, sim), chip.layer_conductance, images, dataset.y_test[indices],
                 indices, tmp_path, timeout_s=900, requant_mult=chip.requant_mult)
    codes = to_dac_codes(images, cfg)
    golden = chip.infer(codes, indices, trace=True)

    assert result.mismatches == []
    trace = golden.trace
    for k, image in enumerate(result.tile_dac_codes):   # every VMM event, in order
        assert [t for t, _ in image] == [ev.tile for ev in trace.events], k
        for j, (t, driven) in enumerate(image):
            assert np.array_equal(driven, trace.event_dac_codes(j)[k][:cfg.tiles[t].rows]), (k, j)
    assert len(result.tile_dac_codes[0]) == cfg.events_per_image
    assert np.array_equal(result.sums, golden.adc_codes), "sums read back over SPI"
    assert np.array_equal(result.classes, golden.classes)
    assert len(set(golden.classes.tolist())) > 1, "a spread of classes"
    assert parity.check(result, golden, codes).same.all()
    # The chip's cycle counters: the controller's phases from the geometry, and the analog
    # side's waits as the bridge answers them (settling per event, conversion + 1 per group).
    settle, conversion = chip.tiles[0].array.latency_cycles()
    groups = cfg.tile_adc_groups
    drive = len(trace.events) * settle
    convert = sum(groups[ev.tile] * conversion + 1 for ev in trace.events)
    phases = expected_phases(cfg)
    assert set(result.cycles["drive"]) == {drive}
    assert set(result.cycles["convert"]) == {convert}
    assert set(result.cycles["argmax"]) == {phases["cycles_argmax"]}
    assert set(result.cycles["total"]) == {phases["cycles_total"] + drive + convert}
    model = cost.phase_cycles(cfg)                  # the cost model's phases, the same clocks
    for phase in ("drive", "convert", "argmax"):
        assert set(result.cycles[phase]) == {model[phase]}, phase
    assert set(result.cycles["total"]) == {sum(model.values())}
