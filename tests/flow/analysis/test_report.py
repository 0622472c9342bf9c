"""Report files (flow/analysis/report.py): markdown, confusion-matrix PNG, per-class CSV."""

import json

import numpy as np
import pytest

from xbarflow.flow.analysis import metrics as rep
from xbarflow.flow.analysis import report
from tests.support.report_data import LABELS3, PNG_SIGNATURE, PREDS3


# -- report files ---------------------------------------------------------------------------

def test_write_report_files(tmp_path):
    scores = np.eye(3)[PREDS3] * 20 - 5
    m = report.write_report(tmp_path, LABELS3, PREDS3, scores=scores, scale=10.0, title="three classes",
                         extra={"config": "toy"})
    json.dumps(m)
    assert m["files"] == {"markdown": "report.md", "confusion_png": "confusion.png",
                          "per_class_csv": "per_class.csv"}
    png = (tmp_path / "confusion.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 2000
    md = (tmp_path / "report.md").read_text()
    assert md.startswith("# three classes")
    assert "| config | toy |" in md
    assert "| accuracy | 0.7000 |" in md
    assert "| Cohen's kappa | 0.5455 |" in md
    assert "| 1 | 3 | 4 | 0.6667 | 0.7143 | 0.5000 | 0.5714 |" in md
    assert "| 2 | 3 | 2 | 0.6667 | 1.0000 | 1.0000 | 0.8000 |" in md
    assert "| 0 | 3 | 1 | 0 |" in md  # confusion row of class 0
    ce = rep.cross_entropy_from_scores(scores, LABELS3, 10.0)
    assert m["cross_entropy"] == pytest.approx(ce, abs=1e-6)
    assert f"| cross-entropy (nats/image) | {ce:.4f} |" in md
    rows = (tmp_path / "per_class.csv").read_text().splitlines()
    assert rows[0].startswith("class,support,predicted,tp,fp,fn,tn,sensitivity")
    assert len(rows) == 4 and rows[3].startswith("2,3,2,2,0,1,7,")


def test_write_report_marks_undefined_and_suffix(tmp_path):
    m = report.write_report(tmp_path, [0] * 8 + [1] * 2, [0] * 10, num_classes=2, suffix="_x")
    assert m["cross_entropy"] is None and m["logit_scale"] is None
    md = (tmp_path / "report_x.md").read_text()
    assert "| 1 | 2 | 0 | 0.0000 | 1.0000 | 0.0000* | 0.0000 |" in md
    assert "undefined" in md and "| cross-entropy (nats/image) | n/a |" in md
    assert (tmp_path / "confusion_x.png").read_bytes().startswith(PNG_SIGNATURE)
    assert (tmp_path / "per_class_x.csv").read_text().splitlines()[2].endswith(",precision")
    with pytest.raises(ValueError):
        report.write_report(tmp_path, [0, 1], [0, 1], scores=np.zeros((2, 3)), num_classes=2)


# -- write margins of a programming run -----------------------------------------------------------

def test_write_margins_summary_and_histogram(tmp_path):
    """Without wire resistance the V/2 scheme puts exactly half of each pulse on the
    half-selected cells: the largest disturb voltage is half the largest pulse of the trace and
    the smallest selected voltage the weakest pulse; the ideal write reports the bias alone."""
    from xbarflow.flow.core.config import ChipConfig
    from xbarflow.flow.model.programming import program_array_stepwise

    cfg = ChipConfig().replace(**{
        "network.input_size": 2, "network.layers": [2], "crossbar.tile_rows": 4,
        "crossbar.tile_cols": 4, "crossbar.partitions": 2, "crossbar.wire_r": 0.0,
        "device.preset": "low_threshold", "programming.bias": "v2"})
    targets = np.array([[5, 20, 31, 0], [12, 3, 0, 0], [27, 9, 0, 0], [0, 16, 0, 0]])
    trace = []
    result = program_array_stepwise(cfg, targets, trace=trace)
    amps = [abs(cfg.programming.amplitude(e[3], not (e[5] >> p & 1)))
            for e in trace if e[0] == "pulse" for p in range(2) if e[4] >> p & 1]
    m = report.write_margins(cfg, result, tmp_path)
    assert (m["bias"], m["cell"]) == ("v2", "1R")
    assert m["v_disturb_max"] == max(amps) / 2 and m["v_selected_min"] == min(amps)
    assert m["write_margin_min_v"] <= min(amps) - min(amps) / 2
    assert m["disturb_events"] == int(result.disturb_events.sum()) > 0
    png = (tmp_path / "programming_margins.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and m["margins_histogram"].endswith("programming_margins.png")
    ideal = cfg.replace(**{"programming.bias": "ideal"})
    assert report.write_margins(ideal, program_array_stepwise(ideal, targets), tmp_path / "i") == \
        {"bias": "ideal", "cell": "1R"}
