"""The ONNX inspection graph computes the same as the numpy reference of the algorithm, and a model
reloaded from disk gives the same verdicts as the one trained in memory."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from inspection.imaging import list_images, load_image
from inspection.model.anomaly_head import HeadParams, principal_axes, reference_outputs
from inspection.model.graph import head_from_model, inspection_graph
from inspection.model.runtime import InspectionModel, resize_for_model
from inspection.model.shipped import backbone_path


def _images(samples, n=6, size=(256, 256)):
    paths = list_images(samples / "flange" / "test" / "crack")[:n // 2] + \
        list_images(samples / "flange" / "test" / "good")[:n - n // 2]
    return np.stack([resize_for_model(load_image(p), size) for p in paths])


def _backbone_features(images):
    sess = ort.InferenceSession(str(backbone_path()), providers=["CPUExecutionProvider"])
    x = ((images.astype(np.float32) - 127) / 128).transpose(0, 3, 1, 2)
    return sess.run(["feat8", "feat16"], {"input": x})


def _head(projection_dim, blur_sigma, size, normalise=False, border=0, top_k=1, whiten=False, k_nearest=1):
    rng = np.random.default_rng(0)
    bank_full = rng.standard_normal((300, 120)).astype(np.float32) * 0.3
    projection = principal_axes(bank_full, projection_dim) if projection_dim else None
    bank = bank_full @ projection if projection is not None else bank_full
    h, w = size[0] // 8, size[1] // 8
    mean = std = None
    if normalise:  # position maps with structure, so a wrong orientation or a swapped axis shows
        mean = (3.0 + rng.random((h, w)) + np.linspace(0, 1, w)[None, :]).astype(np.float32)
        std = (0.2 + rng.random((h, w)) * 0.5).astype(np.float32)
    white_mean = white = None
    if whiten:
        white_mean = (rng.standard_normal(120) * 0.1).astype(np.float32)
        a = rng.standard_normal((120, 120))
        white = (np.eye(120) + 0.1 * (a + a.T)).astype(np.float32)
    return HeadParams((0.05, 0.04), projection, bank, np.sum(bank_full.astype(np.float64) ** 2, 1), blur_sigma,
                      size, position_mean=mean, position_std=std, border=border, top_k=top_k,
                      whiten_mean=white_mean, whiten=white, k_nearest=k_nearest)


@pytest.mark.parametrize(("projection_dim", "blur_sigma", "size", "normalise", "border", "top_k", "whiten"), [
    (None, 0.0, (256, 256), False, 0, 1, False), (32, 0.0, (256, 256), False, 0, 1, False),
    (16, 1.0, (256, 256), False, 0, 1, False), (32, 0.0, (192, 256), False, 0, 1, False),
    (32, 0.0, (256, 256), True, 0, 1, False), (32, 1.0, (192, 256), True, 0, 1, False),
    (32, 0.0, (256, 256), True, 2, 1, False), (32, 1.0, (256, 320), True, 1, 10, False),
    (None, 0.0, (256, 256), False, 0, 5, False), (None, 1.0, (256, 256), True, 1, 1, True),
    (32, 0.0, (256, 256), False, 0, 1, True)])
def test_graph_matches_numpy_reference(samples, projection_dim, blur_sigma, size, normalise, border, top_k, whiten):
    images = _images(samples, size=size)
    head = _head(projection_dim, blur_sigma, size, normalise, border, top_k, whiten)
    graph = inspection_graph(onnx.load(str(backbone_path())), head)
    sess = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    maps, scores = sess.run(["anomaly_map", "score"], {"image": images})
    ref_maps, ref_scores = reference_outputs(*_backbone_features(images), head)
    assert maps.shape == (len(images), 1, *size)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-4, rtol=0)
    np.testing.assert_allclose(maps, ref_maps, atol=1e-4, rtol=0)
    if border:
        assert not maps[:, :, :border * 8 - 4].any() and not maps[:, :, :, -(border * 8 - 4):].any()
    if top_k > 1:  # the score is the top-k mean, not the maximum (so the option is really in the graph)
        assert np.all(scores <= maps.reshape(len(maps), -1).max(axis=1) + 1e-6)


@pytest.mark.parametrize(("projection_dim", "size", "k_nearest"), [(None, (256, 256), 3), (32, (320, 320), 5)])
def test_k_nearest_graph_matches_numpy_reference(samples, projection_dim, size, k_nearest):
    """The mean distance to the k nearest entries, in the graph as in numpy, and not the nearest alone."""
    images = _images(samples, size=size)
    head = _head(projection_dim, 0.0, size, normalise=True, border=1, whiten=True, k_nearest=k_nearest)
    ref_maps, ref_scores = reference_outputs(*_backbone_features(images), head)
    sess = ort.InferenceSession(inspection_graph(onnx.load(str(backbone_path())), head).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    maps, scores = sess.run(["anomaly_map", "score"], {"image": images})
    np.testing.assert_allclose(scores, ref_scores, atol=1e-4, rtol=0)
    np.testing.assert_allclose(maps, ref_maps, atol=1e-4, rtol=0)
    from dataclasses import replace
    _, nearest_only = reference_outputs(*_backbone_features(images), replace(head, k_nearest=1))
    assert np.all(np.abs(nearest_only - ref_scores) > 1e-3)


def test_normalisation_changes_the_map(samples):
    """The normalisation maps are used: a graph with them differs from one without by exactly (d - m) / s."""
    images = _images(samples, n=2)
    plain, normalised = _head(32, 0.0, (256, 256)), _head(32, 0.0, (256, 256), normalise=True)
    outs = []
    for head in (plain, normalised):
        sess = ort.InferenceSession(inspection_graph(onnx.load(str(backbone_path())), head).SerializeToString(),
                                    providers=["CPUExecutionProvider"])
        outs.append(sess.run(["anomaly_map"], {"image": images})[0])
    assert np.abs(outs[0] - outs[1]).max() > 1.0


def test_trained_model_matches_reference_and_reload(samples, small_model, tmp_path):
    model = InspectionModel.load(small_model)
    head = head_from_model(small_model)
    images = _images(samples, n=8)
    maps, scores = model.run(images)
    ref_maps, ref_scores = reference_outputs(*_backbone_features(images), head)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-4, rtol=0)
    np.testing.assert_allclose(maps, ref_maps[:, 0], atol=1e-4, rtol=0)

    # write a copy, load it again: identical scores and verdicts
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(small_model.read_bytes())
    again = InspectionModel.load(copy)
    for img in images:
        a, b = model.inspect(img), again.inspect(img)
        assert (a.verdict, a.score) == (b.verdict, b.score)
