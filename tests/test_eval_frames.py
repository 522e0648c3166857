"""``inspection eval`` on whole frames with a frame mapping: the frames scored as the station scores them
(tiles stitched, the score the tiles' maximum), the pixel metrics against frame-sized masks. The frames are
2 x 2 mosaics of the flange sample's 256 x 256 images, so 256-px tiles show the demo model its own scale."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from inspection.cli import app
from inspection.errors import DatasetError
from inspection.evaluation.evaluate import evaluate
from inspection.evaluation.metrics import auroc
from inspection.imaging import load_image, save_image
from inspection.model.runtime import InspectionModel
from inspection.model.shipped import default_model_path
from inspection.model.tiling import FrameMapping

TILES = FrameMapping(mode="tiles", tile_px=256, overlap=0.25)


def _mosaic(images: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.concatenate(images[:2], axis=1), np.concatenate(images[2:], axis=1)], axis=0)


@pytest.fixture(scope="module")
def frames(samples, tmp_path_factory):
    """2 good frames and 2 crack frames (512 x 512), the crack in the top-left or bottom-right quarter."""
    root = tmp_path_factory.mktemp("frames")
    good = [load_image(p) for p in sorted((samples / "flange" / "test" / "good").glob("*.png"))]
    for d in ("test/good", "test/crack", "ground_truth/crack"):
        (root / d).mkdir(parents=True)
    for i in range(2):
        save_image(root / "test" / "good" / f"{i:03d}.png", _mosaic(good[4 * i:4 * i + 4]))
        crack = load_image(samples / "flange" / "test" / "crack" / f"{i:03d}.png")
        mask = cv2.imread(str(samples / "flange" / "ground_truth" / "crack" / f"{i:03d}_mask.png"), 0)
        blank = np.zeros_like(mask)
        quarters, masks = [crack, *good[8:11]], [mask, blank, blank, blank]
        if i == 1:
            quarters, masks = quarters[::-1], masks[::-1]
        save_image(root / "test" / "crack" / f"{i:03d}.png", _mosaic(quarters))
        cv2.imwrite(str(root / "ground_truth" / "crack" / f"{i:03d}_mask.png"), _mosaic(masks))
    return root


def test_eval_with_tiles_scores_whole_frames_as_the_station_does(frames, tmp_path):
    res = CliRunner().invoke(app, ["eval", "--data", str(frames), "--out", str(tmp_path), "--quiet",
                                   "--frame-mapping", "tiles", "--tile-px", "256", "--max-batch", "4"])
    assert res.exit_code == 0, res.output
    assert "frame mapping tiles (tile_px 256, overlap 0.25, max_batch 4)" in res.output
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["frame_mapping"]["mode"] == "tiles" and report["errors"] == []
    assert (report["good_images"], report["defect_images"]) == (2, 2)
    model = InspectionModel.load(default_model_path())
    results = [model.inspect(load_image(p), mapping=TILES) for d in ("crack", "good")
               for p in sorted((frames / "test" / d).glob("*.png"))]
    labels = np.array([1, 1, 0, 0])
    scores = np.array([r.score for r in results])
    assert report["overall"]["image_auroc"] == pytest.approx(auroc(labels, scores), abs=1e-6)
    masks = np.stack([cv2.imread(str(p), 0) > 0 for p in sorted((frames / "ground_truth" / "crack").glob("*"))]
                     + [np.zeros((512, 512), bool)] * 2)
    maps = np.stack([r.anomaly_map for r in results])
    assert maps.shape == masks.shape == (4, 512, 512)  # pixel metrics at frame size
    assert report["overall"]["pixel_auroc"] == pytest.approx(auroc(masks, maps), abs=1e-6)


def test_eval_with_a_mapping_names_what_it_cannot_use(frames, tmp_path, samples):
    res = CliRunner().invoke(app, ["eval", "--data", str(frames), "--out", str(tmp_path), "--frame-mapping",
                                   "tiles"])
    assert res.exit_code == 2 and "--tile-px: mode 'tiles' needs the tile width" in res.output
    model = InspectionModel.load(default_model_path())
    with pytest.raises(DatasetError, match="none the frame mapping fits"):  # 256-px frames, 300-px tiles
        evaluate(model, samples / "flange", progress=False, mapping=FrameMapping(mode="tiles", tile_px=300))
    mixed = frames.parent / "mixed"
    (mixed / "test").mkdir(parents=True)
    (mixed / "test" / "good").symlink_to(frames / "test" / "good")  # 512 x 512 frames
    (mixed / "test" / "crack").symlink_to(samples / "flange" / "test" / "crack")  # 256 x 256 ones
    with pytest.raises(DatasetError, match="whole-frame pixel metrics need one frame size"):
        evaluate(model, mixed, progress=False, mapping=TILES)
