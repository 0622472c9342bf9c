"""The phase lengths of `xbarflow.hdl.layered_controller.LayeredController` for a layered
network, from its geometry (imported by tests/hdl/test_layered_controller.py and
tests/cosim/test_inference_cnn.py)."""

import numpy as np

__all__ = ["expected_phases"]


def expected_phases(cfg):
    """Phase lengths of the FSM as its docstring describes them, from the network's geometry:
    LOAD_WINDOW a clock per window row plus LOAD_WINDOW_END per position (a conv with S < K:
    after the first position of an output row, SLIDE_WINDOW and only the S new columns); per VMM event LOAD,
    NEXT_TILE and one ACCUMULATE clock per tile output; per hidden position ACTIVATE C_out and
    NEXT_POSITION 1; a pool step C*size^2 reads + LAST_CODE + C writes per output position and
    2 (start, finish); START_STEP per step, NEXT_STEP between steps, ARGMAX outputs + 2, DONE 1."""
    tiles, stages = cfg.tiles, [s for s in cfg.network.stages if s.kind != "flatten"]
    load = acc = act = pool = positions = events = 0
    for s in stages:
        if s.kind == "pool":
            h, w, c = s.out_shape
            pool += h * w * (c * s.kernel ** 2 + 1 + c) + 2
            continue
        own = [t for t in tiles if t.layer == s.weight_layer]
        rows = s.kernel ** 2 * s.in_shape[2] if s.kind == "conv" else int(np.prod(s.in_shape))
        h_out, w_out = s.out_shape[0], s.out_shape[1]
        if s.kind == "conv" and s.stride < s.kernel:
            # A row's first window in full, then each slides on (SLIDE_WINDOW): its S new
            # columns, K*S*C_in codes.
            new = s.kernel * s.stride * s.in_shape[2]
            load += h_out * ((rows + 1) + (w_out - 1) * (new + 1 + 1))
        else:
            load += s.positions * (rows + 1)
        events += s.positions * len(own)
        acc += s.positions * sum(t.outputs for t in own)
        if s is not stages[-1]:
            act += s.positions * s.channels_out
            positions += s.positions
    argmax = cfg.outputs + 2
    total = (load + acc + act + pool + argmax + 2 * len(stages) - 1 + 2 * events + positions + 1)
    return {"cycles_load_window": load, "cycles_accumulate": acc, "cycles_activate": act,
            "cycles_pool": pool, "cycles_total": total, "cycles_argmax": argmax}
