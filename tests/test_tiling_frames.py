"""A 5 MP frame with a 12-pixel defect: lost when the whole frame is resized to the model's input, found when
the frame is inspected as overlapping tiles (one batch through the same ONNX model, maps stitched), with the
region at the right place in frame coordinates. Models trained here on synthetic surfaces (a few seconds)."""

from __future__ import annotations

import numpy as np
import pytest
from tiling_support import FRAME_HW, dark_spot, random_crops, surface

from inspection.imaging import save_image
from inspection.model.runtime import InspectionModel, resize_for_model
from inspection.model.tiling import FrameMapping, plan_views
from inspection.model.training import TrainConfig, recalibrate, train

INPUT = (128, 128)  # a small model input keeps the test quick; tiles of 256 px show it the frame at 1:2
SPOT = (1530, 1110)  # x, y of the defect's centre in the frame
TILES = FrameMapping(mode="tiles", tile_px=256, overlap=0.25)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, InspectionModel]:
    """``resize``: trained on whole good frames resized to the input, as a resize station's model is;
    ``tiles``: trained on 256-px crops of good frames, its threshold calibrated on whole good frames scored
    as tiles (the maximum over a frame's tiles)."""
    root = tmp_path_factory.mktemp("tiling")
    frames = [surface(seed) for seed in range(1, 13)]
    resized, crops, held_out = (root / d for d in ("resized", "crops", "held_out"))
    for d in (resized, crops, held_out):
        d.mkdir()
    for i, f in enumerate(frames):
        save_image(resized / f"{i:03d}.png", resize_for_model(f, INPUT))
    for i, crop in enumerate(c for k, f in enumerate(frames[:6]) for c in random_crops(f, 256, 16, seed=k)):
        save_image(crops / f"{i:03d}.png", crop)
    for i, f in enumerate(frames[6:]):
        save_image(held_out / f"{i:03d}.png", f)
    common = {"input_size": INPUT, "bank_size": 256, "holdout_fraction": 0.25, "progress": False, "threads": 1}
    train(resized, root / "resize.onnx", TrainConfig(name="surface_resize", **common))
    train(crops, root / "tiles.onnx", TrainConfig(name="surface_tiles", **common))
    recalibrate(root / "tiles.onnx", held_out, None, 0.01, "frr", threads=1, progress=False, mapping=TILES)
    return {k: InspectionModel.load(root / f"{k}.onnx", threads=1) for k in ("resize", "tiles")}


@pytest.fixture(scope="module")
def defect_frame() -> np.ndarray:
    return dark_spot(surface(100), *SPOT, diameter=12, depth=40)


def _contains(region, x: int, y: int) -> bool:
    return region.x <= x < region.x + region.width and region.y <= y < region.y + region.height


def test_resize_misses_the_small_defect(models, defect_frame):
    model = models["resize"]
    result = model.inspect(defect_frame)
    assert result.score < model.threshold, (result.score, model.threshold)
    assert result.verdict == "PASS" and result.regions == []
    assert result.frame_mapping is not None and result.frame_mapping.mode == "resize"
    without = model.inspect(surface(100)).score  # the same frame without the spot: resize hardly sees it
    assert abs(result.score - without) < 1.0, (result.score, without)
    tiles = models["tiles"]
    assert tiles.inspect(defect_frame, mapping=TILES).score > 3 * tiles.inspect(surface(100), mapping=TILES).score


def test_tiles_find_the_small_defect_at_its_place_in_the_frame(models, defect_frame):
    model = models["tiles"]
    result = model.inspect(defect_frame, mapping=TILES)
    assert result.verdict == "FAIL", (result.score, model.threshold)
    top = result.regions[0]
    assert _contains(top, *SPOT), top
    assert top.width < 180 and top.height < 180, top  # a small region around the spot, not the frame
    assert result.anomaly_map.shape == FRAME_HW
    record = result.to_result(source="cam0")
    assert (record.image_width, record.image_height) == (FRAME_HW[1], FRAME_HW[0])
    fm = record.frame_mapping
    assert fm is not None and fm.mode == "tiles" and (fm.tile_width, fm.tile_height) == (256, 256)
    assert fm.views == len(plan_views(TILES, FRAME_HW, INPUT).views) == 13 * 11
    peak_y, peak_x = np.unravel_index(np.argmax(result.anomaly_map), FRAME_HW)
    assert abs(peak_x - SPOT[0]) < 24 and abs(peak_y - SPOT[1]) < 24, (peak_x, peak_y)


def test_max_batch_splits_the_model_calls_without_changing_the_result(models, defect_frame):
    model = models["tiles"]
    whole = model.inspect(defect_frame, mapping=TILES)
    split = model.inspect(defect_frame, mapping=TILES.model_copy(update={"max_batch": 40}))  # 143 = 40+40+40+23
    assert split.score == pytest.approx(whole.score, abs=1e-4)
    assert np.abs(split.anomaly_map - whole.anomaly_map).max() < 1e-4
    assert [(r.x, r.y, r.width, r.height) for r in split.regions] == [(r.x, r.y, r.width, r.height)
                                                                      for r in whole.regions]


def test_a_good_frame_passes_in_tiles_mode(models):
    model = models["tiles"]
    result = model.inspect(surface(200), mapping=TILES)
    assert result.verdict == "PASS", (result.score, model.threshold)
    assert result.regions == []


def test_an_roi_around_the_defect_finds_it_in_frame_coordinates(models, defect_frame):
    model = models["tiles"]  # an roi of 256 px shows the model the same scale as its tiles
    roi = FrameMapping(mode="roi", roi={"x": SPOT[0] - 100, "y": SPOT[1] - 150, "width": 256, "height": 256})
    result = model.inspect(defect_frame, mapping=roi)
    assert result.verdict == "FAIL"
    assert _contains(result.regions[0], *SPOT), result.regions[0]
    assert result.anomaly_map.shape == FRAME_HW
    assert not result.anomaly_map[:SPOT[1] - 150].any()  # outside the roi: 0, nothing inspected there
    assert result.frame_mapping is not None and result.frame_mapping.area.x == SPOT[0] - 100


def test_tiles_inside_an_roi_cover_only_the_roi(models, defect_frame):
    mapping = FrameMapping(mode="tiles", tile_px=256, overlap=0.25,
                           roi={"x": 1024, "y": 768, "width": 1000, "height": 700})
    result = models["tiles"].inspect(defect_frame, mapping=mapping)
    assert result.verdict == "FAIL" and _contains(result.regions[0], *SPOT)
    assert result.frame_mapping is not None and result.frame_mapping.views == 5 * 4
    assert not result.anomaly_map[:768].any() and not result.anomaly_map[:, 2024:].any()


def test_the_threshold_and_good_scores_are_per_frame_after_calibrating_on_frames(models):
    """Calibrated on six whole good frames scored as tiles (the maximum over 143 tiles each): the threshold
    and the good-score statistics (the drift reference) describe frame scores, as the station produces."""
    model = models["tiles"]
    gs = model.meta.good_scores
    assert gs.count == 6
    frame_score = model.inspect(surface(201), mapping=TILES).score
    assert gs.min - 3 * gs.std < frame_score < model.threshold, (frame_score, gs)
