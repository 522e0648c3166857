"""The metric code against scikit-learn and against a direct reference."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score, roc_auc_score, roc_curve

from inspection.evaluation.metrics import aupro, auroc, confusion


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(500) < 0.3
    scores = np.round(rng.normal(size=500) + labels * rng.uniform(0, 2), 1)  # rounding makes many ties
    assert auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_pixel_auroc_matches_sklearn_on_maps():
    rng = np.random.default_rng(1)
    masks = np.zeros((4, 64, 64), bool)
    masks[1, 10:20, 10:30] = True
    masks[3, 40:50, 5:9] = True
    maps = rng.random((4, 64, 64)).astype(np.float32) + masks * 0.4
    assert auroc(masks, maps) == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()), abs=1e-9)


def test_auroc_undefined_with_one_class():
    assert np.isnan(auroc(np.zeros(5, bool), np.arange(5)))


def _aupro_reference(masks, maps, limit=0.3):
    """Direct PRO curve: every distinct threshold, FPR from scikit-learn's roc_curve, region overlaps counted."""
    import cv2

    regions = []
    for m in masks:
        n, lab = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)
        regions += [lab == i for i in range(1, n)]
    fpr, _, thr = roc_curve(masks.ravel(), maps.ravel())
    thr = np.minimum(thr, maps.max() + 1)
    # roc_curve predicts positive for score >= t; inspection uses score > t. Shift to the same rule:
    pro = []
    for t in thr:
        idx = [np.mean(maps[np.broadcast_to(r, maps.shape) & (np.arange(len(masks))[:, None, None] == k)] >= t)
               for k, m in enumerate(masks) for r in regions if (r & m).any()]
        pro.append(np.mean(idx))
    fpr, pro = np.asarray(fpr), np.asarray(pro)
    keep = fpr <= limit
    x, y = fpr[keep], pro[keep]
    j = np.flatnonzero(~keep)[0]
    y_lim = y[-1] + (pro[j] - y[-1]) * (limit - x[-1]) / (fpr[j] - x[-1])
    return np.trapezoid(np.append(y, y_lim), np.append(x, limit)) / limit


def test_aupro_against_direct_reference():
    rng = np.random.default_rng(3)
    masks = np.zeros((3, 32, 32), bool)
    masks[0, 4:10, 4:10] = True
    masks[0, 20:22, 20:30] = True
    masks[2, 10:16, 15:25] = True
    maps = rng.random((3, 32, 32)) + masks * rng.uniform(0.2, 0.8)
    ours = aupro(masks, maps, steps=2000)
    assert ours == pytest.approx(_aupro_reference(masks, maps), abs=2e-3)


def test_aupro_bounds():
    masks = np.zeros((2, 16, 16), bool)
    masks[0, 2:6, 2:6] = True
    perfect = masks.astype(float)
    assert aupro(masks, perfect) == pytest.approx(1.0)
    inverted = 1.0 - masks.astype(float)
    assert aupro(masks, inverted) == pytest.approx(0.0, abs=1e-9)


def test_confusion_and_f1_match_sklearn():
    rng = np.random.default_rng(2)
    labels = rng.random(200) < 0.4
    scores = rng.random(200) + labels * 0.3
    c = confusion(labels, scores, 0.6)
    pred = scores > 0.6
    tn, fp, fn, tp = confusion_matrix(labels, pred).ravel()
    assert (c.true_fail, c.false_fail, c.true_pass, c.false_pass) == (tp, fp, tn, fn)
    assert c.f1 == pytest.approx(f1_score(labels, pred))
