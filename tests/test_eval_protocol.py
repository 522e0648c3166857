"""The evaluation protocol: per kind and per subtlety, visibility SNR, false-reject rate at the model's own
threshold, all checked against direct computations (scikit-learn for the AUROC)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from inspection.errors import DatasetError
from inspection.evaluation.evaluate import evaluate, to_markdown
from inspection.model.runtime import InspectionModel


@pytest.fixture(scope="module")
def labelled(samples, tmp_path_factory):
    """The flange sample's test split with a defects.json marking every other defect subtle."""
    root = tmp_path_factory.mktemp("data") / "flange"
    shutil.copytree(samples / "flange" / "test", root / "test")
    shutil.copytree(samples / "flange" / "ground_truth", root / "ground_truth")
    records = {}
    for kind_dir in sorted((root / "test").iterdir()):
        if kind_dir.name == "good":
            continue
        for i, p in enumerate(sorted(kind_dir.glob("*.png"))):
            records[f"test/{kind_dir.name}/{p.name}"] = {"kind": kind_dir.name, "subtle": i % 2 == 1,
                                                         "snr": float(i + 1)}
    (root / "defects.json").write_text(json.dumps(records))
    return root, records


def test_subtlety_split_snr_and_frr(labelled, small_model):
    root, records = labelled
    model = InspectionModel.load(small_model)
    report = evaluate(model, root, progress=False)
    scores = {}
    for kind_dir in sorted((root / "test").iterdir()):
        for p in sorted(kind_dir.glob("*.png")):
            scores[f"test/{kind_dir.name}/{p.name}"] = model.inspect(p).score
    good = np.array([s for n, s in scores.items() if "/good/" in n])
    assert report.false_reject_rate == pytest.approx(float(np.mean(good > model.threshold)))
    assert report.overall.false_reject_rate == report.false_reject_rate

    kinds = {r["kind"] for r in records.values()}
    split = {(k.kind, k.subtle): k for k in report.per_kind_subtlety}
    assert set(split) == {(k, f) for k in [*kinds, "all"] for f in (True, False)}
    for (kind, subtle), metrics in split.items():
        chosen = [n for n, r in records.items() if r["subtle"] == subtle and (kind == "all" or r["kind"] == kind)]
        assert metrics.defect_images == len(chosen)
        assert metrics.snr_median == pytest.approx(float(np.median([records[n]["snr"] for n in chosen])))
        y = np.r_[np.zeros(len(good)), np.ones(len(chosen))]
        s = np.r_[good, [scores[n] for n in chosen]]
        assert metrics.image_auroc == pytest.approx(roc_auc_score(y, s), abs=1e-5)
    assert {k.kind for k in report.per_kind} == kinds and all(k.subtle is None for k in report.per_kind)
    text = to_markdown(report)
    assert "| subtle |" in text and "false-reject rate on good parts" in text


def test_without_attributes_no_subtlety_rows(samples, small_model):
    report = evaluate(InspectionModel.load(small_model), samples / "flange", progress=False)
    assert report.per_kind_subtlety == [] and report.overall.snr_median is None


def test_bad_attribute_file_is_named(labelled, small_model, tmp_path):
    root, _ = labelled
    bad = tmp_path / "bad"
    shutil.copytree(root, bad)
    (bad / "defects.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"defects\.json"):
        evaluate(InspectionModel.load(small_model), bad, progress=False)
