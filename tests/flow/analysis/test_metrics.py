"""Metrics (flow/analysis/metrics.py): hand-computed cases, the logit scale against the golden model."""

import json
import math

import numpy as np
import pytest

from xbarflow.flow.analysis import metrics as rep
from tests.support.report_data import CM3, LABELS3, PREDS3


def test_confusion_matrix_rows_true_cols_predicted():
    cm = rep.confusion_matrix(LABELS3, PREDS3)
    assert cm.tolist() == CM3
    # asymmetric case pins the orientation: one image of class 0 predicted as 2
    assert rep.confusion_matrix([0], [2], 3).tolist() == [[0, 0, 1], [0, 0, 0], [0, 0, 0]]


def test_three_class_metrics_by_hand():
    pc = rep.per_class_metrics(CM3)
    # class 0: TP 3 FN 1 FP 1 TN 5; class 1: TP 2 FN 1 FP 2 TN 5; class 2: TP 2 FN 1 FP 0 TN 7
    assert pc["tp"].tolist() == [3, 2, 2]
    assert pc["tn"].tolist() == [5, 5, 7]
    np.testing.assert_allclose(pc["sensitivity"], [3 / 4, 2 / 3, 2 / 3])
    np.testing.assert_allclose(pc["specificity"], [5 / 6, 5 / 7, 7 / 7])
    np.testing.assert_allclose(pc["precision"], [3 / 4, 2 / 4, 2 / 2])
    np.testing.assert_allclose(pc["f1"], [6 / 8, 4 / 7, 4 / 5])
    assert rep.accuracy(CM3) == pytest.approx(0.7)
    m = rep.classification_metrics(LABELS3, PREDS3)
    assert m["sensitivity_macro"] == pytest.approx(0.694444, abs=1e-6)
    assert m["specificity_macro"] == pytest.approx(0.849206, abs=1e-6)
    assert m["precision_macro"] == pytest.approx(0.75, abs=1e-6)
    assert m["f1_macro"] == pytest.approx(0.707143, abs=1e-6)
    assert m["per_class"]["support"] == [4, 3, 3]
    assert all(not v for v in m["undefined"].values())
    json.dumps(m)  # serialisable


def test_kappa_unbalanced_by_hand_differs_from_shortcut():
    # p_o = 0.7, p_e = (4*4 + 3*4 + 3*2) / 100 = 0.34, kappa = 0.36 / 0.66 = 6/11
    assert rep.cohen_kappa(CM3) == pytest.approx(6 / 11)
    shortcut = rep.kappa_balanced_shortcut(0.7, 3)
    assert shortcut == pytest.approx(0.55)
    assert abs(rep.cohen_kappa(CM3) - shortcut) > 4e-3


def test_kappa_equals_shortcut_on_balanced_labels():
    # balanced labels (2 per class), unbalanced predictions: p_e = 1/K anyway
    labels = [0, 0, 1, 1, 2, 2]
    preds = [0, 0, 0, 2, 2, 0]   # acc 3/6, predicted counts 4, 0, 2
    cm = rep.confusion_matrix(labels, preds)
    acc = rep.accuracy(cm)
    assert acc == pytest.approx(0.5)
    assert rep.cohen_kappa(cm) == pytest.approx(rep.kappa_balanced_shortcut(acc, 3))
    assert rep.cohen_kappa(cm) == pytest.approx(0.25)


def test_two_classes_never_predicted_class():
    # K = 2: 8 of class 0, 2 of class 1, everything predicted 0
    labels = [0] * 8 + [1] * 2
    preds = [0] * 10
    m = rep.classification_metrics(labels, preds, num_classes=2)
    pc = m["per_class"]
    assert m["accuracy"] == pytest.approx(0.8)
    # p_e = (8*10 + 2*0) / 100 = 0.8 -> kappa 0, while the shortcut claims (0.8 - 0.5)/0.5
    assert m["cohen_kappa"] == pytest.approx(0.0)
    assert m["kappa_balanced_shortcut"] == pytest.approx(0.6)
    assert pc["sensitivity"] == [1.0, 0.0]
    assert pc["specificity"] == [0.0, 1.0]
    assert pc["precision"] == [0.8, 0.0]            # class 1 never predicted: 0/0 -> 0
    assert pc["f1"] == [pytest.approx(16 / 18, abs=1e-6), 0.0]
    assert m["undefined"]["precision"] == [1]
    assert m["undefined"]["f1"] == []               # 2*0 / (0 + 0 + 2) is defined
    assert m["precision_macro"] == pytest.approx(0.4)  # the undefined 0 is averaged in


def test_class_absent_from_labels():
    m = rep.classification_metrics([0, 0, 1, 1], [0, 2, 1, 1], num_classes=3)
    pc = m["per_class"]
    assert pc["support"] == [2, 2, 0]
    assert m["undefined"]["sensitivity"] == [2]
    assert pc["sensitivity"][2] == 0.0
    assert pc["precision"][2] == 0.0 and 2 not in m["undefined"]["precision"]  # 0/1, defined
    assert pc["specificity"][2] == pytest.approx(0.75)
    # absent and never predicted: F1 is 0/0 too
    m2 = rep.classification_metrics([0, 1], [0, 1], num_classes=3)
    assert m2["undefined"]["f1"] == [2] and m2["undefined"]["precision"] == [2]
    assert m2["accuracy"] == 1.0 and m2["cohen_kappa"] == pytest.approx(1.0)


def test_kappa_undefined_single_class():
    m = rep.classification_metrics([1, 1, 1], [1, 1, 1], num_classes=2)
    assert m["undefined"]["kappa"] is True and m["cohen_kappa"] == 0.0
    assert m["undefined"]["specificity"] == [1]


