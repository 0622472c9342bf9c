"""The `report` subcommand (flow/commands/report.py): a run folder in, report files out, usage errors."""

import json

import numpy as np
import pytest

from xbarflow.flow.cli import main
from tests.support.report_data import PNG_SIGNATURE


# -- CLI --------------------------------------------------------------------------------------

def _run_dir(tmp_path, golden=True, report=None, **override):
    rng = np.random.default_rng(0)
    k, n, full = 10, 40, 300
    labels_full = rng.integers(0, k, full)
    codes_full = rng.integers(-60, 60, (full, k))
    codes_full[np.arange(full), labels_full] += 50
    arrays = dict(indices=np.arange(n), labels=labels_full[:n], classes=codes_full[:n].argmax(1),
                  adc_codes=codes_full[:n])
    if golden:
        arrays.update(golden_classes=codes_full.argmax(1), golden_adc_codes=codes_full,
                      labels_full=labels_full)
    arrays.update(override)
    arrays = {key: v for key, v in arrays.items() if v is not None}
    np.savez_compressed(tmp_path / "predictions.npz", **arrays)
    (tmp_path / "report.json").write_text(json.dumps(
        report if report is not None else {"config": "nosuch", "simulator": "icarus", "parity": 1.0}))
    return tmp_path


def test_cli_report_writes_both_sets(tmp_path, capsys):
    d = _run_dir(tmp_path)
    assert main(["report", str(d), "--scale", "20"]) == 0
    out = capsys.readouterr().out
    assert "golden model, full test set (300 images)" in out
    for suffix in ("", "_golden"):
        assert (d / f"confusion{suffix}.png").read_bytes().startswith(PNG_SIGNATURE)
        assert (d / f"per_class{suffix}.csv").read_text().count("\n") == 11
        md = (d / f"report{suffix}.md").read_text()
        assert "| simulator | icarus |" in md and "| logit scale (score units per logit) | 20.0000 |" in md
    assert "40 images (test images 0..39)" in (d / "report.md").read_text()


def test_cli_report_scale_from_report_json_or_none(tmp_path, capsys):
    d = _run_dir(tmp_path, golden=False,
                 report={"config": "slp", "metrics": {"logit_scale": 12.5}})
    assert main(["report", str(d)]) == 0
    assert "| 12.5000 |" in (d / "report.md").read_text()
    assert not (d / "report_golden.md").exists()
    (tmp_path / "b").mkdir()
    d2 = _run_dir(tmp_path / "b", golden=False)  # config "nosuch": no scale anywhere
    assert main(["report", str(d2)]) == 0
    assert "cross-entropy not reported" in capsys.readouterr().out
    assert "| cross-entropy (nats/image) | n/a |" in (d2 / "report.md").read_text()


def _one_line_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_usage_errors(tmp_path, capsys):
    _one_line_exit_2(["report"], "run_dir", capsys)
    _one_line_exit_2(["report", str(tmp_path / "nope")], "run folder not found", capsys)
    _one_line_exit_2(["report", str(tmp_path)], "report.json not found", capsys)
    (tmp_path / "report.json").write_text("{not json")
    _one_line_exit_2(["report", str(tmp_path)], "not readable JSON", capsys)
    (tmp_path / "report.json").write_text("[1, 2]")
    _one_line_exit_2(["report", str(tmp_path)], "JSON object", capsys)
    (tmp_path / "report.json").write_text("{}")
    _one_line_exit_2(["report", str(tmp_path)], "predictions.npz not found", capsys)
    (tmp_path / "predictions.npz").write_bytes(b"garbage")
    _one_line_exit_2(["report", str(tmp_path)], "not a readable npz", capsys)


@pytest.mark.parametrize("override, needle", [
    ({"adc_codes": None}, "missing array(s) adc_codes"),
    ({"labels_full": None}, "but not labels_full"),
    ({"labels": np.full(40, 10)}, "labels must lie in 0..9"),
    ({"classes": np.zeros(39, dtype=np.int64)}, "classes must be (40,)"),
    ({"adc_codes": np.zeros(40)}, "adc_codes must hold integers"),
    ({"golden_adc_codes": np.zeros((300, 9), dtype=np.int64)}, "labels_full must lie in 0..8"),
])
def test_cli_malformed_predictions(tmp_path, capsys, override, needle):
    d = _run_dir(tmp_path, **override)
    _one_line_exit_2(["report", str(d), "--scale", "1"], needle, capsys)


def test_cli_bad_scale(tmp_path, capsys):
    d = _run_dir(tmp_path)
    _one_line_exit_2(["report", str(d), "--scale", "-1"], "--scale must be a positive", capsys)
    _one_line_exit_2(["report", str(d), "--scale", "abc"], "invalid float", capsys)
