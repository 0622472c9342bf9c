"""Shards (flow/sim/shards.py): the plan, the shard key, checksummed shard results, the merge
(the `sim` command that runs them: tests/flow/commands/test_sim.py)."""

import json
import re

import numpy as np
import pytest

from xbarflow.flow.sim.shards import merge, plan_shards, read_result, shard_key, write_result


# -- plan, keys, result files, merge -----------------------------------------------------------

def test_plan_covers_the_images_in_order():
    for n, jobs, size in ((10000, 2, None), (12, 2, 4), (7, 3, None), (1, 4, None), (5, 1, 100)):
        shards = plan_shards(n, jobs, size)
        assert shards[0][0] == 0 and shards[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(shards, shards[1:]))
        assert all(stop > start for start, stop in shards)
        assert plan_shards(n, jobs, size) == shards
    assert len(plan_shards(10000, 2)) == 10          # at most 1,000 images per shard
    assert plan_shards(12, 2, 4) == [(0, 4), (4, 8), (8, 12)]
    assert plan_shards(0, 2) == []


def test_shard_key_changes_with_every_input():
    base = dict(config_digest="c", sim="verilator", transport="hdl", model_digest="m",
                conductance=np.ones((4, 2)), indices=np.arange(3), images=np.zeros((3, 2, 2), np.uint8),
                labels=np.arange(3))
    key = shard_key(**base)
    assert shard_key(**base) == key
    for name, value in (("config_digest", "d"), ("sim", "icarus"), ("transport", "pins"),
                        ("model_digest", "n"), ("conductance", np.ones((4, 2)) * 2),
                        ("indices", np.arange(1, 4)), ("images", np.ones((3, 2, 2), np.uint8)),
                        ("labels", np.arange(3)[::-1].copy())):
        assert shard_key(**{**base, name: value}) != key, name


def test_result_files_detect_truncation_tampering_and_stale_keys(tmp_path):
    payload = {"indices": [0, 1], "classes": [3, 4], "mismatches": []}
    path = tmp_path / "0000.json"
    write_result(path, "k1", payload)
    assert read_result(path, "k1") == (payload, "")
    assert read_result(path, "k2")[0] is None
    assert read_result(tmp_path / "none.json", "k1") == (None, "missing")

    text = path.read_text()
    path.write_text(text[: len(text) // 2])                       # an interrupted write
    assert read_result(path, "k1")[0] is None

    doc = json.loads(text)
    doc["payload"]["classes"][0] = 5                              # a flipped result
    path.write_text(json.dumps(doc))
    assert read_result(path, "k1") == (None, "checksum mismatch (corrupted)")

    doc = json.loads(text)
    del doc["complete"]
    path.write_text(json.dumps(doc))
    assert read_result(path, "k1") == (None, "incomplete")
    assert not list(tmp_path.glob("*.tmp*")), "no temporary files left behind"


def _payload(indices, classes, sums, dac, total=28):
    return {"indices": indices, "classes": classes, "sums": sums,
            "tile_dac_codes": [[[0, d]] for d in dac], "bridge_adc_codes": sums,
            "cycles": {"total": [total], "drive": [4]}, "mismatches": []}


def _golden(classes, sums, codes):
    """A traced golden result of a one-tile chip (2 inputs, 2 outputs), written out by hand."""
    from xbarflow.flow.core.config import TileSpec
    from xbarflow.flow.model.golden import GoldenResult, GoldenTrace

    tile = TileSpec(index=0, layer=0, row_tile=0, col_tile=0, row_start=0, row_stop=codes.shape[1],
                    out_start=0, out_stop=sums.shape[1])
    trace = GoldenTrace(np.zeros((len(classes), 1), dtype=np.int64), (sums,), (sums,), (), (tile,))
    return GoldenResult(adc_codes=sums, classes=classes, trace=trace)


def test_merge_counts_parity_on_the_chips_answers():
    golden_cls = np.array([1, 2, 3, 4])
    golden_sums = np.array([[1, 0], [2, 0], [3, 0], [4, 0]])
    codes = np.array([[5, 6], [7, 8], [9, 10], [11, 12]])
    golden = _golden(golden_cls, golden_sums, codes)
    labels = np.array([1, 2, 0, 4])
    good = [_payload([0, 1], [1, 2], [[1, 0], [2, 0]], [[5, 6], [7, 8]]),
            _payload([2, 3], [3, 4], [[3, 0], [4, 0]], [[9, 10], [11, 12]])]
    m = merge(good, golden, codes, labels)
    assert m["parity"] == 1.0 and m["mismatched_images"] == 0 and m["parity_failures"] == []
    assert m["readback_sha256"] == m["golden_readback_sha256"]
    assert re.fullmatch(r"[0-9a-f]{64}", m["readback_sha256"])

    p = json.loads(json.dumps(good))
    p[1]["sums"][1] = [4, 1]                                   # image 3: one read-back sum
    m = merge(p, golden, codes, labels)
    assert m["images"] == 4 and m["parity"] == 0.75 and m["mismatched_images"] == 1
    assert m["parity_failures"] == ["image 3: differs from golden in sums"]
    assert m["readback_sha256"] != m["golden_readback_sha256"]
    assert m["cosim_accuracy"] == 0.75 and m["golden_accuracy"] == 0.75
    assert m["cycles_per_inference"] == 28 and m["cycles_same_in_every_shard"]
    assert merge(p, golden, codes, labels) == m
    with pytest.raises(ValueError):
        merge(p[::-1], golden, codes, labels)
    p[1]["cycles"]["total"] = [29]
    assert not merge(p, golden, codes, labels)["cycles_same_in_every_shard"]

    p = json.loads(json.dumps(good))
    p[0]["tile_dac_codes"][1] = [[0, [7, 9]]]                  # image 1: a DAC code on the bus
    p[1]["classes"][0] = 4                                     # image 2: RESULT
    p[0]["tile_dac_codes"][0] = [[0, [5, 6]], [0, [5, 6]]]     # image 0: the tile driven twice
    p[1]["bridge_adc_codes"] = [[9, 9], [9, 9]]                # the bridge's codes: not parity
    m = merge(p, golden, codes, labels)
    assert m["parity_failures"] == ["image 0: differs from golden in dac_codes",
                                    "image 1: differs from golden in dac_codes",
                                    "image 2: differs from golden in class"]
    assert m["results_sha256"] != merge(good, golden, codes, labels)["results_sha256"]