@pytest.mark.parametrize("labels, preds, k", [
    ([], [], None), ([0, 1], [0], None), ([0, 3], [0, 1], 3), ([0, -1], [0, 1], None),
    ([0.5, 1], [0, 1], None),
])
def test_bad_inputs_raise(labels, preds, k):
    with pytest.raises(ValueError):
        rep.confusion_matrix(labels, preds, k)


def test_cross_entropy_known_probabilities():
    p = [[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]
    assert rep.cross_entropy(p, [0, 1]) == pytest.approx((math.log(2) - math.log(0.8)) / 2)
    assert rep.cross_entropy(p, [0, 1]) == pytest.approx(0.458145, abs=1e-6)
    assert rep.cross_entropy([[1.0, 0.0]], [1]) == pytest.approx(-math.log(1e-12))  # clipped
    with pytest.raises(ValueError):
        rep.cross_entropy([[0.5, 0.6]], [0])


def test_cross_entropy_from_scores_uses_scale():
    assert rep.cross_entropy_from_scores([[0.0, 0.0]], [0]) == pytest.approx(math.log(2))
    logits = np.array([[2.0, -1.0, 0.5], [0.0, 3.0, 1.0]])
    labels = [2, 1]
    expected = rep.cross_entropy(rep.softmax(logits), labels)
    assert rep.cross_entropy_from_scores(7.5 * logits, labels, scale=7.5) == pytest.approx(expected)
    assert rep.cross_entropy_from_scores(7.5 * logits, labels) != pytest.approx(expected)
    # huge scores stay finite (log-softmax, no overflow)
    assert math.isfinite(rep.cross_entropy_from_scores([[1e4, -1e4]], [1]))


# -- logit scale against the golden model -------------------------------------------------

def _golden_vs_logits(cfg, weights, dataset, n=2000):
    from xbarflow.flow.data import to_dac_codes
    from xbarflow.flow.model.golden import GoldenChip
    codes = to_dac_codes(dataset.x_test[:n], cfg)
    chip = GoldenChip.from_weights(cfg, weights.w)
    adc = chip.infer(codes).adc_codes
    x = codes / cfg.quant.dac_max
    return chip, codes, adc, x


def test_logit_scale_matches_golden(cfg, weights, dataset):
    from xbarflow.analog_models.adc import code_range
    from xbarflow.analog_models.mapping import map_weights
    chip, codes, adc, x = _golden_vs_logits(cfg, weights, dataset)
    s = rep.logit_scale(cfg, weights)
    assert rep.logit_scale(cfg, weights.w) == s
    w = weights.w
    span = float(w.max() - w.min())
    step = span / (cfg.quant.weight_levels - 1)              # one conductance level in W units
    lo, hi = code_range(cfg.adc.bits)
    ok = np.all((adc > lo) & (adc < hi), axis=1)             # no rail: saturation is not scale
    assert ok.mean() > 0.95
    # vs the level-quantised weights the chip realises: only ADC rounding (+ ~1e-6 IR drop)
    deq = x @ (map_weights(w, cfg).signed_levels * step)
    err = np.abs(adc / s - deq)[ok]
    assert err.max() <= 0.5 / s * 1.01 + 1e-5 * np.abs(deq).max()
    # vs the float logits: ADC rounding + at most half a level per weight
    logits = x @ w
    bound = 0.5 / s + 0.5 * step * x.sum(axis=1, keepdims=True) + 1e-5 * np.abs(logits).max()
    assert np.all(np.abs(adc / s - logits)[ok] <= np.broadcast_to(bound, logits.shape)[ok])
    # the fitted slope codes/logit is the scale (a missing factor 0.9 or (L-1) would fail)
    slope = float(np.sum(adc[ok] * logits[ok]) / np.sum(logits[ok] ** 2))
    assert slope == pytest.approx(s, rel=0.01)
    # exact before the ADC, wire_r = 0: volts / lsb == s * dequantised logits
    from xbarflow.analog_models.adc import lsb
    from xbarflow.flow.model.golden import GoldenChip
    ideal = GoldenChip.from_weights(cfg.replace(**{"crossbar.wire_r": 0.0}), w)
    np.testing.assert_allclose(ideal.array.scores_volts(codes) / lsb(cfg), s * deq,
                               rtol=1e-9, atol=1e-9 * s * np.abs(deq).max())


def test_logit_scale_follows_config(cfg, weights, dataset):
    other = cfg.replace(**{"adc.bits": 10, "device.g_on": 1.0e-8, "crossbar.v_read": 0.3})
    _, _, adc, x = _golden_vs_logits(other, weights, dataset, n=500)
    s = rep.logit_scale(other, weights)
    assert s != pytest.approx(rep.logit_scale(cfg, weights), rel=0.05)
    logits = x @ weights.w
    ok = np.all(np.abs(adc) < 511, axis=1)
    slope = float(np.sum(adc[ok] * logits[ok]) / np.sum(logits[ok] ** 2))
    assert slope == pytest.approx(s, rel=0.01)
    with pytest.raises(ValueError):
        rep.logit_scale(cfg, np.ones((3, 2)))


def test_chip_cross_entropy_close_to_software(cfg, weights, dataset):
    _, _, adc, x = _golden_vs_logits(cfg, weights, dataset)
    labels = dataset.y_test[:len(adc)]
    chip_ce = rep.cross_entropy_from_scores(adc, labels, rep.logit_scale(cfg, weights))
    soft_ce = rep.cross_entropy_from_scores(x @ weights.w, labels)
    assert chip_ce == pytest.approx(soft_ce, rel=0.1)
    assert chip_ce < 0.6
